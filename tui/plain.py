"""`dreamchat --plain`: the chat as a read-eval loop, for dumb terminals, pipes and scripts.

Same slash commands as the TUI (the one table in commands.py). Replies stream to stdout; prompts,
progress and errors go to stderr, so `echo "hi" | dreamchat --plain > reply.txt` keeps only the
reply. A line ending in a backslash continues on the next line. Ctrl+C cancels a reply or a sleep
(nothing half-done is saved); Ctrl+D or /quit leaves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from dreamchat.errors import DreamchatError
from dreamchat.events import NapStarted, ReplyDone, ReplyPiece, SleepProgress
from dreamchat.tui import commands, formatting
from dreamchat.tui.night import NightPolicy
from dreamchat.tui.screens.sleep import progress_text

if TYPE_CHECKING:
    from dreamchat.assistant import Assistant
    from dreamchat.config import Config

PROMPT = "you> "


class PlainSession:
    def __init__(self, assistant: "Assistant", *, stdin: TextIO, stdout: TextIO, stderr: TextIO,
                 interactive: bool) -> None:
        self.assistant = assistant
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = interactive  # a person at a terminal: prompts, questions, progress
        self.running = True
        self.prefill = ""  # text the next input line starts with (a message taken back with /undo)

    # -- input and output ---------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """What the user asked for (replies, command output): stdout."""
        print(text, file=self.stdout, flush=True)

    def tell(self, text: str) -> None:
        """Everything else (notices, errors, progress): stderr, so pipes carry only the answers."""
        print(text, file=self.stderr, flush=True)

    def read_line(self, prompt: str = PROMPT) -> str | None:
        """One logical line (backslash continues it); None at end of input."""
        parts: list[str] = []
        while True:
            if self.interactive:
                try:
                    line = self._input(prompt if not parts else "...> ")
                except EOFError:
                    return None
            else:
                line = self.stdin.readline()
                if not line:
                    return "\n".join(parts) if parts else None
                line = line.rstrip("\n")
            if line.endswith("\\"):
                parts.append(line[:-1])
                continue
            parts.append(line)
            return "\n".join(parts)

    def _input(self, prompt: str) -> str:
        """input(), starting from `prefill` when there is one (readline edits it in place)."""
        text, self.prefill = self.prefill, ""
        if not text:
            return input(prompt)
        import readline

        readline.set_startup_hook(lambda: readline.insert_text(text))
        try:
            return input(prompt)
        finally:
            readline.set_startup_hook()

    def ask_yes(self, question: str) -> bool:
        self.tell(f"{question} [type yes to confirm]")
        answer = self.read_line("confirm> ")
        return answer is not None and answer.strip().lower() in ("y", "yes")

    # -- the loop -------------------------------------------------------------------------------------

    def run(self) -> int:
        while self.running:
            line = self.read_line()
            if line is None:
                break
            if not line.strip():
                continue
            try:
                if commands.is_command(line):
                    self.run_command(line)
                else:
                    self.reply(commands.unescape(line).strip())
            except DreamchatError as err:
                self.tell(f"error: {err}")
        return 0

    def run_command(self, line: str) -> None:
        invocation = commands.parse(line)  # CommandError is a DreamchatError: shown, loop goes on
        getattr(self, invocation.command.handler)(*invocation.args)

    def reply(self, text: str | None) -> None:
        """Stream the reply to `text`, or (None) a new reply to the last message: a retry."""
        replies = self.assistant.send(text) if text is not None else self.assistant.retry()
        wrote = False
        try:
            for event in replies:
                if isinstance(event, ReplyPiece):
                    self.stdout.write(event.text.lstrip() if not wrote else event.text)
                    self.stdout.flush()
                    wrote = True
                elif isinstance(event, NapStarted):
                    self.tell(f"[context nearly full: napping on the oldest {event.tokens:,} tokens]")
                elif isinstance(event, ReplyDone):
                    self.stdout.write("\n")
                    self.stdout.flush()
                    if self.interactive:
                        shown = event.recalled if self.assistant.config.tui.memory_sources else ()
                        for line in formatting.recollection_lines(shown):
                            self.tell(f"[{line}]")
                        self.tell(f"[{event.tokens} tokens, {event.tokens_per_s:.1f} tok/s]")
                        if note := formatting.finish_note(event):
                            self.tell(f"[{note}]")
        except KeyboardInterrupt:
            self.stdout.write("\n")
            self.tell("[reply cancelled; nothing was saved]" if text is not None
                      else "[retry cancelled; the earlier reply is kept]")
        finally:
            replies.close()

    def sleep(self, passes: int | None, kind: str = "manual") -> None:
        from dreamchat.assistant import SleepCancelled

        def progress(p: SleepProgress) -> None:
            if self.interactive:
                self.stderr.write(f"\r{progress_text(p)}\x1b[K")
                self.stderr.flush()

        try:
            report = self.assistant.sleep(passes, kind=kind, on_progress=progress)
        except (SleepCancelled, KeyboardInterrupt):
            self.tell("\nSleep cancelled; memory is unchanged.")
            return
        finally:
            if self.interactive:
                self.stderr.write("\r\x1b[K")
        self.say(report.summary() if report else "Nothing to sleep on: today's context is empty.")

    # -- the commands (names from commands.COMMANDS) --------------------------------------------------

    def cmd_help(self) -> None:
        self.say(commands.help_text())

    def cmd_retry(self) -> None:
        self.reply(None)

    def cmd_undo(self) -> None:
        message = self.assistant.take_back()
        if self.interactive:
            self.prefill = message.text
            self.tell("[took back your last message and its reply; the message is in the input to edit]")
        else:
            self.tell(f"Took back your last message and its reply: {message.text}")

    def cmd_sleep(self, passes: int | None) -> None:
        self.sleep(passes)

    def cmd_memory(self) -> None:
        self.say(formatting.memory_markdown(self.assistant.memory_status()))

    def cmd_rollback(self, snapshot_id: str) -> None:
        self.assistant.rollback(snapshot_id)
        self.say(f"Memory rolled back to {snapshot_id}.")

    def cmd_forget(self, text: str | None) -> None:
        from dreamchat.assistant import SleepCancelled

        if text is None:
            if not self.ask_yes("Erase all long-term memory? Every night slept is lost."):
                self.say("Memory kept.")
                return
            self.assistant.reset_memory()
            self.say("All long-term memory erased. The journal still has every message.")
            return
        plan = self.assistant.plan_forget(text)
        if not plan.messages:
            self.say(f"No messages match '{text}'; nothing to forget.")
            return
        self.tell(formatting.forget_question(plan))
        if not self.ask_yes("Forget them?"):
            self.say("Nothing was forgotten.")
            return

        def progress(done: int, total: int) -> None:
            if self.interactive:
                self.stderr.write(f"\rforgetting: sleeping again, day {done}/{total}\x1b[K")
                self.stderr.flush()

        try:
            report = self.assistant.forget(plan, on_progress=progress)
        except SleepCancelled:
            self.tell("\nForgetting cancelled; the journal and the memory are as they were.")
            return
        except KeyboardInterrupt:  # perhaps after the new memory was written: running it again finishes
            self.tell(f"\nForgetting interrupted; run /forget {text} again to finish it.")
            return
        finally:
            if self.interactive:
                self.stderr.write("\r\x1b[K")
        self.say(report.summary())
        if self.interactive:
            _drop_from_line_history(text)

    def cmd_history(self, limit: int | None) -> None:
        messages = self.assistant.history(limit or 50)
        self.say(formatting.messages_text(messages, "The journal is empty."))

    def cmd_search(self, text: str) -> None:
        self.say(formatting.messages_text(self.assistant.search(text), f"No messages match '{text}'."))

    def cmd_export(self, fmt: str, path: str | None) -> None:
        written = self.assistant.export(fmt, path)
        self.say(f"Journal exported to {written}." if path else written)  # no PATH: to stdout

    def cmd_backup(self, path: str | None) -> None:
        from dreamchat.backup import backup

        done = backup(self.assistant.paths, path)
        self.say(f"Backed up {done.describe()} to {done.path} ({done.size_bytes / 1e6:.1f} MB).")

    def cmd_system(self, text: str) -> None:
        self.assistant.set_system_prompt(text)
        self.say("System prompt saved; it takes effect from the next day (after a sleep).")

    def cmd_model(self, path: str) -> None:
        self.tell(f"Loading {path}…")
        self.assistant.switch_model(path)
        self.say(f"Now using {self.assistant.model_name}.")

    def cmd_set(self, key: str | None, value: str | None) -> None:
        config = self.assistant.config
        if key is None:
            self.say(formatting.settings_text(config))
        elif value is None:
            self.say(formatting.setting_text(config, key))
        else:
            self.assistant.set_setting(key, value)
            self.say(f"{key} set to {value} (saved in config.toml).")

    def cmd_quit(self) -> None:
        self.running = False


def _drop_from_line_history(query: str) -> None:
    """Forget earlier input lines that mention the forgotten text (↑ must not bring it back)."""
    import readline

    from dreamchat.tui.widgets.prompt import mentions

    for position in range(readline.get_current_history_length(), 0, -1):
        line = readline.get_history_item(position)
        if line is not None and mentions(line, query):
            readline.remove_history_item(position - 1)  # get_ is 1-based, remove_ 0-based


def run_plain(open_assistant: Callable[[], "Assistant"], config: "Config", *,
              stdin: TextIO | None = None, stdout: TextIO | None = None,
              stderr: TextIO | None = None, interactive: bool | None = None) -> int:
    """Open the assistant, offer the morning sleep (interactive only), run the loop, close."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    if interactive is None:
        interactive = stdin is sys.stdin and sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (↑/↓ history and line editing for input())

        print("Loading the model…", file=stderr, flush=True)
    assistant = open_assistant()
    try:
        session = PlainSession(assistant, stdin=stdin, stdout=stdout, stderr=stderr,
                               interactive=interactive)
        morning = NightPolicy.from_settings(config.sleep).morning_action(assistant.oldest_unslept())
        if morning == "auto" or (morning == "ask" and interactive and session.ask_yes(
                "Good morning — sleep on yesterday's conversation?")):
            session.sleep(None, kind="night")
        if interactive:
            session.tell(f"dreamchat with {assistant.model_name}. /help for commands, Ctrl+D to quit.")
        return session.run()
    finally:
        assistant.close()

