"""One thread that owns the Assistant.

The assistant holds a llama.cpp context and an SQLite connection, and SQLite connections belong to
the thread that opened them. Textual starts a new thread for every thread worker, so the workers do
not call the assistant themselves: they hand a function to this host, which runs it on its single
thread, in order, and waits for the result. One consequence is used on purpose: a message sent
while the model is still loading simply waits in the queue behind `open`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from dreamchat.errors import DreamchatError

if TYPE_CHECKING:
    from dreamchat.assistant import Assistant

log = logging.getLogger(__name__)
T = TypeVar("T")
RESTORED_MESSAGES = 200  # today's unslept messages shown again (at most)


class AssistantUnavailable(DreamchatError):
    """The assistant failed to open; commands that need it say why."""


class AssistantHost:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dreamchat-assistant")
        self.assistant: Assistant | None = None
        self.error: BaseException | None = None

    def open(self, open_assistant: Callable[[], "Assistant"]) -> "Assistant":
        """Open the assistant on the host thread (blocks the calling worker, not the UI)."""
        return self._pool.submit(self._open, open_assistant).result()

    def _open(self, open_assistant: Callable[[], "Assistant"]) -> "Assistant":
        try:
            self.assistant = open_assistant()
        except BaseException as err:
            self.error = err
            raise
        self.error = None
        return self.assistant

    def call(self, fn: Callable[["Assistant"], T]) -> T:
        """Run fn(assistant) on the host thread, after anything queued before it; return its result."""
        return self._pool.submit(self._call, fn).result()

    def _call(self, fn: Callable[["Assistant"], T]) -> T:
        if self.assistant is None:
            reason = str(self.error) if self.error else "the model has not been loaded"
            raise AssistantUnavailable(f"no model is loaded ({reason}); fix it and restart dreamchat")
        return fn(self.assistant)

    def drop(self, reason: str) -> None:
        """Close the assistant (after the queued work) but keep the host: later calls fail with
        AssistantUnavailable naming `reason`."""
        def close_assistant() -> None:
            if self.assistant is not None:
                self.assistant.close()
                self.assistant = None
            self.error = DreamchatError(reason)

        self._pool.submit(close_assistant).result()

    def close(self) -> None:
        """Close the assistant (releases the lock and the journal) after the queued work, then stop."""
        def close_assistant() -> None:
            if self.assistant is not None:
                try:
                    self.assistant.close()
                except DreamchatError as err:  # closing must not hide the way out
                    log.warning("closing the assistant: %s", err)
                self.assistant = None

        self._pool.submit(close_assistant)
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class StatusInfo:
    """What the status bar shows; read on the host thread after each reply, sleep or command."""

    model_name: str
    context_used: int
    context_size: int
    nights: int
    last_sleep: datetime | None
    has_unslept: bool

    @property
    def context_fill(self) -> float:
        return self.context_used / self.context_size if self.context_size else 0.0


def read_status(assistant: "Assistant") -> StatusInfo:
    """Collect the status bar's numbers (call it on the host thread)."""
    used, size = assistant.context_usage()
    memory = assistant.memory_status()
    return StatusInfo(model_name=assistant.model_name, context_used=used, context_size=size,
                      nights=memory.nights, last_sleep=memory.last_sleep,
                      has_unslept=assistant.has_unslept())


def ready_state(assistant: "Assistant") -> tuple:
    """What the view shows of a day (at start-up, after a forget or an undo): the status, the
    oldest unslept message, today's messages and what the memory supplied to today's replies."""
    today = assistant.today()[-RESTORED_MESSAGES:]
    recalled = assistant.recollections([m.id for m in today if m.role == "assistant"])
    return read_status(assistant), assistant.oldest_unslept(), today, recalled
