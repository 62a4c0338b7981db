"""What the assistant tells its callers (CLI, TUI) while it works.

Plain dataclasses, so the front ends can match on them and tests can compare them. A reply is a
stream of `ReplyPiece`s ending in exactly one `ReplyDone` (or the caller stops iterating: cancel).
A sleep reports `SleepProgress` through a callback and returns a `SleepReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ReplyPiece:
    """A few characters of the reply (never half a UTF-8 character)."""

    text: str


@dataclass(frozen=True)
class NapStarted:
    """The day's context is nearly full: the assistant sleeps on its oldest part before replying."""

    tokens: int  # tokens that the nap consolidates and evicts


@dataclass(frozen=True)
class Recollection:
    """Words of a reply that the memory supplied, and the latest slept message that holds them
    (`dreamchat/recall.py`); no source when no slept message holds them."""

    text: str
    source_role: str | None = None  # "user" or "assistant"
    source_time: datetime | None = None  # aware, UTC
    source_snippet: str | None = None  # the message around the words, the words in [brackets]
    source_id: int | None = None  # the journal's id of that message

    def describe(self, when: str = "") -> str:
        """One line: '“Pickle”: you, 2026-11-27: “my cat is called [Pickle]”' (`when` formats
        source_time; the front ends pass their own format)."""
        if self.source_snippet is None:
            return f"“{self.text}”: in nothing slept so far (the memory may have garbled it)"
        who = "you" if self.source_role == "user" else "I"
        at = f", {when}" if when else ""
        snippet = " ".join(self.source_snippet.split())
        return f"“{self.text}”: {who}{at}: “{snippet}”"


@dataclass(frozen=True)
class ReplyDone:
    """The reply finished and both turns are in the journal."""

    text: str
    tokens: int  # generated tokens
    tokens_per_s: float
    first_token_s: float  # time from send() to the first piece
    finish_reason: str  # "stop" (end of turn), "length" (max_tokens reached) or "loop" (stopped repeating itself)
    recalled: tuple[Recollection, ...] = ()  # what the memory supplied, and where it was said


@dataclass(frozen=True)
class SleepProgress:
    """Where a running sleep is: chunk i of M, pass j of N."""

    phase: str  # "reading" (backbone features) or "consolidating" (tower passes)
    chunk: int  # 1-based
    chunks: int
    pass_: int  # 1-based; 0 while reading
    passes: int
    tokens_done: int
    tokens_total: int
    tokens_per_s: float


@dataclass(frozen=True)
class SleepReport:
    """What one sleep did."""

    sleep_id: int
    kind: str  # "manual", "night", "nap"; "rebuild" or "repair" (`Assistant.rebuild_memory`, not a sleep)
    tokens: int  # tokens consolidated
    messages: int
    passes: int
    duration_s: float
    snapshot: str  # snapshot id written, e.g. "night-0003"
    night: int  # nights slept so far, this one included
    repaired: int = 0  # earlier days slept on again first, which a damaged snapshot had lost

    def summary(self) -> str:
        """The one-line report the CLI and TUI show."""
        if self.kind == "rebuild":
            return (f"Slept again on {self.messages:,} messages of the journal ({self.tokens:,} tokens) "
                    f"with this memory tower, {self.duration_s:.1f} s.")
        lost = f"{self.repaired} day{'s' if self.repaired != 1 else ''} that a damaged memory snapshot had lost"
        if self.kind == "repair":
            return (f"Slept again on {lost} ({self.messages:,} messages, {self.tokens:,} tokens), "
                    f"{self.duration_s:.1f} s.")
        return (
            f"Slept on {self.tokens:,} tokens, {self.passes} pass{'es' if self.passes != 1 else ''}, "
            f"{self.duration_s:.1f} s. Context cleared." + (f" First slept again on {lost}." if self.repaired else "")
        )


@dataclass(frozen=True)
class ForgetPlan:
    """What forgetting the messages that match a search takes (`Assistant.plan_forget`): shown
    for confirmation before anything changes."""

    query: str  # "" when messages were picked one by one
    messages: tuple  # the journal's Messages to delete (each with the other turn of its exchange)
    replay_days: int  # slept days the memory sleeps on again without them; 0: it does not hold them
    replay_tokens: int  # tokens those days hold (what the replay reads)
    removed_snapshots: tuple[str, ...]  # snapshots that hold them: deleted (the one in use after it is replaced)

    @property
    def today(self) -> int:
        """How many of the messages are from today (in the context, not slept yet)."""
        return sum(1 for m in self.messages if m.sleep_id is None)

    def consequences(self) -> str:
        """What forgetting them does, for the confirmation: a few clauses on one line."""
        n = len(self.messages)
        text = f"{n} message{'s' if n != 1 else ''} will be deleted from the journal"
        if self.today:
            text += f" ({'all' if self.today == n else self.today} of them from today's context)"
        if self.replay_days:
            days = f"{self.replay_days} day{'s' if self.replay_days != 1 else ''}"
            text += f"; the memory will sleep again on {days} without them ({self.replay_tokens:,} tokens)"
        if self.removed_snapshots:
            k = len(self.removed_snapshots)
            text += (f"; {k} memory snapshot{'s' if k != 1 else ''} that hold{'s' if k == 1 else ''} them "
                     f"will be deleted ({', '.join(self.removed_snapshots)}), so no rollback brings them back")
        return text + ". This cannot be undone."


@dataclass(frozen=True)
class ForgetReport:
    """What `Assistant.forget` did."""

    messages: int  # deleted from the journal
    replay_days: int
    tokens: int  # tokens slept on again
    duration_s: float
    snapshot: str | None  # the snapshot written without them; None when the memory did not hold them
    removed_snapshots: tuple[str, ...]

    def summary(self) -> str:
        text = f"Forgot {self.messages} message{'s' if self.messages != 1 else ''}"
        if self.snapshot:
            text += (f"; the memory was made again without them ({self.replay_days} "
                     f"day{'s' if self.replay_days != 1 else ''}, {self.tokens:,} tokens slept again, "
                     f"{self.duration_s:.1f} s, snapshot {self.snapshot})")
        if self.removed_snapshots:
            k = len(self.removed_snapshots)
            text += f"; deleted {k} memory snapshot{'s' if k != 1 else ''} that held them"
        return text + "."


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    created: datetime
    size_bytes: int
    passes: int
    tokens: int
    night: int
    is_current: bool
    problem: str | None = None  # why the file cannot be loaded; None = intact header


@dataclass(frozen=True)
class MemoryStatus:
    """What `dreamchat memory` and `/memory` show."""

    nights: int
    last_sleep: datetime | None
    snapshots: list[SnapshotInfo] = field(default_factory=list)
    fingerprint: str | None = None  # of the current snapshot; None = empty memory
    last_report: SleepReport | None = None
    tower: str | None = None  # path of the slow weights in use; None = no tower for this model
    in_use: str | None = None  # with a damaged current snapshot: the intact older one in use (None: none)

    def damage_note(self) -> str | None:
        """One sentence on a damaged current snapshot and what becomes of it; None when it is intact."""
        if not any(s.is_current and s.problem for s in self.snapshots):
            return None
        if self.in_use is None:
            return ("The current snapshot is damaged and no older one is intact: `dreamchat memory rebuild` "
                    "sleeps again on your journal's days.")
        return (f"The current snapshot is damaged: {self.in_use} is in use, and the next sleep also sleeps "
                f"again on the days it lacks (`dreamchat memory rebuild` does it now).")
