"""The status bar: model, context fill, memory, speed of the last reply."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Static

from dreamchat.tui.formatting import when
from dreamchat.tui.host import StatusInfo

WARN_FILL = 0.85  # context fill above this turns the gauge to the warning colour


class StatusBar(Horizontal):
    """One line of segments; `show(info)` after every reply, sleep or model change."""

    def compose(self):
        yield Static("loading model…", id="status-model", classes="segment")
        yield Static("", id="status-context", classes="segment")
        yield Static("", id="status-speed", classes="segment")
        yield Static("", id="status-memory", classes="segment")

    def _segment(self, name: str) -> Static:
        return self.query_one(f"#status-{name}", Static)

    def show(self, info: StatusInfo) -> None:
        self._segment("model").update(Text(info.model_name))
        self._segment("model").remove_class("-error")
        fill = info.context_fill
        context = self._segment("context")
        context.update(f"context {info.context_used:,} / {info.context_size:,} ({fill:.0%})")
        context.set_class(fill > WARN_FILL, "-warn")
        nights = f"{info.nights} night{'s' if info.nights != 1 else ''} slept"
        last = f" · last {when(info.last_sleep)}" if info.last_sleep else ""
        self._segment("memory").update(f"memory: {nights}{last}")

    def show_speed(self, tokens_per_s: float) -> None:
        self._segment("speed").update(f"{tokens_per_s:.1f} tok/s")

    def show_loading(self, text: str) -> None:
        self._segment("model").update(Text(text))

    def show_problem(self, text: str) -> None:
        self._segment("model").update(Text(text))
        self._segment("model").add_class("-error")
