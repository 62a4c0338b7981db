"""A small stand-in for `dreamchat.assistant.Assistant`, honouring the contract in
docs/architecture.md, for the TUI tests that need what the tiny model cannot give: fixed reply
text (snapshot tests), slow replies and slow sleeps (cancel tests), sleeps that pause on a step.

Everything else in the TUI tests drives the real Assistant with the tiny GGUF.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dreamchat.assistant import SleepCancelled
from dreamchat.config import Config
from dreamchat.errors import EmptyMessageError, MemoryStoreError, ModelError
from dreamchat.events import (MemoryStatus, NapStarted, ReplyDone, ReplyPiece, SleepProgress,
                              SleepReport, SnapshotInfo)

REPLY = ("Here is a tiny Python example:\n\n```python\ndef greet(name):\n    return f\"Hello, {name}!\"\n"
         "```\n\nCall it with `greet(\"Ada\")`.")


@dataclasses.dataclass(frozen=True)
class FakeMessage:
    id: int
    role: str
    text: str
    tokens: int
    created: str  # ISO-8601 UTC, as the journal stores it
    sleep_id: int | None


class FakeAssistant:
    model_name = "fake-model-1B.Q4"

    def __init__(self, *, reply: str = REPLY, piece_delay: float = 0.0, step_delay: float = 0.0,
                 n_ctx: int = 4096, config: Config | None = None,
                 pause_sleep_at: int | None = None, nap_tokens: int = 0,
                 fail_with: Exception | None = None, recalled: tuple = (), finish_reason: str = "stop") -> None:
        self.reply = reply
        self.finish_reason = finish_reason  # of every ReplyDone
        self.recalled = recalled  # what every ReplyDone says the memory supplied
        self.piece_delay = piece_delay  # seconds between reply pieces
        self.step_delay = step_delay  # seconds per sleep step (chunk read or pass)
        self.n_ctx = n_ctx
        self.config = config or Config()
        self.pause_sleep_at = pause_sleep_at  # sleep step at which to wait for `release`
        self.release = threading.Event()
        self.nap_tokens = nap_tokens  # > 0: every reply starts with a nap on this many tokens
        self.fail_with = fail_with  # raised after the first piece of a reply
        self.messages: list[FakeMessage] = []
        self.snapshots: list[SnapshotInfo] = []
        self.last_report: SleepReport | None = None
        self.sleep_calls: list[tuple[int | None, str]] = []
        self.system_prompt = self.config.system_prompt
        self.closed = False

    # -- the day ---------------------------------------------------------------------------------

    def context_usage(self) -> tuple[int, int]:
        return sum(m.tokens for m in self.messages if m.sleep_id is None), self.n_ctx

    def has_unslept(self) -> bool:
        return any(m.sleep_id is None for m in self.messages)

    def oldest_unslept(self) -> str | None:
        unslept = [m for m in self.messages if m.sleep_id is None]
        return unslept[0].created if unslept else None

    def add_message(self, role: str, text: str, created: datetime | None = None) -> None:
        created = created or datetime.now(timezone.utc)
        self.messages.append(FakeMessage(len(self.messages) + 1, role, text, len(text.split()) + 4,
                                         created.isoformat(), None))

    def send(self, text: str) -> Iterator[ReplyPiece | NapStarted | ReplyDone]:
        if not text.strip():
            raise EmptyMessageError("empty message: type something to send")
        words = self.reply.split(" ")
        if self.nap_tokens:
            yield NapStarted(self.nap_tokens)
        for i, word in enumerate(words):
            if i == 1 and self.fail_with is not None:
                raise self.fail_with
            if self.piece_delay:
                time.sleep(self.piece_delay)
            yield ReplyPiece(word if i == 0 else " " + word)
        # Only a reply that ran to the end is stored (a closed generator never gets here).
        self.add_message("user", text)
        self.add_message("assistant", self.reply)
        yield ReplyDone(self.reply, len(words), 42.0, 0.01, self.finish_reason, self.recalled)  # fixed speed: snapshots

    def recollections(self, message_ids: list[int]) -> dict:
        """Every stored reply recalled `self.recalled` (the fake does not keep them per reply)."""
        return {i: self.recalled for i in message_ids if self.recalled}

    # -- the night ---------------------------------------------------------------------------------

    def sleep(self, passes=None, *, kind="manual", on_progress=None, should_stop=None):
        self.sleep_calls.append((passes, kind))
        unslept = [m for m in self.messages if m.sleep_id is None]
        if not unslept:
            return None
        passes = passes or self.config.sleep.passes
        tokens = sum(m.tokens for m in unslept)
        chunks = 2
        steps = [("reading", c, 0) for c in range(1, chunks + 1)]
        steps += [("consolidating", c, p) for c in range(1, chunks + 1) for p in range(1, passes + 1)]
        started = time.perf_counter()
        for index, (phase, chunk, pass_) in enumerate(steps):
            if should_stop and should_stop():
                raise SleepCancelled("sleep cancelled: yesterday's memory is untouched")
            if self.step_delay:
                time.sleep(self.step_delay)
            if on_progress:
                on_progress(SleepProgress(phase, chunk, chunks, pass_, passes, tokens * (index + 1)
                                          // len(steps), tokens, 1234.0))
            if self.pause_sleep_at == index:  # hold here (a snapshot, a cancel) until released
                while not self.release.wait(0.02):
                    if should_stop and should_stop():
                        raise SleepCancelled("sleep cancelled: yesterday's memory is untouched")
        night = len(self.snapshots) + 1
        snapshot = SnapshotInfo(f"night-{night:04d}", datetime(2026, 11, 24, 2, 0), 65536, passes,
                                tokens, night, True)
        self.snapshots = [dataclasses.replace(s, is_current=False) for s in self.snapshots] + [snapshot]
        self.messages = [dataclasses.replace(m, sleep_id=night) if m.sleep_id is None else m
                         for m in self.messages]
        self.last_report = SleepReport(night, kind, tokens, len(unslept), passes,
                                       time.perf_counter() - started, snapshot.id, night)
        return self.last_report

    def memory_status(self) -> MemoryStatus:
        return MemoryStatus(nights=len(self.snapshots),
                            last_sleep=None,  # no clock text in snapshot tests
                            snapshots=list(self.snapshots),
                            fingerprint="f" * 8 if self.snapshots else None,
                            last_report=self.last_report, tower="fake-tower.safetensors")

    def rollback(self, snapshot_id: str) -> None:
        if snapshot_id not in {s.id for s in self.snapshots}:
            raise MemoryStoreError(f"no snapshot '{snapshot_id}'; /memory lists them")
        self.snapshots = [dataclasses.replace(s, is_current=s.id == snapshot_id) for s in self.snapshots]

    def reset_memory(self) -> None:
        self.snapshots = []
        self.last_report = None

    # -- the journal ---------------------------------------------------------------------------------

    def history(self, limit: int | None = None) -> list[FakeMessage]:
        return self.messages[-limit:] if limit else list(self.messages)

    def today(self) -> list[FakeMessage]:
        return [m for m in self.messages if m.sleep_id is None]

    def search(self, query: str, limit: int = 50) -> list[FakeMessage]:
        return [m for m in self.messages if query.lower() in m.text.lower()][:limit]

    def export(self, fmt: str, path=None) -> str:
        text = "\n\n".join(f"**{m.role}**: {m.text}" for m in self.messages)
        if path is None:
            return text
        Path(path).write_text(text, encoding="utf-8")
        return str(path)

    # -- settings ------------------------------------------------------------------------------------

    def set_system_prompt(self, text: str) -> None:
        self.config = self.config.with_setting("system_prompt", text)

    def set_setting(self, key: str, value: str) -> None:
        self.config = self.config.with_setting(key, value)

    def switch_model(self, path: str) -> None:
        if not Path(path).is_file():
            raise ModelError(f"model file not found: {path}; give the path of a .gguf file")
        self.model_name = Path(path).stem

    def close(self) -> None:
        self.closed = True


def fake_clock(start: datetime):
    """A settable clock: `clock()` returns `clock.now`; tests move `clock.now` forward."""

    def clock() -> datetime:
        return clock.now

    clock.now = start
    return clock


def later(clock, **delta) -> None:
    clock.now = clock.now + timedelta(**delta)


async def wait_until(pilot, predicate, *, timeout: float = 60.0, what: str = "") -> None:
    """Let the app run until predicate() is true (instead of sleeping a fixed time)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        await pilot.pause(0.02)


def run_async(test):
    """Run an `async def` pilot test with asyncio.run (the suite has no async pytest plugin)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper
