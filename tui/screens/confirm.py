"""A yes/no question in a modal (used by /forget and the morning prompt)."""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No", danger: bool = False,
                 wide: bool = False) -> None:
        super().__init__()
        self.question = question
        self.yes, self.no, self.danger = yes, no, danger
        self.wide = wide  # for a question that lists things (100 columns instead of 72)

    def compose(self):
        with Vertical(id="confirm-dialog", classes="dialog -wide" if self.wide else "dialog"):
            yield Label(self.question, id="confirm-question", markup=False)  # it may quote messages
            with Horizontal(classes="buttons"):
                yield Button(self.yes, id="confirm-yes", variant="error" if self.danger else "primary")
                yield Button(self.no, id="confirm-no")

    def on_mount(self) -> None:
        # A dangerous question starts on "No", so a stray Enter does nothing harmful.
        self.query_one("#confirm-no" if self.danger else "#confirm-yes", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")
