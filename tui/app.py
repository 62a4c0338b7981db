"""The dreamchat TUI: a chat that streams, sleeps on request or at night, and stays responsive.

The app holds no model or storage logic: everything goes through the `Assistant`, which lives on
one host thread (see host.py). Long jobs run in Textual thread workers, one group each ("load",
"reply", "sleep", "command"); they touch the UI only through `call_from_thread`.

    create_app(open_assistant, config, clock=None)  the factory shared by the CLI and the tests
    run_tui(home, model, plain)                      what `dreamchat` with no command runs
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.events import Event, Key, MouseDown
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer
from textual.worker import get_current_worker

from dreamchat.errors import DreamchatError, MemoryNeedsRebuild, NoIntactMemory
from dreamchat.events import NapStarted, ReplyDone, ReplyPiece
from dreamchat.tui import commands, formatting
from dreamchat.tui.commands import COMMANDS, Command, CommandError, Invocation, SlashCommandProvider
from dreamchat.tui.handlers import REBUILD_FIRST, CommandHandlers
from dreamchat.tui.host import AssistantHost, StatusInfo, read_status, ready_state
from dreamchat.tui.night import Clock, NightPolicy
from dreamchat.tui.screens.confirm import ConfirmScreen
from dreamchat.tui.screens.sleep import SleepScreen
from dreamchat.tui.widgets.chat import ChatMessage, ChatView
from dreamchat.tui.widgets.prompt import Composer, PromptArea
from dreamchat.tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from dreamchat.assistant import Assistant
    from dreamchat.config import Config

log = logging.getLogger(__name__)

NOT_REBUILT = ("the memory was not rebuilt, and a memory made by another memory tower cannot be used; "
               "restart dreamchat to be asked again, or run `dreamchat memory rebuild`")
NIGHT_CHECK_S = 30.0  # how often the night policy is asked whether to sleep


@dataclass
class Turn:
    """One reply being written: the user's text and bubble, the reply's bubble, and for a retry
    the earlier reply's bubble (hidden meanwhile; removed once the new reply is done)."""

    text: str
    user: ChatMessage
    bubble: ChatMessage
    replaces: ChatMessage | None = None


class ReplyChunk(Message):
    """A piece of the reply, posted from the reply worker."""

    def __init__(self, bubble: ChatMessage, text: str) -> None:
        super().__init__()
        self.bubble, self.text = bubble, text


class ReplyEnded(Message):
    """The reply finished (done), was cancelled (done None) or failed (error); posted last."""

    def __init__(self, turn: Turn, done: ReplyDone | None, status: StatusInfo | None,
                 error: str | None) -> None:
        super().__init__()
        self.turn, self.done, self.status, self.error = turn, done, status, error


def _bindings() -> list[Binding]:
    """Footer keys: one per slash command that has a key, plus cancel; ids = remappable names."""
    # F1 stays out of the footer (the prompt says "/help"), so the rest fits in 80 columns.
    keys = [Binding(c.key, f"slash('{c.name}')", c.label, id=c.name, priority=c.name == "quit",
                    show=c.name != "help")
            for c in COMMANDS if c.key]
    keys.append(Binding("escape", "cancel", "Cancel", id="cancel"))
    keys.append(Binding("ctrl+p", "command_palette", "Commands", id="command_palette", show=False,
                        priority=True))
    return keys


