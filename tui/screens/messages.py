"""/history and /search results: a list to pick from.

Enter on a message puts it in the prompt as a quote (to ask about it), c copies it, f forgets it
(with its exchange, after the usual confirmation), Esc closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from dreamchat.tui.formatting import message_line


class MessageListScreen(ModalScreen[tuple[str, Any] | None]):
    """Dismisses with ("quote", text) or ("forget", message) for the chosen message, or None."""

    BINDINGS = [
        Binding("escape", "close", "Close", show=False),
        Binding("c", "copy", "Copy", show=False),
        Binding("f", "forget", "Forget", show=False),
    ]

    def __init__(self, title: str, messages: Sequence[Any]) -> None:
        super().__init__()
        self.title_text = title
        self.messages = list(messages)

    def compose(self):
        with Vertical(id="messages-dialog", classes="dialog"):
            yield Label(Text(self.title_text), classes="dialog-title")
            yield OptionList(*(Option(Text(message_line(m, 160)), id=str(i))
                               for i, m in enumerate(self.messages)), id="messages-list")
            yield Label("Enter: quote in the input · c: copy · f: forget · Esc: close", classes="dialog-hint")

    def _selected(self) -> Any | None:
        index = self.query_one(OptionList).highlighted
        return self.messages[index] if index is not None and self.messages else None

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(("quote", self.messages[event.option_index].text))

    def action_copy(self) -> None:
        message = self._selected()
        if message is not None:
            self.app.copy_to_clipboard(message.text)
            self.notify("Copied.", timeout=2)

    def action_forget(self) -> None:
        message = self._selected()
        if message is not None:
            self.dismiss(("forget", message))

    def action_close(self) -> None:
        self.dismiss(None)
