"""The slash commands of the TUI: one `cmd_<name>` per row of commands.COMMANDS.

A mixin of `DreamchatApp` (app.py), kept apart so the app file holds the layout and the reply and
sleep lifecycles. Every assistant call goes through `self._ask(fn, then)`: `fn` runs on the
assistant's thread, `then` on the UI with the result; a DreamchatError becomes an inline message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamchat.errors import ConfigError
from dreamchat.tui import commands, formatting
from dreamchat.tui.host import StatusInfo, ready_state, read_status
from dreamchat.tui.screens.confirm import ConfirmScreen
from dreamchat.tui.screens.help import HelpScreen
from dreamchat.tui.screens.messages import MessageListScreen

REBUILD_FIRST = "Your memory must be rebuilt for the new memory tower first."

if TYPE_CHECKING:
    from dreamchat.assistant import Assistant
    from dreamchat.config import Config


class CommandHandlers:
    """cmd_* methods; `self` is the DreamchatApp."""

    def cmd_help(self) -> None:
        self.push_screen(HelpScreen(commands.help_markdown(self.keys_in_use())))

    def cmd_sleep(self, passes: int | None) -> None:
        self.start_sleep(passes)

    async def cmd_retry(self) -> None:
        if self.warn_if_busy():
            return
        if self.rebuild_pending:
            self.notify(REBUILD_FIRST, severity="warning")
            return
        shown = self.chat.last_exchange()
        if shown is None:  # the assistant says why; or, should the view be out of step, redraw it
            def today(a: "Assistant") -> tuple:
                a.last_exchange("retry")
                return ready_state(a)

            async def redrawn(state: tuple) -> None:
                await self.redraw_day(state[2], state[3])
                if not self.warn_if_busy() and (shown := self.chat.last_exchange()) is not None:
                    await self.start_retry(*shown)

            self._ask(today, redrawn)
            return
        await self.start_retry(*shown)

    async def cmd_undo(self) -> None:
        if self.warn_if_busy():
            return

        def take_back(a: "Assistant") -> tuple:
            return a.take_back(), ready_state(a)

        async def done(result: tuple) -> None:
            message, (status, _, today, recalled) = result
            shown = self.chat.last_exchange()
            if shown is not None and shown[0].text == message.text:
                for bubble in shown:
                    await bubble.remove()
            else:  # the view and the journal disagree: show today as the journal has it
                await self.redraw_day(today, recalled)
            current = self.prompt.text.strip()
            self.prompt.set_text(f"{message.text}\n\n{current}" if current else message.text)
            self.prompt.focus()
            self._show_status(status)
            self.notify("Took back your last message and its reply; your message is in the input.",
                        timeout=4)

        self._ask(take_back, done)

    def warn_if_busy(self) -> bool:
        """Whether a reply or a sleep is running, so a new reply must wait (it says so)."""
        if self.busy:
            what = "replying" if self.busy == "reply" else "sleeping"
            self.notify(f"dreamchat is still {what}; press Esc to stop it, or wait.", severity="warning")
            return True
        return False

    def cmd_memory(self) -> None:
        self._ask(lambda a: a.memory_status(),
                  lambda status: self.note(formatting.memory_markdown(status)))

    def cmd_rollback(self, snapshot_id: str) -> None:
        def rollback(a: "Assistant") -> StatusInfo:
            a.rollback(snapshot_id)
            return read_status(a)

        async def done(status: StatusInfo) -> None:
            self._show_status(status)
            await self.note(f"Memory rolled back to `{snapshot_id}`.")

        self._ask(rollback, done)

    def cmd_forget(self, text: str | None) -> None:
        if text is not None:
            self._forget_matching(text)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self.notify("Memory kept.", timeout=3)
                return

            def reset(a: "Assistant") -> StatusInfo:
                a.reset_memory()
                return read_status(a)

            async def done(status: StatusInfo) -> None:
                self._show_status(status)
                await self.note("All long-term memory erased. The journal still has every message.")

            self._ask(reset, done)

        self.push_screen(ConfirmScreen("Erase all long-term memory? Every night slept is lost; "
                                       "this cannot be undone.", yes="Erase", no="Keep",
                                       danger=True), answered)

    def _forget_matching(self, text: str) -> None:
        self._ask(lambda a: a.plan_forget(text), self._confirm_forget)

    async def _confirm_forget(self, plan) -> None:
        if not plan.messages:
            await self.note(f"No messages match “{plan.query}”; nothing to forget.")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_forget(plan)
            else:
                self.notify("Nothing was forgotten.", timeout=3)

        # The wide dialog has 94 columns: a message line's date and speaker take 29 of them.
        question = f"Forget these messages?\n\n{formatting.forget_question(plan, width=64)}"
        self.push_screen(ConfirmScreen(question, yes="Forget", no="Keep", danger=True, wide=True), answered)

    def _show_messages(self, title: str, empty: str) -> Callable[[list], Any]:
        async def show(messages: list) -> None:
            if not messages:
                await self.note(empty)
                return
            self.push_screen(MessageListScreen(title, messages), self._picked)

        return show

    def _picked(self, choice: tuple[str, Any] | None) -> None:
        """What the user did with a message of a list: quote it, or forget it."""
        if choice is None:
            return
        action, value = choice
        if action == "forget":
            self._ask(lambda a: a.plan_forget(message_ids=[value.id]), self._confirm_forget)
        elif value:
            quoted = "\n".join(f"> {line}" for line in value.splitlines())
            self.prompt.set_text(f"{quoted}\n\n{self.prompt.text}")
            self.prompt.focus()

    def cmd_history(self, limit: int | None) -> None:
        self._ask(lambda a: a.history(limit or 50),
                  self._show_messages("History (newest last)", "The journal is empty."))

    def cmd_search(self, text: str) -> None:
        def show_title(messages: list) -> Any:
            title = f"Search “{text}”: {len(messages)} message{'s' if len(messages) != 1 else ''}"
            return self._show_messages(title, f"No messages match “{text}”.")(messages)

        self._ask(lambda a: a.search(text), show_title)

    def cmd_export(self, fmt: str, path: str | None) -> None:
        target = Path(path).expanduser() if path else Path.cwd() / f"dreamchat-export.{fmt}"
        self._ask(lambda a: a.export(fmt, target),
                  lambda written: self.note(f"Journal exported to `{written}`."))

    def cmd_backup(self, path: str | None) -> None:
        from dreamchat.backup import backup

        self._ask(lambda a: backup(a.paths, path),
                  lambda done: self.note(f"Backed up {done.describe()} to `{done.path}` "
                                         f"({done.size_bytes / 1e6:.1f} MB)."))

    def cmd_system(self, text: str) -> None:
        self._ask(lambda a: a.set_system_prompt(text),
                  lambda _: self.note("System prompt saved; it takes effect from the next day "
                                      "(after a sleep)."))

    def cmd_model(self, path: str) -> None:
        self.status_bar.show_loading(f"loading {Path(path).name}…")

        def switch(a: "Assistant") -> StatusInfo:
            try:
                a.switch_model(path)
            finally:
                status = read_status(a)
                self.call_from_thread(self._show_status, status)
            return status

        self._ask(switch, lambda status: self.note(f"Now using **{status.model_name}**."))

    async def cmd_set(self, key: str | None, value: str | None) -> None:
        config = self.host.assistant.config if self.host.assistant else self.config
        if key is None:
            await self.note(formatting.settings_text(config))
            return
        if value is None:
            try:
                await self.note(formatting.setting_text(config, key))
            except ConfigError as err:
                await self.note(str(err), "error")
            return

        def change(a: "Assistant") -> "Config":
            a.set_setting(key, value)
            return a.config

        async def done(new: "Config") -> None:
            old, self.config = self.config, new
            if (old.tui.theme, old.tui.bindings) != (new.tui.theme, new.tui.bindings):
                self._apply_ui_settings(new)
            await self.note(f"`{key}` set to `{value}` (saved in config.toml).")

        self._ask(change, done)

    def cmd_quit(self) -> None:
        self.exit()
