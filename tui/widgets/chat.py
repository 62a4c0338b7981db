"""The conversation: message bubbles in a scrolling column.

A `ChatMessage` is focusable so that a single message can be copied (c) and the column walked with
↑/↓; the assistant's bubble is streamed into through a `MarkdownStream`.
"""

from __future__ import annotations

import re

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Markdown
from textual.widgets.markdown import MarkdownStream

ROLE_TITLES = {"user": "you", "assistant": "dreamchat", "note": "", "error": "", "sleep": ""}
KEEP_BREAKS = ("user", "assistant")  # people and models mean their single newlines


class LineBreaks:
    """Turns single newlines into Markdown hard breaks outside code fences, piece by piece.

    Markdown joins the lines of a paragraph, which would run a model's line-by-line answer (or a
    poem, or an unfenced snippet) together. Two spaces before a newline keep the break.
    """

    def __init__(self) -> None:
        self.line = ""  # the current line so far
        self.fence = False  # inside a ``` block

    def feed(self, fragment: str) -> str:
        out = []
        for part in re.split(r"(\n)", fragment):
            if part != "\n":
                self.line += part
                out.append(part)
                continue
            stripped = self.line.strip()
            if stripped.startswith(("```", "~~~")):
                self.fence = not self.fence
                out.append("\n")
            elif self.fence or not stripped:
                out.append("\n")
            else:
                out.append("  \n")
            self.line = ""
        return "".join(out)


class ChatMessage(Vertical, can_focus=True):
    """One message: a small title and a Markdown body. `text` is always the whole message."""

    BINDINGS = [
        Binding("c", "copy", "Copy", id="copy"),
        Binding("up,k", "neighbour(-1)", "Previous", show=False),
        Binding("down,j", "neighbour(1)", "Next", show=False),
        Binding("escape,i", "back_to_prompt", "Back to input", show=False),
    ]

    def __init__(self, role: str, text: str = "", *, classes: str = "", recollections: list[str] = ()) -> None:
        super().__init__(classes=f"message -{role} {classes}".strip())
        self.role = role
        self.text = text  # what the message says (copied with c); the body shows it as Markdown
        self._recollections = list(recollections)  # lines under a reply: what the memory supplied
        self._stream: MarkdownStream | None = None
        self._breaks = LineBreaks() if role in KEEP_BREAKS else None

    def _markdown(self, text: str) -> str:
        return LineBreaks().feed(text) if self._breaks is not None else text

    def compose(self):
        title = ROLE_TITLES.get(self.role, self.role)
        if title:
            yield Label(title, classes="message-title")
        yield Markdown(self._markdown(self.text), classes="message-body")
        for line in self._recollections:
            yield Label(line, classes="message-recall", markup=False)

    @property
    def body(self) -> Markdown:
        return self.query_one(".message-body", Markdown)

    # -- streaming -------------------------------------------------------------------------------

    async def append(self, fragment: str) -> None:
        """Add a streamed piece; the MarkdownStream batches pieces that arrive faster than it renders."""
        if self._stream is None:
            self._stream = Markdown.get_stream(self.body)
        self.text += fragment
        await self._stream.write(self._breaks.feed(fragment) if self._breaks else fragment)

    async def finish(self, text: str | None = None) -> None:
        """Stop streaming and render the final text once, whole (fixes any half-parsed Markdown)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if text is not None:
            self.text = text
        await self.body.update(self._markdown(self.text))

    async def add_recollections(self, lines: list[str]) -> None:
        """Small lines under the reply: what the memory supplied and where it was said."""
        for line in lines:
            await self.mount(Label(line, classes="message-recall", markup=False))

    # -- keys --------------------------------------------------------------------------------------

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify(f"Copied {len(self.text):,} characters.", timeout=2)

    def action_neighbour(self, step: int) -> None:
        messages = list(self.parent.query(ChatMessage)) if self.parent else []
        index = messages.index(self) + step
        if 0 <= index < len(messages):
            messages[index].focus()
            messages[index].scroll_visible()
        elif step > 0:
            self.action_back_to_prompt()

    def action_back_to_prompt(self) -> None:
        self.screen.focus_next("PromptArea")  # the one input of the main screen


class ChatView(VerticalScroll):
    """The message column; stays scrolled to the bottom while a reply streams (anchor)."""

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, role: str, text: str = "") -> ChatMessage:
        message = ChatMessage(role, text)
        await self.mount(message)
        self.anchor()
        return message

    def messages(self) -> list[ChatMessage]:
        return list(self.query(ChatMessage))

    def last_exchange(self) -> tuple[ChatMessage, ChatMessage] | None:
        """Today's last user message and the reply under it, as shown (not slept, not hidden)."""
        turns = [m for m in self.messages()
                 if m.role in ("user", "assistant") and m.display and not m.has_class("-slept")]
        if len(turns) < 2 or (turns[-2].role, turns[-1].role) != ("user", "assistant"):
            return None
        return turns[-2], turns[-1]
