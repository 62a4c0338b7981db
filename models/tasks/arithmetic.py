"""Arithmetic chains in the spirit of GSM-Infinite (paper §6.3), at a size a small model can learn.

Episode layout (windows of L tokens; statements are never split across a window):

    ? v7 v3 = 4 ; f1 v7 = v12 + 3 ; f0 f2        <- the question first (as in the paper's
    v12 = v3 - 1 ; v9 = v3 + 8 ; f2 f2 f0 f1         GSM-Infinite runs), then the definitions
    v5 = 6 ; f0 v1 = v5 - 2 ; f1 f1 f0 f2 f2         in shuffled order, with filler words
    ? v7 = [6]                                    <- prediction window: v7 = ((4 - 1) + 3) mod 10

The queried variable sits at the end of a chain of `depth` operations (+ or -, modulo `modulus`)
starting from a constant; the other statements are distractors, some of them branching off the
target chain. Statements appear in shuffled order, so the value cannot be accumulated while reading:
the chain must be resolved from what the fast weights kept after the definitions were evicted.
Depth 0 is plain retrieval of a constant.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dreamchat.models.tasks import PAD, Example, pack_windows

EQ, PLUS, MINUS, SEMI, QUESTION = 1, 2, 3, 4, 5
FIRST_DIGIT = 6


@dataclass(frozen=True)
class Arithmetic:
    n_statements: int = 6  # definitions per episode: the target chain (depth + 1) and distractors
    n_vars: int = 16  # variable names; each episode draws n_statements distinct ones
    modulus: int = 10  # values live in 0..modulus-1, one token each
    n_fillers: int = 3  # distinct filler words; one may follow each statement, leftovers fill windows
    window: int = 16  # L: tokens per window
    name: str = "arithmetic"

    def __post_init__(self) -> None:
        if self.n_statements < 1 or self.n_vars < self.n_statements:
            raise ValueError("arithmetic needs 1 <= n_statements <= n_vars")
        if self.modulus < 2 or self.n_fillers < 1 or self.window < 7:
            raise ValueError("arithmetic needs modulus >= 2, n_fillers >= 1 and window >= 7")

    @property
    def vocab(self) -> tuple[str, ...]:
        return (("<pad>", "=", "+", "-", ";", "?")
                + tuple(str(i) for i in range(self.modulus))
                + tuple(f"v{i}" for i in range(self.n_vars))
                + tuple(f"f{i}" for i in range(self.n_fillers)))

    @property
    def context_windows(self) -> int:
        # Worst case: question (2) + every statement an operation (6) followed by a filler word (1);
        # a window can lose at most 5 tokens to a 6-token statement that does not fit.
        worst = 2 + 7 * self.n_statements
        return math.ceil(worst / (self.window - 5))

    @property
    def seq_len(self) -> int:
        return (self.context_windows + 1) * self.window

    @property
    def chance(self) -> float:
        return 1 / self.modulus

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(range(self.n_statements))

    def example(self, rng: random.Random, depth: int) -> Example:
        if not 0 <= depth < self.n_statements:
            raise ValueError(f"arithmetic depth {depth} outside 0..{self.n_statements - 1}")
        first_var = FIRST_DIGIT + self.modulus
        first_filler = first_var + self.n_vars
        digit = lambda v: FIRST_DIGIT + v  # noqa: E731 - value -> token
        names = [first_var + i for i in rng.sample(range(self.n_vars), self.n_statements)]
        values: dict[int, int] = {}
        statements: list[list[int]] = []

        def define(name: int, source: int | None) -> None:
            c = rng.randrange(self.modulus)
            if source is None:
                values[name] = c
                statements.append([name, EQ, digit(c), SEMI])
            else:
                op = rng.choice((PLUS, MINUS))
                sign = 1 if op == PLUS else -1
                values[name] = (values[source] + sign * c) % self.modulus
                statements.append([name, EQ, source, op, digit(c), SEMI])

        # The target chain: names[0] = c, names[i] = names[i-1] op c, ..., names[depth] is queried.
        define(names[0], None)
        for i in range(1, depth + 1):
            define(names[i], names[i - 1])
        target = names[depth]
        # Distractors: constants, or operations on any variable defined so far (target chain too).
        for name in names[depth + 1:]:
            defined = list(values)
            define(name, None if rng.random() < 0.4 else rng.choice(defined))

        rng.shuffle(statements)
        fillers = list(range(first_filler, first_filler + self.n_fillers))
        pieces: list[list[int]] = [[QUESTION, target]]
        for statement in statements:
            pieces.append(statement)
            if rng.random() < 0.5:
                pieces.append([rng.choice(fillers)])
        tokens = pack_windows(pieces, self.window, self.context_windows, fillers, rng)
        mask = [0] * len(tokens)
        query = [QUESTION, target, EQ, digit(values[target])]
        pad = self.window - len(query)
        tokens += query + [PAD] * pad
        mask += [0, 0, 0, 1] + [0] * pad
        return Example(tuple(tokens), tuple(mask), depth)