class DreamchatApp(CommandHandlers, App[None]):
    """The chat screen; the slash commands live in handlers.CommandHandlers."""

    CSS_PATH = "app.tcss"
    TITLE = "dreamchat"
    COMMANDS = App.COMMANDS | {SlashCommandProvider}
    BINDINGS = _bindings()

    def __init__(self, open_assistant: Callable[..., "Assistant"], config: "Config", *,
                 clock: Clock | None = None) -> None:
        super().__init__()
        self.config = config
        self._open_assistant = open_assistant
        self.host = AssistantHost()
        self.night = NightPolicy.from_settings(config.sleep, clock)
        self.ready = False  # the assistant has opened
        self._busy: str | None = None  # "reply" or "sleep" while one runs
        self.status_info: StatusInfo | None = None
        self.last_reply: ReplyDone | None = None
        self._sleep_kind = "manual"
        self.rebuild_pending = False  # opened without a memory made by another tower, to rebuild it

    # -- layout and start-up ------------------------------------------------------------------------

    def compose(self):
        yield ChatView(id="chat")
        yield Composer(id="composer")
        yield StatusBar(id="status")
        yield Footer()

    # The widgets of the main screen (App.query_one would search a modal on top of it).

    @property
    def busy(self) -> str | None:
        """"reply" or "sleep" while one runs, else None."""
        return self._busy

    @busy.setter
    def busy(self, value: str | None) -> None:
        self._busy = value
        self.refresh_bindings()  # the footer offers Cancel while a reply streams, Retry otherwise

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keep the footer short enough for 80 columns: a key shows only when it does something."""
        if action == "cancel":
            return self.busy == "reply"
        if action == "slash" and parameters == ("retry",):
            return self.busy is None
        return True

    @property
    def prompt(self) -> PromptArea:
        return self.screen_stack[0].query_one("#prompt", PromptArea)

    @property
    def chat(self) -> ChatView:
        return self.screen_stack[0].query_one(ChatView)

    @property
    def status_bar(self) -> StatusBar:
        return self.screen_stack[0].query_one(StatusBar)

    def on_mount(self) -> None:
        self._apply_ui_settings(self.config)
        self.prompt.focus()
        self._load_assistant()
        self.set_interval(NIGHT_CHECK_S, self.night_tick)

    def _apply_ui_settings(self, config: "Config") -> None:
        """Theme and key overrides from config.toml; a bad one is reported, never fatal."""
        theme = config.tui.theme
        if theme in self.available_themes:
            self.theme = theme
        else:
            self.notify(f"Unknown theme '{theme}' in config.toml; pick one of "
                        f"{', '.join(sorted(self.available_themes))}", severity="warning", timeout=10,
                        markup=False)
        known = {b.id for b in self.BINDINGS if isinstance(b, Binding) and b.id} | {"copy"}
        unknown = sorted(set(config.tui.bindings) - known)
        if unknown:
            self.notify(f"Unknown key binding id(s) {', '.join(unknown)} in config.toml "
                        f"[tui.bindings]; valid ids: {', '.join(sorted(known))}",
                        severity="warning", timeout=10, markup=False)
        self.set_keymap({k: v for k, v in config.tui.bindings.items() if k in known})

    def keys_in_use(self) -> dict[str, str]:
        """Binding id -> key, after config overrides (for /help)."""
        keys = {b.id: b.key for b in self.BINDINGS if isinstance(b, Binding) and b.id}
        keys.update(self.config.tui.bindings)
        return keys

    @work(thread=True, exclusive=True, group="load")
    def _load_assistant(self) -> None:
        """Open the assistant off the UI thread: the prompt is usable while the model loads."""
        try:
            try:
                self.host.open(self._open_assistant)
            except MemoryNeedsRebuild as err:
                # The memory tower changed (an upgrade), or every snapshot is damaged: the memory
                # cannot be read, but the journal holds every slept day. Open without the memory and
                # offer to sleep on them again; until then nothing is said to, or slept by, an
                # assistant with no memory.
                self.rebuild_pending = True
                try:
                    self.host.open(lambda: self._open_assistant(load_memory=False))
                    days, messages = self.host.call(lambda a: a.rebuild_size())
                except DreamchatError:
                    self.rebuild_pending = False
                    raise
                if days:
                    self.call_from_thread(self._offer_rebuild, days, messages, isinstance(err, NoIntactMemory))
                    return
                self.host.drop(str(err))
                self.rebuild_pending = False
                raise DreamchatError(f"{err}; the journal has no slept days to rebuild it from: "
                                     "`dreamchat memory reset` starts from an empty memory") from None
            ready = self.host.call(ready_state)
        except DreamchatError as err:
            self.call_from_thread(self._assistant_failed, str(err))
            return
        self.call_from_thread(self._assistant_ready, *ready)

    async def _assistant_ready(self, status: StatusInfo, oldest: datetime | str | None,
                               today: list, recalled: dict | None = None) -> None:
        await self._show_day(today, recalled)  # a restart in the middle of a day: the day so far
        self._show_status(status)
        self.ready = True  # after the day and the status are on screen
        action = self.night.morning_action(oldest)
        if action == "auto":
            self.start_sleep(None, kind="night", reason="Good morning: sleeping on yesterday's "
                             "conversation first.")
        elif action == "ask":
            question = "Good morning — sleep on yesterday's conversation?"
            self.push_screen(ConfirmScreen(question, yes="Sleep now", no="Not now"),
                             self._morning_answer)

    async def _show_day(self, today: list, recalled: dict | None) -> None:
        """Show journal messages (and what the memory supplied to them) above anything new."""
        if not today:
            return
        chat = self.chat
        shown = recalled if self.config.tui.memory_sources and recalled else {}
        restored = [ChatMessage(m.role, m.text, recollections=formatting.recollection_lines(shown.get(m.id, ())))
                    for m in today]
        await chat.mount_all(restored, before=0 if chat.children else None)

    async def redraw_day(self, today: list, recalled: dict | None) -> None:
        """Show only today as the journal now has it (after some of it was deleted)."""
        await self.chat.remove_children()
        await self._show_day(today, recalled)

    def _morning_answer(self, yes: bool | None) -> None:
        if yes:
            self.start_sleep(None, kind="night", reason="Sleeping on yesterday's conversation.")

    def _offer_rebuild(self, days: int, messages: int, damaged: bool = False) -> None:
        slept = f"{days} slept day{'s' if days != 1 else ''} in your journal ({messages:,} messages)"
        if damaged:
            question = (f"Every snapshot of your memory is damaged (`dreamchat memory` lists them), but "
                        f"your journal has every message. Rebuild the memory by sleeping again on the "
                        f"{slept}? You can cancel at any point; the damaged files are kept.")
        else:
            question = (f"dreamchat's memory tower has changed (an upgrade, or --weights), and your memory "
                        f"was made by the old one. Rebuild it with the new one by sleeping again on the "
                        f"{slept}? You can cancel at any point; the old memory stays as it was until it is done.")
        self.push_screen(ConfirmScreen(question, yes="Rebuild now", no="Not now"), self._rebuild_answer)

    def _rebuild_answer(self, yes: bool | None) -> None:
        if yes:
            self.busy = "sleep"
            screen = SleepScreen(None, job="rebuild", reason="Sleeping again on your journal's days.")
            self.push_screen(screen)
            self._rebuild_worker(screen)
        else:
            self._not_rebuilt_worker()

    @work(thread=True, exclusive=True, group="sleep")
    def _rebuild_worker(self, screen: SleepScreen) -> None:
        worker = get_current_worker()

        def run(assistant: "Assistant"):
            report = assistant.rebuild_memory(on_progress=self._day_steps(screen),
                                              should_stop=lambda: worker.is_cancelled)
            return report, ready_state(assistant)

        outcome, result, error = self._run_job(run)
        if outcome == "done":
            self.call_from_thread(self._end_rebuild, screen, "rebuilt", *result)
            return
        self.host.drop(NOT_REBUILT)  # never chat over an empty stand-in for the user's memory
        self.rebuild_pending = False
        self.call_from_thread(self._end_rebuild, screen, outcome, None, None, error)

    def _run_job(self, run: Callable[["Assistant"], Any]) -> tuple[str, Any, str | None]:
        """A long job (sleep, rebuild, forget) on the assistant's thread: ("done", its result,
        None), ("cancelled", None, None) or ("failed", None, the error)."""
        from dreamchat.assistant import SleepCancelled

        try:
            return "done", self.host.call(run), None
        except SleepCancelled:
            return "cancelled", None, None
        except DreamchatError as err:
            return "failed", None, str(err)

    def _day_steps(self, screen: SleepScreen) -> Callable[[int, int], None]:
        """An `on_progress(done, total)` for jobs that sleep again day by day (rebuild, forget)."""
        return lambda done, total: self.call_from_thread(
            screen.show_steps, done, total, f"Day {done} of {total} slept again")

    @work(thread=True, exclusive=True, group="load")
    def _not_rebuilt_worker(self) -> None:
        self.host.drop(NOT_REBUILT)
        self.rebuild_pending = False
        self.call_from_thread(self._assistant_failed, NOT_REBUILT)

    async def _end_rebuild(self, screen: SleepScreen, outcome: str, report: Any, ready: tuple | None,
                           error: str | None = None) -> None:
        self.busy = None
        self.rebuild_pending = False
        if outcome == "rebuilt":
            screen.show_report(report)
            await self.note(f"Memory rebuilt · {report.summary()}", "sleep")
            await self._assistant_ready(*ready)
            return
        if outcome == "cancelled":
            screen.show_cancelled()
        else:
            screen.show_failed(error or "unknown error")
        await self._assistant_failed(NOT_REBUILT)

    async def _assistant_failed(self, message: str) -> None:
        self.status_bar.show_problem("no model")
        await self.note(f"dreamchat could not start: {message}", "error")
        self.notify(message, title="Could not start", severity="error", timeout=30, markup=False)

    def _show_status(self, status: StatusInfo) -> None:
        self.status_info = status
        self.status_bar.show(status)

    # -- activity and the night ---------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, (Key, MouseDown)) and not event.is_forwarded:
            self.night.touch()
        await super().on_event(event)

    def night_tick(self) -> None:
        """Start the night's sleep when the policy says so (called every NIGHT_CHECK_S)."""
        busy = self.busy is not None or isinstance(self.screen, ModalScreen) or not self.ready
        has_unslept = self.status_info is not None and self.status_info.has_unslept
        if self.night.night_sleep_due(has_unslept=has_unslept, busy=busy):
            idle = int(self.night.idle_for().total_seconds() // 60)
            self.start_sleep(None, kind="night", reason=f"Night-time sleep (idle for {idle} min).")

    # -- the prompt -----------------------------------------------------------------------------------

    @on(PromptArea.Submitted)
    async def _submitted(self, event: PromptArea.Submitted) -> None:
        text = event.text
        if commands.is_command(text):
            event.prompt.accept()
            await self.run_command_line(text)
            return
        if self.rebuild_pending:
            self.notify(REBUILD_FIRST, severity="warning")
            return
        if self.warn_if_busy():
            return
        event.prompt.accept()
        await self.start_reply(commands.unescape(text).strip())

    async def note(self, text: str, kind: str = "note") -> ChatMessage:
        """An inline message from the app itself (never stored, never sent to the model)."""
        return await self.chat.add(kind, text)

    # -- one reply: mount, stream, finish or clean up -----------------------------------------------

    async def start_reply(self, text: str) -> None:
        self.busy = "reply"
        user = await self.chat.add("user", text)
        turn = Turn(text, user, await self._reply_bubble())
        self._reply_worker(lambda assistant: assistant.send(text), turn)

    async def start_retry(self, user: ChatMessage, old: ChatMessage) -> None:
        """A new reply to today's last user turn, written under it while the old one is hidden."""
        self.busy = "reply"
        old.display = False
        turn = Turn(user.text, user, await self._reply_bubble(), replaces=old)
        self._reply_worker(lambda assistant: assistant.retry(), turn)

    async def _reply_bubble(self) -> ChatMessage:
        bubble = await self.chat.add("assistant")
        bubble.loading = True  # until the first piece (the model may still be loading)
        return bubble

    # The reply worker posts messages rather than calling into the UI: generation never waits for a
    # repaint, and the app's message queue keeps pieces and the end of the reply in order.

    @work(thread=True, exclusive=True, group="reply")
    def _reply_worker(self, start: Callable[["Assistant"], Iterator], turn: Turn) -> None:
        worker = get_current_worker()

        def stream(assistant: "Assistant") -> tuple[ReplyDone | None, StatusInfo]:
            done = None
            replies = start(assistant)
            try:
                for event in replies:
                    if worker.is_cancelled:
                        break
                    if isinstance(event, ReplyPiece):
                        self.post_message(ReplyChunk(turn.bubble, event.text))  # never waits for the UI
                    elif isinstance(event, NapStarted):
                        self.call_from_thread(self._nap, event)
                    elif isinstance(event, ReplyDone):
                        done = event
            finally:
                replies.close()  # a cancelled reply is dropped by the assistant, never stored
            return done, read_status(assistant)

        try:
            done, status = self.host.call(stream)
        except DreamchatError as err:
            self.post_message(ReplyEnded(turn, None, None, str(err)))
            return
        self.post_message(ReplyEnded(turn, done, status, None))

    @on(ReplyChunk)
    async def _on_chunk(self, message: ReplyChunk) -> None:
        await self._piece(message.bubble, message.text)

    @on(ReplyEnded)
    async def _on_ended(self, m: ReplyEnded) -> None:
        await self._end_reply(m.turn, m.done, m.status, m.error)

    async def _piece(self, bubble: ChatMessage, text: str) -> None:
        bubble.loading = False
        await bubble.append(text)

    def _nap(self, event: NapStarted) -> None:
        self.notify(f"Today's context is nearly full: napping on the oldest {event.tokens:,} tokens "
                    "first.", title="Nap", timeout=6)

    async def _end_reply(self, turn: Turn, done: ReplyDone | None, status: StatusInfo | None,
                         error: str | None) -> None:
        """The one place a reply ends: finished, cancelled or failed."""
        bubble = turn.bubble
        bubble.loading = False
        await bubble.finish(done.text if done else None)
        if done is not None:
            self.last_reply = done
            if turn.replaces is not None:
                await turn.replaces.remove()
            if self.config.tui.memory_sources:
                await bubble.add_recollections(formatting.recollection_lines(done.recalled))
            self.status_bar.show_speed(done.tokens_per_s)
            if note := formatting.finish_note(done):
                self.notify(note, timeout=6)
        elif turn.replaces is not None:
            # A retry stores nothing until it is done: the earlier reply is still the journal's.
            await bubble.remove()
            turn.replaces.display = True
            if error:
                self.notify(error, title="Retry failed", severity="error", timeout=15, markup=False)
            else:
                self.notify("Retry cancelled; the earlier reply is kept.", timeout=4)
        else:
            # Nothing of it was stored: take both bubbles away and give the text back to edit.
            await turn.user.remove()
            await bubble.remove()
            if not self.prompt.text.strip():
                self.prompt.set_text(turn.text)
            if error:
                self.notify(error, title="Reply failed", severity="error", timeout=15, markup=False)
            else:
                self.notify("Reply cancelled; nothing was saved. Your message is back in the input.",
                            timeout=4)
        if status is not None:
            self._show_status(status)
        self.busy = None  # last: the reply is over only once the screen shows how it ended

    def action_cancel(self) -> None:
        if self.busy == "reply":
            self.workers.cancel_group(self, "reply")

    # -- sleep ------------------------------------------------------------------------------------------

    def start_sleep(self, passes: int | None, *, kind: str = "manual", reason: str = "") -> None:
        if self.rebuild_pending:
            self.notify(REBUILD_FIRST, severity="warning")
            return
        if self.busy:
            self.notify("Wait for the reply to finish (or press Esc) before sleeping.",
                        severity="warning")
            return
        self.busy = "sleep"
        self._sleep_kind = kind
        screen = SleepScreen(passes, reason=reason)
        self.push_screen(screen)
        self._sleep_worker(passes, kind, screen)

    @work(thread=True, exclusive=True, group="sleep")
    def _sleep_worker(self, passes: int | None, kind: str, screen: SleepScreen) -> None:
        worker = get_current_worker()

        def run(assistant: "Assistant"):
            report = assistant.sleep(
                passes, kind=kind,
                on_progress=lambda p: self.call_from_thread(screen.show_progress, p),
                should_stop=lambda: worker.is_cancelled)
            return report, read_status(assistant)

        outcome, result, error = self._run_job(run)
        if outcome == "done":
            report, status = result
            self.call_from_thread(self._end_sleep, screen, "slept" if report else "nothing", report,
                                  None, status)
            return
        self.call_from_thread(self._end_sleep, screen, outcome, None, error)
        try:  # the status after a cancel or failure (memory unchanged, the day still there)
            status = self.host.call(read_status)
        except DreamchatError:
            return
        self.call_from_thread(self._show_status, status)

    # -- forgetting some messages ---------------------------------------------------------------

    def start_forget(self, plan: Any) -> None:
        """Forget the messages of a confirmed `ForgetPlan`, in the sleep modal (it can take a while:
        the memory sleeps again on the days that held them)."""
        if self.busy:
            self.notify("Wait for the reply or the sleep to finish before forgetting.", severity="warning")
            return
        self.busy = "sleep"
        days = f"{plan.replay_days} day{'s' if plan.replay_days != 1 else ''}"
        reason = (f"The memory sleeps again on {days} without them." if plan.replay_days
                  else "Deleting them from the journal.")
        screen = SleepScreen(None, job="forget", reason=reason)
        self.push_screen(screen)
        self._forget_worker(plan, screen)

    @work(thread=True, exclusive=True, group="sleep")
    def _forget_worker(self, plan: Any, screen: SleepScreen) -> None:
        worker = get_current_worker()

        def run(assistant: "Assistant"):
            report = assistant.forget(plan, on_progress=self._day_steps(screen),
                                      should_stop=lambda: worker.is_cancelled)
            return report, ready_state(assistant)

        outcome, result, error = self._run_job(run)
        if outcome == "done":
            self.call_from_thread(self._end_forget, screen, "forgot", *result, plan=plan)
        else:
            self.call_from_thread(self._end_forget, screen, outcome, None, None, error)

    async def _end_forget(self, screen: SleepScreen, outcome: str, report: Any, ready: tuple | None,
                          error: str | None = None, plan: Any = None) -> None:
        if outcome == "forgot":
            status, _, today, recalled = ready
            # The view may show what was forgotten, in a message or in a line under a reply: show
            # today again as the journal now has it.
            await self.redraw_day(today, recalled)
            await self.note(f"{report.summary()} Today's conversation is shown again without them.")
            self.prompt.drop_sent(plan.query, [m.text for m in plan.messages])
            self._show_status(status)
            screen.show_report(report)  # last: the modal says "done" once everything is
        elif outcome == "cancelled":
            screen.show_cancelled()
        else:
            screen.show_failed(error or "unknown error")
        self.busy = None

    @on(SleepScreen.CancelRequested)
    def _cancel_sleep(self) -> None:
        self.workers.cancel_group(self, "sleep")

    async def _end_sleep(self, screen: SleepScreen, outcome: str, report: Any, error: str | None,
                         status: StatusInfo | None = None) -> None:
        if outcome == "slept":
            for message in self.chat.messages():
                message.add_class("-slept")  # out of the context now; in the memory instead
            await self.note(f"Night {report.night} · {report.summary()}", "sleep")
            screen.show_report(report)
        elif outcome == "nothing":
            screen.show_nothing()
        elif outcome == "cancelled":
            screen.show_cancelled()
        else:
            screen.show_failed(error or "unknown error")
        if outcome in ("cancelled", "failed") and self._sleep_kind == "night":
            self.night.hold()  # don't start again on the next tick; wait for the user
        if status is not None:
            self._show_status(status)
        self.busy = None

    # -- slash commands -----------------------------------------------------------------------------

    async def run_command_line(self, line: str) -> None:
        try:
            invocation = commands.parse(line)
        except CommandError as err:
            await self.note(str(err), "error")
            return
        await self.run_invocation(invocation)

    async def run_invocation(self, invocation: Invocation) -> None:
        result = getattr(self, invocation.command.handler)(*invocation.args)
        if hasattr(result, "__await__"):
            await result

    async def action_slash(self, name: str) -> None:
        """A key binding: run the command, or put `/name ` in the prompt when it needs an argument."""
        await self.run_palette_command(commands.COMMANDS_BY_NAME[name])

    async def run_palette_command(self, command: Command) -> None:
        if command.needs_input:
            self.prompt.set_text(f"/{command.name} ")
            self.prompt.focus()
            return
        await self.run_invocation(Invocation(command, tuple(None for _ in command.args)))

    @work(thread=True, group="command")
    def _ask(self, fn: Callable[["Assistant"], Any], then: Callable[[Any], Any]) -> None:
        """Run one assistant call off the UI thread, then `then(result)` on it; errors inline."""
        try:
            result = self.host.call(fn)
        except DreamchatError as err:
            self.call_from_thread(self.note, str(err), "error")
            return
        self.call_from_thread(then, result)

    # -- shutdown ---------------------------------------------------------------------------------------

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "reply")
        self.workers.cancel_group(self, "sleep")
        self.host.close()


