"""The input region: a multi-line prompt with history, and the slash-command hints above it.

Enter sends; Shift+Enter (where the terminal reports it) and Ctrl+J (everywhere) insert a new line.
↑ on the first line and ↓ on the last line walk through earlier prompts; Tab completes a /command.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from rich.text import Text
from textual import events, on
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea

from dreamchat.tui import commands

NEWLINE_KEYS = ("shift+enter", "ctrl+j", "alt+enter")


class PromptArea(TextArea):
    """A TextArea that sends on Enter and remembers what was sent."""

    class Submitted(Message):
        def __init__(self, prompt: "PromptArea", text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         compact=True, placeholder="Message dreamchat · /help for commands")
        self.sent: list[str] = []  # earlier prompts, oldest first (TextArea.history is undo)
        self._history_index: int | None = None  # None: editing a new prompt
        self._draft = ""  # what was typed before walking into the history

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self, self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "tab" and commands.is_command(self.text):
            completed = commands.completion(self.text)
            event.stop()
            event.prevent_default()
            if completed:
                self.set_text(completed)
            return
        await super()._on_key(event)

    def accept(self) -> None:
        """The app took the text: remember it and empty the prompt."""
        text = self.text
        if text.strip() and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._history_index = None
        self._draft = ""
        self.set_text("")

    def drop_sent(self, query: str, texts: Collection[str] = ()) -> None:
        """Forget earlier prompts that mention every word of `query` or that sent one of `texts`
        (after a forget: ↑ must not bring the forgotten text back)."""
        gone = {t.strip() for t in texts}
        self.sent = [text for text in self.sent if not mentions(text, query) and text.strip() not in gone]
        self._history_index = None

    def set_text(self, text: str) -> None:
        """Replace the text and put the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    # -- history on ↑ / ↓ ------------------------------------------------------------------------

    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self.sent:
            return super().action_cursor_up(select)
        if self._history_index is None:
            self._draft = self.text
            self._history_index = len(self.sent)
        if self._history_index > 0:
            self._history_index -= 1
            self.set_text(self.sent[self._history_index])

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self.cursor_location[0] < last_row or self._history_index is None:
            return super().action_cursor_down(select)
        self._history_index += 1
        if self._history_index >= len(self.sent):
            self._history_index = None
            self.set_text(self._draft)
        else:
            self.set_text(self.sent[self._history_index])


class CommandHints(Static):
    """Matching commands with their usage, shown while a /command is being typed."""

    def show_for(self, text: str) -> None:
        matches = commands.complete(text)
        self.display = bool(matches)
        if matches:
            width = max(len(c.usage) for c in matches)
            lines = (f"{c.usage.ljust(width)}  {c.help}" for c in matches[:8])
            self.update(Text("\n".join(lines)))  # Text: usages like [N] are not markup


class Composer(Vertical):
    """The bottom region: hints over the prompt."""

    def compose(self):
        yield CommandHints(id="hints")
        yield PromptArea(id="prompt")

    def on_mount(self) -> None:
        self.query_one(CommandHints).display = False

    @on(TextArea.Changed, "#prompt")
    def _update_hints(self, event: TextArea.Changed) -> None:
        self.query_one(CommandHints).show_for(event.text_area.text)


def mentions(text: str, query: str) -> bool:
    """Whether `text` holds every word of `query` (case-insensitive; words as the journal's search
    splits them)."""
    words = set(re.findall(r"\w+", text.lower()))
    wanted = re.findall(r"\w+", query.lower())
    return bool(wanted) and all(w in words for w in wanted)
