"""Rule 110 cellular automaton (paper §4, §6.1): several random bit strings, one per window.

Episode layout (window L = 1 + max_depth + n_bits, T = (n_strings + 1) * L):

    @1 s s s 0 1 1 0 1 0 0 1         <- window 1: the string's name, t step tokens, string 1
    @2 s s s 1 1 0 0 0 1 0 1         <- window 2: string 2 (window 1 has been evicted)
    ...
    @1 [b1] @2 [b2] ...              <- prediction window: bi = first bit of string i after t steps

The rollout depth t is written in unary (t "s" tokens) at the start of every string's window: one
model covers a range of depths, and depths outside the training range are expressible with known
tokens. Each window must be consolidated knowing t, since the string is gone by the time the question
comes. Each string is named by a token ("@i") that opens its window and asks for it in the prediction
window, so the model need not count windows to tell strings apart (in the paper, the labels follow the
strings' order). Rule 110 is P-complete: the first bit after t steps depends on the 2t + 1 bits
around it and there is no known shortcut, so the work grows with t. Strings are periodic (a ring of
n_bits cells).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dreamchat.models.tasks import PAD, Example

RULE = 110  # bit (4l + 2c + r) of 110 is the new value of a cell with neighbours l, c, r


def rule110_step(bits: list[int]) -> list[int]:
    """One synchronous Rule 110 update of a periodic string."""
    n = len(bits)
    return [(RULE >> (4 * bits[i - 1] + 2 * bits[i] + bits[(i + 1) % n])) & 1 for i in range(n)]


def rule110_rollout(bits: list[int], steps: int) -> list[int]:
    """The string after `steps` updates."""
    for _ in range(steps):
        bits = rule110_step(bits)
    return bits


@dataclass(frozen=True)
class Rule110:
    n_strings: int = 4  # strings per episode, each in its own window (paper: 4)
    n_bits: int = 8  # cells per string (paper: 24)
    max_depth: int = 8  # largest rollout depth t the layout holds
    name: str = "rule110"

    def __post_init__(self) -> None:
        if self.n_strings < 1 or self.n_bits < 3 or self.max_depth < 0:
            raise ValueError("rule110 needs n_strings >= 1, n_bits >= 3 and max_depth >= 0")

    @property
    def vocab(self) -> tuple[str, ...]:
        return ("<pad>", "0", "1", "s") + tuple(f"@{i + 1}" for i in range(self.n_strings))

    @property
    def window(self) -> int:
        return max(1 + self.max_depth + self.n_bits, 2 * self.n_strings)

    @property
    def seq_len(self) -> int:
        return (self.n_strings + 1) * self.window

    @property
    def chance(self) -> float:
        return 0.5  # per answer bit

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(range(self.max_depth + 1))

    def example(self, rng: random.Random, depth: int) -> Example:
        if not 0 <= depth <= self.max_depth:
            raise ValueError(f"rule110 depth {depth} outside 0..{self.max_depth}")
        zero, one, step = 1, 2, 3
        tokens: list[int] = []
        answers: list[int] = []
        for i in range(self.n_strings):
            bits = [rng.randrange(2) for _ in range(self.n_bits)]
            window = [4 + i] + [step] * depth + [zero + b for b in bits]
            tokens += window + [PAD] * (self.window - len(window))
            answers.append(rule110_rollout(bits, depth)[0])
        query: list[int] = []
        mask: list[int] = [0] * len(tokens)
        for i, bit in enumerate(answers):
            query += [4 + i, zero + bit]
        qmask = [0, 1] * self.n_strings
        pad = self.window - len(query)
        tokens += query + [PAD] * pad
        mask += qmask + [0] * pad
        return Example(tuple(tokens), tuple(mask), depth)
