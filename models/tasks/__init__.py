"""Synthetic tasks for the research model: deep computation over context that has been evicted.

Every task lays an episode out in windows of `task.window` tokens (hard eviction: the model's
attention never sees across a window boundary, only the fast weights S carry over). Windows without
answer tokens are *consolidation* windows (the model sleeps on them, N passes); windows with answer
tokens are *prediction* windows (one pass, as at wake time). Each task has a depth parameter (rollout
steps, hops, operations) and exact answers.

Conventions shared by all tasks:
- token 0 is padding (`PAD`);
- `loss_mask[t] == 1` marks an answer token, predicted by the model's output at position `t - 1`
  (next-token prediction, teacher forcing); an answer token never opens a window, so that the position
  predicting it lies in the same window;
- all episodes of one task have the same length `task.seq_len`, whatever their depth, so episodes of
  mixed depths batch together.

The generators are pure Python and draw everything from the `random.Random` they are given: the same
seed gives the same data, for every sleep depth N.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol, Sequence

PAD = 0


@dataclass(frozen=True)
class Example:
    """One episode: token ids, answer mask and the depth it was generated at."""

    tokens: tuple[int, ...]  # (T,) token ids, T = n_windows * window
    loss_mask: tuple[int, ...]  # (T,) 1 at answer tokens
    depth: int  # rollout steps / hops / operations needed for the answers


class Task(Protocol):
    """What the research runner needs from a task (the task classes are frozen dataclasses)."""

    name: str

    @property
    def vocab(self) -> tuple[str, ...]: ...  # token strings, index = token id, vocab[0] == "<pad>"

    @property
    def window(self) -> int: ...  # L: tokens per window (eviction every L tokens)

    @property
    def seq_len(self) -> int: ...  # T: tokens per episode, a multiple of `window`

    @property
    def depths(self) -> tuple[int, ...]: ...  # every depth the layout supports

    @property
    def chance(self) -> float: ...  # accuracy per answer token of a uniform guess

    def example(self, rng: random.Random, depth: int) -> Example: ...


def check_example(task: Task, ex: Example) -> None:
    """Raise ValueError if `ex` breaks the layout contract above (used by the tests and the runner)."""
    T, L = task.seq_len, task.window
    if T % L:
        raise ValueError(f"{task.name}: seq_len {T} is not a multiple of window {L}")
    if len(ex.tokens) != T or len(ex.loss_mask) != T:
        raise ValueError(f"{task.name}: episode has {len(ex.tokens)} tokens, expected {T}")
    if not any(ex.loss_mask):
        raise ValueError(f"{task.name}: episode has no answer token")
    for t, m in enumerate(ex.loss_mask):
        if m and t % L == 0:
            raise ValueError(f"{task.name}: answer token at {t} opens a window; nothing can predict it")
    if not all(0 <= tok < len(task.vocab) for tok in ex.tokens):
        raise ValueError(f"{task.name}: token id outside the vocabulary")


def render(task: Task, ex: Example) -> str:
    """Human-readable episode, one window per line, answer tokens in [brackets]."""
    lines = []
    for start in range(0, task.seq_len, task.window):
        words = []
        for t in range(start, start + task.window):
            tok = ex.tokens[t]
            if tok == PAD:
                continue
            word = task.vocab[tok]
            words.append(f"[{word}]" if ex.loss_mask[t] else word)
        lines.append(" ".join(words))
    return "\n".join(lines)


def pack_windows(pieces: Sequence[Sequence[int]], window: int, n_windows: int,
                 filler: Sequence[int] = (), rng: random.Random | None = None) -> list[int]:
    """Lay `pieces` out over `n_windows` windows without splitting a piece across a boundary.

    The space left at the end of a window is filled with tokens drawn from `filler` (or `PAD` when
    `filler` is empty). Raises ValueError when the pieces do not fit.
    """
    out: list[int] = []
    used = 0  # tokens in the current window

    def pad_window() -> None:
        nonlocal used
        for _ in range(window - used):
            out.append(rng.choice(filler) if filler and rng is not None else PAD)
        used = 0

    for piece in pieces:
        if len(piece) > window:
            raise ValueError(f"a piece of {len(piece)} tokens does not fit a window of {window}")
        if used + len(piece) > window:
            pad_window()
        out.extend(piece)
        used += len(piece)
    if used:
        pad_window()
    if len(out) > n_windows * window:
        raise ValueError(f"pieces need {len(out) // window} windows, only {n_windows} available")
    while len(out) < n_windows * window:
        used = 0
        pad_window()
    return out


def get_task(name: str, **overrides) -> Task:
    """The task called `name` (`rule110`, `depo`, `arithmetic`), with its config fields overridden."""
    from dreamchat.models.tasks.arithmetic import Arithmetic
    from dreamchat.models.tasks.depo import Depo
    from dreamchat.models.tasks.rule110 import Rule110

    tasks = {"rule110": Rule110, "depo": Depo, "arithmetic": Arithmetic}
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(tasks)}")
    return tasks[name](**overrides)


TASK_NAMES = ("rule110", "depo", "arithmetic")
