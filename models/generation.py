"""Streaming generation: decode a prompt, then sample token by token through one logits hook.

    for event in generate(backbone, prompt_tokens, sampler, max_tokens=256, hook=memory_bias):
        if isinstance(event, Piece): show(event.text)
        else: finished(event)               # Done: full text, token count, finish reason, timings

The loop, per token: the logits of the last fed token go through `hook` (the memory tower adds its
bias there; it also gets that token's final hidden state when `want_hidden`, and the ids in the KV
cache), the sampler picks a token, its text is yielded, and the token is fed back. End-of-turn
tokens (`backbone.eos_ids`, plus `stop_ids`) end the reply and are never shown.

KV cache invariant. The hook runs after every decode that generate() makes: once after the prompt
(with the hidden state of its last token) and once after each generated token is fed back, so
`tokens[-1]` of each call is the token just fed (a caller that mirrors the cache token by token
decodes all but the last prompt token itself and passes a one-token prompt). When Done arrives,
the cache holds the prompt and every token in `Done.tokens`; the stop token is not fed. If the
caller stops iterating early (cancel), the token of the last Piece may not have been fed:
`backbone.n_past` and `backbone.tokens` always tell what the cache holds.

Text pieces never split a UTF-8 character: token bytes go through an incremental decoder.
Speed matters as much as in llama-cpp-python's own loop: one reused batch, one copy of the logits
per token (which the hook and sampler may modify in place), token bytes cached per id.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from dreamchat.models.sampler import Sampler

LogitsHook = Callable[[np.ndarray, "np.ndarray | None", list], np.ndarray]
# (logits [n_vocab] for the next token, hidden [n_embd] of the last fed token or None,
#  token ids in the KV cache so far) -> logits (may be the same array, modified in place)


@dataclass(frozen=True)
class Piece:
    """A piece of reply text (one token's worth, or more when a character spans tokens)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The end of a reply."""

    text: str  # the whole reply (the concatenated pieces)
    n_tokens: int  # tokens generated, the stop token excluded
    finish_reason: str  # "stop" (end-of-turn or stop id), "length" (max_tokens or the context is full), "loop"
    tokens_per_s: float  # generation speed: tokens after the first / time after the first
    time_to_first_token_s: float  # from the call to the first sampled token (prompt decode included)
    prompt_tokens_per_s: float  # prompt decode speed
    tokens: list[int] = field(default_factory=list)  # the generated ids (all fed to the backbone)


GenerationEvent = Piece | Done

# A reply that says the same LOOP_SPAN tokens a LOOP_REPEATS-th time is stuck in a loop. The small
# default model falls into them, mostly after drifting into another language. Replayed over replies
# it wrote (benchmarks/eval_runaways.py, twenty-ninth session), this stops 3 of 5 that ran to 512
# tokens at temperature 0.7 (16 tokens: 1 of 5) and 22 of 25 over temperatures 0.2-0.7, and none
# of 144 ordinary replies at 0.7; a song's chorus said three times goes on.
LOOP_SPAN = 8
LOOP_REPEATS = 4


class LoopGuard:
    """Fed a reply's tokens one by one, says when the reply has fallen into a loop."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.spans: dict[tuple[int, ...], int] = {}  # how often each LOOP_SPAN-token span was said

    def add(self, token: int) -> bool:
        """Take the next token; True once the span it ends has been said LOOP_REPEATS times."""
        self.tokens.append(token)
        if len(self.tokens) < LOOP_SPAN:
            return False
        span = tuple(self.tokens[-LOOP_SPAN:])
        self.spans[span] = self.spans.get(span, 0) + 1
        return self.spans[span] >= LOOP_REPEATS

    @classmethod
    def stop_at(cls, tokens: Iterable[int]) -> int | None:
        """How many of `tokens` a reply with the loop stop would have said (None: all of them)."""
        guard = cls()
        return next((i + 1 for i, token in enumerate(tokens) if guard.add(token)), None)


def generate(backbone, prompt_tokens: Iterable[int], sampler: Sampler, *, max_tokens: int,
             hook: LogitsHook | None = None, stop_ids: Iterable[int] | None = None,
             want_hidden: bool = False, stop_loops: bool = False) -> Iterator[GenerationEvent]:
    """Decode `prompt_tokens` on top of the backbone's cache, then stream a reply.

    Stops at an end-of-turn token (finish "stop"), after max_tokens tokens or when the context is
    full (finish "length"), and with stop_loops once the reply repeats itself (finish "loop": the
    same LOOP_SPAN tokens a LOOP_REPEATS-th time). With want_hidden the prompt is decoded with hidden states too and the
    hook receives each fed token's final hidden state (llama.cpp then computes outputs for every
    prompt token: callers that want the prompt's hidden states decode it themselves with
    `backbone.decode(..., hidden=True)` and pass only its last token here).
    Arguments are checked when iteration starts.
    """
    prompt = list(prompt_tokens)
    if not prompt:
        raise ValueError("generate needs at least one prompt token")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    stops = frozenset(backbone.eos_ids) | frozenset(stop_ids or ())
    history = backbone._tokens  # the live list of ids in the cache (read only here)
    piece_bytes = _PieceCache(backbone)
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text: list[str] = []
    generated: list[int] = []
    guard = LoopGuard() if stop_loops else None
    looping = False

    started = time.perf_counter()
    decoded = backbone.decode(prompt, hidden=want_hidden)
    prompt_s = time.perf_counter() - started
    first_at = last_at = started
    while True:
        logits = decoded.logits[0]
        if hook is not None:
            hidden = decoded.hidden[-1] if want_hidden else None
            logits = hook(logits, hidden, history)
        if len(generated) >= max_tokens or backbone.n_past >= backbone.n_ctx:
            finish = "length"
            break
        if looping:
            finish = "loop"
            break
        token = sampler.sample(logits, history)
        last_at = time.perf_counter()
        if not generated:
            first_at = last_at
        if token in stops:
            finish = "stop"
            break
        generated.append(token)
        looping = guard is not None and guard.add(token)
        piece = utf8.decode(piece_bytes[token])
        if piece:
            text.append(piece)
            yield Piece(piece)
        decoded = backbone.decode([token], hidden=want_hidden)

    tail = utf8.decode(b"", final=True)
    if tail:
        text.append(tail)
        yield Piece(tail)
    n = len(generated)
    yield Done(
        text="".join(text),
        n_tokens=n,
        finish_reason=finish,
        tokens_per_s=(n - 1) / max(last_at - first_at, 1e-9) if n > 1 else 0.0,
        time_to_first_token_s=first_at - started,
        prompt_tokens_per_s=len(prompt) / prompt_s if prompt_s > 0 else 0.0,
        tokens=generated,
    )


class _PieceCache(dict):
    """token id -> its bytes (special tokens render as b""), filled on first use."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def __missing__(self, token: int) -> bytes:
        value = self[token] = self.backbone.token_bytes(token)
        return value
