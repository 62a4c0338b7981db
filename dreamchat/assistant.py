"""The assistant: one user's days and nights with the hybrid model.

The day lives in the backbone's KV cache and is mirrored here token by token (ids and final hidden
states), so the memory tower's wake session can be rebuilt without re-running the backbone. Nothing
lives only in RAM: every finished exchange is in the journal, every night in a memory snapshot, and
the day is rebuilt from the journal's unslept messages when the assistant opens.

Sleep is Algorithm 1 of the paper made persistent: render the unslept messages as the backbone saw
them, read them in context-sized chunks, let the tower consolidate them with N passes, write the new
fast weights atomically, and only then mark the messages slept. The journal is the source of truth:
a snapshot whose sleep never finished in the journal is rolled back when the assistant opens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from dreamchat.config import Config, load_config, save_config
from dreamchat.errors import (
    ContextFullError,
    DreamchatError,
    EmptyMessageError,
    MemoryStoreError,
    TakeBackError,
)
from dreamchat.events import (
    ForgetPlan,
    ForgetReport,
    MemoryStatus,
    NapStarted,
    Recollection,
    ReplyDone,
    ReplyPiece,
    SleepProgress,
    SleepReport,
    SnapshotInfo,
)
from dreamchat.loading import load_memory_model, resolve_model_path
from dreamchat.lock import InstanceLock
from dreamchat.paths import Paths
from dreamchat.storage.journal import Journal, Message
from dreamchat.storage.memory_store import MemoryStore, Snapshot, SnapshotMeta

log = logging.getLogger(__name__)

# Tokens kept free in the context for the reply (at most; see _reserve): a turn that would cut into
# them triggers a nap. A longer reply runs on until the window is full.
REPLY_RESERVE = 256
# The backbone reads a day for sleep in chunks of at most this many tokens (and of at most n_ctx).
SLEEP_CHUNK_TOKENS = 1024


@dataclass(frozen=True)
class _ForgetSteps:
    """How `Assistant.forget` removes some messages from the memory."""

    base: Snapshot | None = None  # the snapshot to sleep again from; None: an empty memory
    replay: tuple[int, ...] = ()  # the journal's sleeps to sleep again on, without the messages
    held: tuple[int, ...] = ()  # every sleep the new memory holds (the memory in use's)
    removed: tuple[str, ...] = ()  # snapshots that hold the messages: deleted


class SleepCancelled(DreamchatError):
    """The user cancelled a sleep: memory and journal are as they were before it."""


class Assistant:
    """One home's assistant: journal, backbone, memory. Open it with `Assistant.open()`."""

    def __init__(self, *, paths: Paths, config: Config, journal: Journal, backbone=None,
                 memory=None, weights_path: Path | None = None, store: MemoryStore | None = None,
                 lock: InstanceLock | None = None, load_memory: bool = True):
        self.paths = paths
        self.config = config
        self.journal = journal
        self.backbone = backbone
        self.memory = memory  # MemoryModel, or None when this backbone has no trained tower
        self.weights_path = weights_path
        self.store = store
        self._lock = lock
        self._state = None  # the fast weights S of the last night (a dict of tensors)
        # (the damaged current snapshot's id, the older snapshot loaded instead): see _memory_gap
        self._fallback: tuple[str, Snapshot] | None = None
        self._wake = None  # WakeSession over today's tokens
        # The final hidden state of each token in the backbone's KV cache (backbone.tokens), in order.
        self._ctx_hidden: list[np.ndarray] = []
        self._last_report: SleepReport | None = None
        if backbone is not None:
            if load_memory:
                self._load_memory_state()
            else:  # memory maintenance (reset, rollback, rebuild) must work on a memory it cannot load
                self._state = memory.empty_state() if memory is not None else None
                base = store.base() if store is not None else None
                if base is not None and base.id != store.current_id:  # as loading would fall back
                    self._fallback = (store.current_id, base)
            self._rebuild_day()

    # ----------------------------------------------------------------------------------------
    # Opening and closing

    @classmethod
    def open(cls, home: str | None = None, model: str | None = None, *, weights: str | None = None,
             config: Config | None = None, lock: bool = True, progress: bool = False,
             load_memory: bool = True) -> Assistant:
        """Open the assistant of one home with its model and memory; one-line errors on bad input."""
        from dreamchat.models.backbone import Backbone

        paths = Paths.for_home(home)
        paths.ensure()
        config = config or load_config(paths.config_file)
        instance_lock = InstanceLock(paths) if lock else None
        if instance_lock:
            instance_lock.acquire()
        try:
            journal = Journal(paths.journal_file)
            model_path = resolve_model_path(model or config.model.path, progress=progress)
            backbone = Backbone(
                model_path,
                n_ctx=config.model.n_ctx,
                n_threads=config.model.threads or None,
                n_gpu_layers=None if config.model.gpu_layers < 0 else config.model.gpu_layers,
            )
            memory, weights_path = load_memory_model(backbone, weights)
            store = MemoryStore(paths.memory_dir, keep=config.sleep.keep_snapshots)
            return cls(paths=paths, config=config, journal=journal, backbone=backbone, memory=memory,
                       weights_path=weights_path, store=store, lock=instance_lock, load_memory=load_memory)
        except BaseException:
            if instance_lock:
                instance_lock.release()
            raise

    @classmethod
    def open_journal_only(cls, home: str | None = None) -> Assistant:
        """History, search and export need no model and no lock (SQLite WAL allows a reader)."""
        paths = Paths.for_home(home)
        paths.ensure()
        config = load_config(paths.config_file)
        store = MemoryStore(paths.memory_dir, keep=config.sleep.keep_snapshots)
        return cls(paths=paths, config=config, journal=Journal(paths.journal_file), store=store)

    def close(self) -> None:
        if self.backbone is not None:
            self.backbone.close()
        self.journal.close()
        if self._lock:
            self._lock.release()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------
    # The day

    @property
    def model_name(self) -> str:
        return self.backbone.name if self.backbone is not None else "(no model)"

    @property
    def model_path(self) -> Path | None:
        return self.backbone.path if self.backbone is not None else None

    def context_usage(self) -> tuple[int, int]:
        """(tokens in today's context, the backbone's window)."""
        return self.backbone.n_past, self.backbone.n_ctx

    def has_unslept(self) -> bool:
        return bool(self.journal.unslept_messages())

    def oldest_unslept(self) -> datetime | None:
        messages = self.journal.unslept_messages()
        return messages[0].created if messages else None

    def send(self, text: str) -> Iterator[ReplyPiece | NapStarted | ReplyDone]:
        """One user turn: stream the reply; store both turns only when the reply completed."""
        from dreamchat.models.sampler import Sampler

        text = text.strip()
        if not text:
            raise EmptyMessageError("empty message: type something to send")
        yield from self._reply(text, Sampler.from_settings(self.config.sampling))

    def last_exchange(self, doing: str = "take back") -> tuple[Message, Message]:
        """Today's last user turn and the reply to it (what `retry` and `take_back` act on)."""
        today = self.journal.unslept_messages()
        if len(today) < 2 or (today[-2].role, today[-1].role) != ("user", "assistant"):
            raise TakeBackError(
                f"nothing to {doing}: today's conversation is empty (what was slept is in the "
                "memory; /forget TEXT removes it from there)")
        return today[-2], today[-1]

    def retry(self) -> Iterator[ReplyPiece | NapStarted | ReplyDone]:
        """A new reply to today's last user turn. The old exchange is replaced only once the new
        reply completes: a cancelled or failed retry leaves it as it was."""
        from dataclasses import replace

        from dreamchat.models.sampler import Sampler

        user, reply = self.last_exchange("retry")
        if self.config.sampling.temperature == 0:
            raise TakeBackError(
                "temperature is 0, so a new reply would be the same one; raise it first "
                "(e.g. /set temperature 0.7)")
        # A fixed seed would draw the same reply again from the same logits.
        sampler = Sampler.from_settings(replace(self.config.sampling, seed=None))
        yield from self._reply(user.text, sampler, replacing=(user.id, reply.id))

    def take_back(self) -> Message:
        """Delete today's last exchange (both turns, for good, as `forget` does) and return the
        user turn, whose text the front ends give back to edit."""
        user, reply = self.last_exchange()
        self.journal.forget([user.id, reply.id])
        self._sync_context(self._render(self.journal.unslept_messages()))
        return user

    def _reply(self, text: str, sampler, replacing: tuple[int, ...] = ()
               ) -> Iterator[ReplyPiece | NapStarted | ReplyDone]:
        """Stream a reply to `text` after today's messages (less those `replacing`, which the new
        exchange replaces in the journal once the reply is complete)."""
        from dreamchat.models.generation import Done, Piece, generate

        def context() -> list[Message]:
            return [m for m in self.journal.unslept_messages() if m.id not in replacing]

        started = time.perf_counter()
        target = self._render(context(), user_text=text)
        if len(target) + self._reserve() > self.backbone.n_ctx:
            nap_tokens = self._nap_for(text, context())
            yield NapStarted(tokens=nap_tokens)
            target = self._render(context(), user_text=text)
            if len(target) + self._reserve() > self.backbone.n_ctx:
                raise ContextFullError(
                    f"this message ({len(target):,} tokens with its context) does not fit the "
                    f"{self.backbone.n_ctx:,}-token window; send a shorter message or raise model.n_ctx in config.toml"
                )
        # Everything but the last prompt token is decoded here (so the tower sees every hidden
        # state); generate() decodes the last one and from then on calls the hook once per token.
        self._sync_context(target[:-1])
        max_tokens = min(self.config.sampling.max_tokens, self.backbone.n_ctx - len(target) - 1)
        hook, memory = self._reply_hook()
        events = generate(self.backbone, target[-1:], sampler, max_tokens=max_tokens,
                          hook=hook, want_hidden=True, stop_loops=self.config.sampling.stop_loops)
        first_piece_at = None
        try:
            for event in events:
                if isinstance(event, Piece):
                    if first_piece_at is None:
                        first_piece_at = time.perf_counter()
                    yield ReplyPiece(event.text)
                elif isinstance(event, Done):
                    reply = event.text.strip()
                    user_tokens = len(target) - len(self._render(context()))
                    recalled = self._recalled(memory)
                    self.journal.append_exchange(text, reply, user_tokens, event.n_tokens,
                                                 [(r.text, r.source_id, r.source_snippet) for r in recalled],
                                                 replacing=replacing)
                    yield ReplyDone(
                        text=reply, tokens=event.n_tokens, tokens_per_s=event.tokens_per_s,
                        first_token_s=(first_piece_at or time.perf_counter()) - started,
                        finish_reason=event.finish_reason, recalled=recalled,
                    )
        finally:
            events.close()

    def _recalled(self, memory) -> tuple[Recollection, ...]:
        """What the memory supplied to the reply just made, and where it was said (`recall.py`)."""
        if memory is None or not any(memory.decided):
            return ()
        from dreamchat.recall import recalled_phrases, recollections

        pieces = [self.backbone.token_bytes(t) for t in memory.reply]
        return recollections(recalled_phrases(pieces, memory.decided), self.journal.search_slept)

    def _reserve(self) -> int:
        return min(REPLY_RESERVE, self.config.sampling.max_tokens, self.backbone.n_ctx // 4)

    def _reply_hook(self):
        """The one place where the memory side meets the backbone: mirror each token's hidden
        state (a restarted wake session re-reads them) and add the memory's bias (`ReplyHook`).
        Returns (the hook for generate, the ReplyHook or None without a memory)."""
        memory = None
        if self._wake is not None:
            from dreamchat.models.wake import ReplyHook  # torch is loaded with the memory, not before
            memory = ReplyHook(self._wake, repeatable=self.backbone.digit_tokens())

        def hook(logits: np.ndarray, hidden: np.ndarray, tokens: list[int]) -> np.ndarray:
            self._ctx_hidden.append(hidden)
            return memory(logits, hidden, tokens) if memory is not None else logits
        return hook, memory

    def _render(self, messages: list[Message], user_text: str | None = None) -> list[int]:
        """The day's tokens as the backbone sees them (+ a new user turn and the reply prompt)."""
        from dreamchat.models.features import render_day

        turns = [{"role": m.role, "content": m.text} for m in messages]
        if user_text is None:
            return render_day(self.backbone, turns, self.config.system_prompt)
        turns.append({"role": "user", "content": user_text})
        return render_day(self.backbone, turns, self.config.system_prompt, add_generation_prompt=True)

    def _sync_context(self, target: list[int]) -> None:
        """Make the KV cache hold exactly `target`, decoding only what is new."""
        have = self.backbone.tokens
        keep = 0
        for old, new in zip(have, target):
            if old != new:
                break
            keep += 1
        if keep < len(have):
            # The cache holds a cancelled reply or a re-tokenised tail: cut it, and rebuild the
            # wake session from the mirrored hidden states (the tower cannot un-read tokens).
            self.backbone.truncate(keep)
            del self._ctx_hidden[keep:]
            self._restart_wake()
        new = target[keep:]
        if new:
            decoded = self.backbone.decode(new, hidden=True)
            self._ctx_hidden.extend(decoded.hidden)
            if self._wake is not None:
                self._wake.feed(decoded.hidden, np.asarray(new))

    def _restart_wake(self) -> None:
        self._wake = None
        if self.memory is None:
            return
        self._wake = self.memory.wake(self._state)
        if self._ctx_hidden:
            self._wake.feed(np.stack(self._ctx_hidden), np.asarray(self.backbone.tokens))

    def _rebuild_day(self) -> None:
        """Clear the cache and decode today's unslept messages: the day as it was."""
        self.backbone.clear()
        self._ctx_hidden = []
        self._restart_wake()
        tokens = self._render(self.journal.unslept_messages())
        if len(tokens) + self._reserve() > self.backbone.n_ctx:
            # A day bigger than this window (say, after switching to a smaller n_ctx): the next
            # send() naps first; keep only the system prompt decoded until then.
            tokens = self._render([])
        self._sync_context(tokens)

    def _nap_for(self, user_text: str, messages: list[Message]) -> int:
        """Sleep on the oldest of `messages` (today's context) so that the day keeps about
        nap_keep_tokens and the turn fits."""
        keep_budget = min(self.config.sleep.nap_keep_tokens,
                          self.backbone.n_ctx - self._reserve() - len(self._render([], user_text)))
        cut = len(messages)
        while cut > 0 and len(self._render(messages[cut - 1:], user_text)) <= keep_budget:
            cut -= 1
        # Never split an exchange: a nap takes whole user/assistant pairs from the front.
        while cut < len(messages) and messages[cut].role != "user":
            cut += 1
        if cut == 0:
            cut = min(2, len(messages))
        report = self.sleep(kind="nap", messages=messages[:cut])
        return report.tokens if report else 0

    # ----------------------------------------------------------------------------------------
    # The night

    def sleep(self, passes: int | None = None, *, kind: str = "manual",
              on_progress: Callable[[SleepProgress], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              messages: list[Message] | None = None) -> SleepReport | None:
        """Consolidate unslept messages into the fast weights and clear the day (Algorithm 1)."""
        from dreamchat.models.features import day_chunks

        messages = self.journal.unslept_messages() if messages is None else messages
        if not messages:
            return None
        passes = passes or self.config.sleep.passes
        if passes < 1:
            raise DreamchatError(f"sleep passes must be at least 1 (got {passes})")
        started = time.perf_counter()
        sleep_id = self.journal.begin_sleep(passes, kind)
        try:
            # A damaged snapshot left the memory without some nights: sleep on them again first.
            gap = self._memory_gap() if self.memory is not None else []
            state = self._replay(self._state, gap, should_stop) if gap else self._state
            tokens = self._render(messages)
            chunk_tokens = min(SLEEP_CHUNK_TOKENS, self.backbone.n_ctx)
            n_chunks = -(-len(tokens) // chunk_tokens)
            chunks = []
            for i, chunk in enumerate(day_chunks(self.backbone, tokens, chunk_tokens), start=1):
                if should_stop and should_stop():
                    raise SleepCancelled("sleep cancelled: yesterday's memory is untouched")
                chunks.append(chunk)
                if on_progress:
                    done = sum(len(c[1]) for c in chunks)
                    on_progress(SleepProgress("reading", i, n_chunks, 0, passes, done, len(tokens),
                                              done / max(time.perf_counter() - started, 1e-9)))
            snapshot_id = ""
            if self.memory is not None:
                new_state = self._consolidate(chunks, state, passes, tokens, started, on_progress, should_stop)
                night = self._nights() + 1
                snapshot = self.store.save(new_state, SnapshotMeta(
                    backbone_fingerprint=self.backbone.fingerprint,
                    tower_fingerprint=self.memory.fingerprint,
                    night=night, passes=passes, tokens=len(tokens), sleep_id=sleep_id,
                    sleeps=(*self._sleeps_in(self.store.base()), *(s.id for s, _ in gap), sleep_id),
                ))
                snapshot_id = snapshot.id
            else:
                log.warning("no memory tower for %s: the day is archived, not consolidated", self.model_name)
                new_state = self._state
            duration = time.perf_counter() - started
            self.journal.finish_sleep(sleep_id, [m.id for m in messages], len(tokens), duration, snapshot_id)
        except BaseException as err:
            cancelled = isinstance(err, (SleepCancelled, KeyboardInterrupt))
            self.journal.fail_sleep(sleep_id, "cancelled" if cancelled else "failed", str(err) or type(err).__name__)
            self._rebuild_day()
            raise
        self._state = new_state
        self._rebuild_day()
        self._last_report = SleepReport(
            sleep_id=sleep_id, kind=kind, tokens=len(tokens), messages=len(messages), passes=passes,
            duration_s=duration, snapshot=snapshot_id, night=self._nights(), repaired=len(gap),
        )
        return self._last_report

    def _replay(self, state, days: list[tuple], should_stop) -> dict:
        """`state` with `days` slept on again (`_sleep_again`), within a sleep: cancellable as it is."""
        from dreamchat.models.memory import ConsolidationCancelled

        try:
            return self._sleep_again(state, days, None, should_stop)[0]
        except ConsolidationCancelled:
            raise SleepCancelled("sleep cancelled: yesterday's memory is untouched") from None

    def _consolidate(self, chunks, state, passes, tokens, started, on_progress, should_stop):
        from dreamchat.models.features import unwritten_positions
        from dreamchat.models.memory import ConsolidationCancelled

        def progress(chunk_index, n_chunks, pass_index, n_passes, tokens_done):
            if on_progress:
                elapsed = max(time.perf_counter() - started, 1e-9)
                on_progress(SleepProgress("consolidating", chunk_index + 1, n_chunks, pass_index + 1,
                                          n_passes, tokens_done, len(tokens), tokens_done * n_passes / elapsed))

        try:
            return self.memory.consolidate(chunks, state, passes, on_progress=progress,
                                           should_stop=should_stop,
                                           unwritten=unwritten_positions(self.backbone, tokens))
        except ConsolidationCancelled:
            raise SleepCancelled("sleep cancelled: yesterday's memory is untouched") from None

    def _nights(self) -> int:
        return sum(1 for s in self.journal.sleeps() if s.status == "done" and s.kind != "nap")

    def _load_memory_state(self) -> None:
        """S_night from the current snapshot, after undoing any snapshot of an unfinished sleep."""
        if self.memory is None:
            self._state = None
            return
        finished = {s.id for s in self.journal.sleeps() if s.status == "done"}
        self.store.discard_unfinished(finished)
        loaded = self.store.load_latest(
            backbone_fingerprint=self.backbone.fingerprint,
            tower_fingerprint=self.memory.fingerprint,
            compatible_towers=self.memory.reads_memories_of,
            template=self.memory.empty_state(),
        )
        self._fallback = None
        if loaded is None:
            self._state = self.memory.empty_state()
            return
        self._state = loaded.state
        damaged = self.store.current_id
        if damaged is None or damaged == loaded.snapshot.id:
            return
        self._fallback = (damaged, loaded.snapshot)
        warning, gap = loaded.warning, self._memory_gap()
        if gap:
            days = f"{len(gap)} later day{'s' if len(gap) != 1 else ''}"
            warning += (f"; it lacks the {days} the damaged one held: the next sleep sleeps on them "
                        "again (`dreamchat memory rebuild` does it now)")
        log.warning(warning)

    def _memory_gap(self) -> list[tuple]:
        """(sleep, its messages) of each day that the damaged current snapshot held and the older one
        loaded in its place lacks, oldest first: every finished sleep after that one's last, up to
        the sleep that wrote the damaged file. Empty once a sleep, rollback or reset moved on."""
        if self._fallback is None or self.store.current_id != self._fallback[0]:
            return []
        damaged, used = self._fallback
        held = self._sleeps_in(used)
        after = max(held, default=used.sleep_id or 0)
        sleeps = [s for s in self.journal.sleeps() if s.status == "done"]
        wrote = next((s.id for s in sleeps if s.snapshot == damaged), None)
        days = [(s, self.journal.slept_messages(s.id)) for s in sleeps
                if s.id > after and (wrote is None or s.id <= wrote)]
        return [(s, messages) for s, messages in days if messages]

    def memory_status(self) -> MemoryStatus:
        sleeps = [s for s in self.journal.sleeps() if s.status == "done"]
        snapshots = [
            SnapshotInfo(id=s.id, created=s.created, size_bytes=s.size_bytes, passes=s.passes,
                         tokens=s.tokens, night=s.night, is_current=s.is_current, problem=s.problem)
            for s in self.store.list()
        ]
        current = next((s for s in self.store.list() if s.is_current and s.problem is None), None)
        return MemoryStatus(
            nights=sum(1 for s in sleeps if s.kind != "nap"),
            last_sleep=sleeps[-1].finished if sleeps else None,
            snapshots=snapshots,
            fingerprint=current.fingerprint if current else None,
            last_report=self._last_report,
            tower=str(self.weights_path) if self.weights_path else None,
            in_use=None if current is not None else getattr(self.store.base(), "id", None),
        )

    def rollback(self, snapshot_id: str) -> None:
        fingerprints = {}
        if self.backbone is not None and self.memory is not None:
            fingerprints = dict(backbone_fingerprint=self.backbone.fingerprint,
                                tower_fingerprint=self.memory.fingerprint,
                                compatible_towers=self.memory.reads_memories_of)
        self.store.rollback(snapshot_id, **fingerprints)
        if self.backbone is not None:
            self._load_memory_state()
            self._restart_wake()

    def rebuild_memory(self, on_progress: Callable[[int, int], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> SleepReport | None:
        """Sleep again, with this memory tower, on every day the current memory holds (its snapshot
        lists the journal's sleeps; a reset or a rollback leaves some out), oldest first and with
        each sleep's own passes, into an empty memory; write the result as one new snapshot.

        For when the memory weights changed (a dreamchat upgrade, `--weights`): the old snapshots were
        made by another tower and cannot be read by this one, but the journal keeps every message;
        and for a memory whose snapshots are all damaged. Where a damaged snapshot left an older
        intact one in use, only the days it lacks are slept on again, over it (kind "repair").
        Nothing is recorded as a new sleep. Interrupted, it leaves the memory as it was.
        `on_progress(sleeps_done, sleeps_total)` is called after every replayed sleep.
        """
        from dreamchat.models.memory import ConsolidationCancelled

        if self.memory is None:
            raise DreamchatError(f"no memory tower for {self.model_name}: there is no memory to rebuild")
        started = time.perf_counter()
        try:  # opened for maintenance, without its memory: which one is in use, if any?
            self._load_memory_state()
        except MemoryStoreError:
            self._fallback = None  # another tower's, or nothing intact: sleep again on every day
        gap = self._memory_gap()
        if gap:
            kind, state, days = "repair", self._state, gap
            held = (*self._sleeps_in(self._fallback[1]), *(s.id for s, _ in gap))
        else:
            kind, state, days = "rebuild", self.memory.empty_state(), self._slept_days()
            held = tuple(self._sleeps_in(self.store.current()))
        if not days:
            return None
        last = days[-1][0]
        try:
            state, total = self._sleep_again(state, days, on_progress, should_stop)
            snapshot = self.store.save(state, SnapshotMeta(
                backbone_fingerprint=self.backbone.fingerprint, tower_fingerprint=self.memory.fingerprint,
                night=self._nights(), passes=last.passes, tokens=total, sleep_id=last.id, sleeps=held,
            ))
            self._state = state
        except ConsolidationCancelled:
            raise SleepCancelled("memory rebuild cancelled: the memory is as it was") from None
        finally:
            self._rebuild_day()  # reading the days used the KV cache: put today back, over the memory in use
        return SleepReport(sleep_id=last.id, kind=kind, tokens=total,
                           messages=sum(len(m) for _, m in days), passes=last.passes,
                           duration_s=time.perf_counter() - started, snapshot=snapshot.id,
                           night=self._nights(), repaired=len(gap))

    def _sleep_again(self, state, days: list[tuple], on_progress, should_stop) -> tuple[dict, int]:
        """Consolidate `days` ((sleep, its messages) each, oldest first) into `state` as their
        sleeps did, each with its own passes: (the new state, tokens read). Reading uses the KV
        cache; the caller puts today back (`_rebuild_day`)."""
        from dreamchat.models.features import day_chunks, unwritten_positions

        chunk_tokens = min(SLEEP_CHUNK_TOKENS, self.backbone.n_ctx)
        total = 0
        for done, (sleep, messages) in enumerate(days, start=1):
            if messages:
                tokens = self._render(messages)
                chunks = list(day_chunks(self.backbone, tokens, chunk_tokens))
                state = self.memory.consolidate(chunks, state, sleep.passes, should_stop=should_stop,
                                                unwritten=unwritten_positions(self.backbone, tokens))
                total += len(tokens)
            if on_progress:
                on_progress(done, len(days))
        return state, total

    def _slept_days(self) -> list[tuple]:
        """(sleep, its messages) of every sleep the current memory holds that consolidated
        something, oldest first."""
        held = set(self._sleeps_in(self.store.current()))
        days = [(s, self.journal.slept_messages(s.id)) for s in self.journal.sleeps() if s.id in held]
        return [(s, messages) for s, messages in days if messages]

    def _sleeps_in(self, snapshot) -> list[int]:
        """The journal's sleeps whose days a snapshot holds, oldest first ([] for no snapshot: an
        empty memory).

        Snapshots written before dreamchat listed them are traced back through their parents, each
        adding the sleep that wrote it, to a root (written on an empty memory: the first night, or
        the first after a reset) or to a listed snapshot; where a parent has been pruned, every
        finished sleep before is taken to be held. A damaged file is taken to hold every sleep.
        """
        if snapshot is not None and snapshot.sleeps is not None:  # the common case: no I/O
            return list(snapshot.sleeps)
        done = [s.id for s in self.journal.sleeps() if s.status == "done"]
        by_id = {s.id: s for s in self.store.list()}
        traced: list[int] = []
        while snapshot is not None:
            if snapshot.sleeps is not None:
                return [*snapshot.sleeps, *reversed(traced)]
            if snapshot.problem or snapshot.sleep_id is None:
                return done
            traced.append(snapshot.sleep_id)
            if not snapshot.parent:
                break
            parent = by_id.get(snapshot.parent)
            if parent is None or parent.number >= snapshot.number:  # pruned (or a loop: never trust it)
                return sorted({i for i in done if i < snapshot.sleep_id} | set(traced))
            snapshot = parent
        return sorted(set(traced))

    def rebuild_size(self) -> tuple[int, int]:
        """(days, messages) that `rebuild_memory` would sleep on again."""
        days = self._slept_days()
        return len(days), sum(len(messages) for _, messages in days)

    # ----------------------------------------------------------------------------------------
    # Forgetting one thing

    def plan_forget(self, query: str = "", *, message_ids: Iterable[int] = ()) -> ForgetPlan:
        """What forgetting every message that matches `query` (or the messages `message_ids`), each
        with the other turn of its exchange, would take; changes nothing.

        The fast weights cannot unlearn one message, so the memory that holds one sleeps again on
        its days without them, from the newest earlier snapshot that does not hold them; every
        other snapshot that holds them is deleted, so that no rollback brings them back.
        """
        if message_ids:
            messages = self.journal.exchanges_of(message_ids)
        else:
            messages = self.journal.exchanges_matching(query)
        steps = self._forget_steps(messages)
        replay = set(steps.replay)
        tokens = sum(s.tokens for s in self.journal.sleeps() if s.id in replay)
        return ForgetPlan(query=query, messages=tuple(messages), replay_days=len(steps.replay),
                          replay_tokens=tokens, removed_snapshots=steps.removed)

    def forget(self, plan: ForgetPlan, on_progress: Callable[[int, int], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> ForgetReport:
        """Forget the messages of `plan` (`plan_forget`): put a memory that never held them in place
        of the current one, delete every snapshot that holds them, then delete them from the journal.

        That order is for a crash: interrupted at any point, nothing the user still wants is lost,
        and `forget` run again finishes the job (the messages stay in the journal until the end).
        `on_progress(days_done, days_total)` is called after every day slept again.
        """
        from dreamchat.models.memory import ConsolidationCancelled

        started = time.perf_counter()
        ids = {m.id for m in plan.messages}
        steps = self._forget_steps(self.journal.messages_by_id(ids))  # the journal as it is now
        snapshot, tokens = None, 0
        try:
            if steps.replay:
                state = self.memory.empty_state() if steps.base is None else self.store.load(
                    steps.base.id, backbone_fingerprint=self.backbone.fingerprint,
                    tower_fingerprint=self.memory.fingerprint, compatible_towers=self.memory.reads_memories_of,
                    template=self.memory.empty_state())
                sleeps = {s.id: s for s in self.journal.sleeps()}
                days = [(sleeps[i], [m for m in self.journal.slept_messages(i) if m.id not in ids])
                        for i in steps.replay if i in sleeps]
                try:
                    state, tokens = self._sleep_again(state, days, on_progress, should_stop)
                except ConsolidationCancelled:
                    raise SleepCancelled("forgetting cancelled: the memory and the journal are as they were") from None
                current = self.store.current()
                snapshot = self.store.save(state, SnapshotMeta(
                    backbone_fingerprint=self.backbone.fingerprint, tower_fingerprint=self.memory.fingerprint,
                    night=current.night if current and not current.problem else self._nights(), passes=days[-1][0].passes if days else 0,
                    tokens=tokens, sleep_id=steps.held[-1], sleeps=tuple(steps.held),
                )).id
                self._state = state
            removed = self.store.remove(set(steps.removed) - {snapshot}, reason="forget")
            deleted = self.journal.forget(ids)
        finally:
            self._rebuild_day()  # the replay read days through the KV cache, and today may have lost messages
        return ForgetReport(messages=deleted, replay_days=len(steps.replay), tokens=tokens,
                            duration_s=time.perf_counter() - started, snapshot=snapshot,
                            removed_snapshots=tuple(removed))

    def _forget_steps(self, messages: list[Message]) -> _ForgetSteps:
        """How to forget `messages`: which memory to sleep again from, on which days, and which
        snapshots to delete."""
        affected = {m.sleep_id for m in messages if m.sleep_id is not None}
        if not affected:
            return _ForgetSteps()
        snapshots = self.store.list()
        held_by = {s.id: self._sleeps_in(s) for s in snapshots}
        tainted = [s for s in snapshots if affected & set(held_by[s.id])]
        in_use = self.store.base()
        held = self._sleeps_in(in_use)
        if self._fallback is not None and in_use is not None and self._fallback[1].id == in_use.id:
            held += [s.id for s, _ in self._memory_gap()]  # the days a damaged snapshot lost come back too
        if not affected & set(held):  # e.g. after a reset: only older snapshots hold them
            return _ForgetSteps(removed=tuple(s.id for s in tainted if not s.is_current))
        if self.memory is None:
            raise DreamchatError(f"no memory tower for {self.model_name}: run with the model whose memory "
                                 "holds these messages to forget them (--model)")
        if in_use.backbone_fingerprint != self.backbone.fingerprint:
            raise DreamchatError(f"the memory in use was made for model {in_use.backbone_name or 'another model'}; "
                                 "forget these messages with that model (--model)")
        usable = [s for s in snapshots if s.problem is None and s.backbone_fingerprint == self.backbone.fingerprint
                  and (s.tower_fingerprint == self.memory.fingerprint
                       or s.tower_fingerprint in self.memory.reads_memories_of)
                  and held_by[s.id] == held[:len(held_by[s.id])] and not affected & set(held_by[s.id])]
        base = max(usable, key=lambda s: (len(held_by[s.id]), s.number), default=None)
        return _ForgetSteps(base=base, replay=tuple(held[len(held_by[base.id]) if base else 0:]),
                            held=tuple(held), removed=tuple(s.id for s in tainted))

    def reset_memory(self) -> None:
        self.store.reset()
        if self.backbone is not None:
            self._load_memory_state()
            self._restart_wake()

    # ----------------------------------------------------------------------------------------
    # The journal

    def history(self, limit: int | None = None) -> list[Message]:
        """The journal's messages, oldest first: the latest `limit` of them (all when None)."""
        return self.journal.messages(limit=limit)

    def today(self) -> list[Message]:
        """The messages not slept on yet (today's context), oldest first."""
        return self.journal.unslept_messages()

    def recollections(self, message_ids: list[int]) -> dict[int, tuple[Recollection, ...]]:
        """What the memory supplied to these replies, as their ReplyDone said (for a restored day)."""
        out: dict[int, list[Recollection]] = {}
        for r in self.journal.recalled(message_ids):
            out.setdefault(r.message_id, []).append(Recollection(
                text=r.text, source_role=r.source_role, source_time=r.source_created,
                source_snippet=r.snippet, source_id=r.source_id))
        return {k: tuple(v) for k, v in out.items()}

    def search(self, query: str, limit: int = 50) -> list[Message]:
        if not query.strip():
            raise DreamchatError("empty search: give a word or phrase to look for")
        return self.journal.search(query, limit=limit)

    def export(self, fmt: str, path: str | Path | None = None) -> str:
        if fmt not in ("md", "json"):
            raise DreamchatError(f"unknown export format {fmt!r}: use md or json")
        text = self.journal.export(fmt)
        if path is None:
            return text
        target = Path(path).expanduser()
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as err:
            raise DreamchatError(f"cannot write {target}: {err.strerror}; choose another path") from None
        return str(target)

    # ----------------------------------------------------------------------------------------
    # Settings

    def set_system_prompt(self, text: str) -> None:
        text = text.strip()
        if not text:
            raise DreamchatError("empty system prompt: give the text, e.g. /system You are terse.")
        self.config = self.config.with_setting("system_prompt", text)
        save_config(self.config, self.paths.config_file)
        if self.backbone is not None:
            self._rebuild_day()

    def set_setting(self, key: str, value: str) -> None:
        self.config = self.config.with_setting(key, value)
        save_config(self.config, self.paths.config_file)

    def switch_model(self, path: str) -> None:
        """Load another GGUF; on any error the current model stays in use."""
        from dreamchat.models.backbone import Backbone

        model_path = resolve_model_path(path)
        backbone = Backbone(model_path, n_ctx=self.config.model.n_ctx,
                            n_threads=self.config.model.threads or None)
        memory, weights_path = load_memory_model(backbone, None)
        old = self.backbone
        self.backbone, self.memory, self.weights_path = backbone, memory, weights_path
        if old is not None:
            old.close()
        self._load_memory_state()
        self._rebuild_day()
