"""/help: the command table and the keys, as one Markdown page."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "close", "Close", show=False)]

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.markdown = markdown

    def compose(self):
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Markdown(self.markdown, id="help-body")

    def action_close(self) -> None:
        self.dismiss(None)