def create_app(open_assistant: Callable[..., "Assistant"], config: "Config", *,
               clock: Clock | None = None) -> DreamchatApp:
    """The app, shared by the CLI and the tests. `open_assistant()` runs in a worker at start-up;
    when the memory was made by another tower, `open_assistant(load_memory=False)` opens it for the
    rebuild the app then offers. `clock` (a `datetime.now` stand-in) drives the night policy."""
    return DreamchatApp(open_assistant, config, clock=clock)


def wants_plain() -> bool:
    """No TUI on dumb terminals or when stdin/stdout are not terminals (pipes, scripts)."""
    return (os.environ.get("TERM") == "dumb" or not sys.stdin.isatty() or not sys.stdout.isatty())


def run_tui(home: str | None, model: str | None, plain: bool = False, *,
            weights: str | None = None) -> int:
    """`dreamchat` with no command: the TUI, or the plain read-eval loop for pipes and dumb terminals.

    Returns the exit code. DreamchatError from reading config.toml propagates (the CLI prints it).
    """
    from dreamchat.config import load_config
    from dreamchat.paths import Paths

    config = load_config(Paths.for_home(home).config_file)

    def open_assistant(load_memory: bool = True) -> "Assistant":
        # Imported here, in the load worker: torch and llama.cpp take seconds to import, and the
        # prompt should be on screen before that.
        from dreamchat.assistant import Assistant

        return Assistant.open(home=home, model=model, weights=weights, config=config, load_memory=load_memory)

    if plain or wants_plain():
        from dreamchat.tui.plain import run_plain

        return run_plain(open_assistant, config)
    app = create_app(open_assistant, config)
    with _warnings_as_notifications(app):
        app.run()
    return app.return_code or 0


class _NotifyHandler(logging.Handler):
    """Library warnings become notifications: stderr belongs to Textual while the TUI runs."""

    def __init__(self, app: App) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        severity = "error" if record.levelno >= logging.ERROR else "warning"
        self.app.notify(record.getMessage(), severity=severity, markup=False, timeout=10)  # thread-safe


@contextlib.contextmanager
def _warnings_as_notifications(app: App):
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [_NotifyHandler(app)]
    try:
        yield
    finally:
        root.handlers = saved
