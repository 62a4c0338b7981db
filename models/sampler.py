"""Next-token sampling over full logits, in numpy, with llama.cpp's semantics.

The chain, in llama.cpp's default order (so settings mean what llama.cpp users expect):

    repeat penalty -> top-k -> top-p -> min-p -> temperature -> draw

- repeat penalty: every distinct token among the last 64 of the history has its logit divided by
  the penalty if positive, multiplied by it if negative (llama.cpp's `penalty_repeat`);
- top-k keeps the k largest logits (0 = off); top-p keeps the smallest set of most likely tokens
  whose probability reaches p (1 = off); min-p drops tokens less likely than min_p × the most
  likely one (0 = off). The filters see the untempered distribution, as in llama.cpp;
- temperature 0 is greedy: argmax of the penalised logits, no randomness at all.

A seed makes the draws reproducible (the same seed, logits and history give the same tokens).
The sampler works on a scratch copy of the logits that it may modify in place (generation copies
them out of llama.cpp once per token and hands them over).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

REPEAT_LAST_N = 64  # tokens of history the repeat penalty looks at (llama.cpp's default)


class Sampler:
    def __init__(self, *, temperature: float, top_p: float, top_k: int, min_p: float,
                 repeat_penalty: float, seed: int | None):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0.0 <= top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {top_p}")
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        if not 0.0 <= min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1], got {min_p}")
        if repeat_penalty <= 0:
            raise ValueError(f"repeat_penalty must be > 0, got {repeat_penalty}")
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.min_p = min_p
        self.repeat_penalty = repeat_penalty
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_settings(cls, settings) -> Sampler:
        """From any object with the fields of `dreamchat.config.SamplingSettings`."""
        return cls(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                   min_p=settings.min_p, repeat_penalty=settings.repeat_penalty, seed=settings.seed)

    @classmethod
    def greedy(cls) -> Sampler:
        return cls(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0, seed=None)

    def sample(self, logits: np.ndarray, history: Sequence[int] = ()) -> int:
        """Pick the next token id from `logits` (float32 [n_vocab], modified in place)."""
        self.penalize(logits, history)
        if self.temperature == 0.0:
            return int(np.argmax(logits))
        ids, kept = self.candidates(logits)
        z = kept / self.temperature
        p = np.exp(z - z.max())
        cdf = np.cumsum(p)
        i = int(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"))
        return int(ids[min(i, len(ids) - 1)])

    def penalize(self, logits: np.ndarray, history: Sequence[int]) -> None:
        """llama.cpp's repeat penalty over the last REPEAT_LAST_N tokens, in place."""
        if self.repeat_penalty == 1.0 or not len(history):
            return
        recent = np.unique(np.asarray(history[-REPEAT_LAST_N:], dtype=np.int64))
        values = logits[recent]
        logits[recent] = np.where(values > 0, values / self.repeat_penalty, values * self.repeat_penalty)

    def candidates(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, logits) of the tokens top-k, top-p and min-p keep, most likely first."""
        n = len(logits)
        if 0 < self.top_k < n:
            ids = np.argpartition(logits, n - self.top_k)[n - self.top_k:]
        else:
            ids = np.arange(n)
        if self.min_p > 0.0 and self.top_p >= 1.0:
            # min-p alone needs no sort: prune the full vocabulary cheaply first.
            ids = ids[logits[ids] >= logits[ids].max() + np.log(self.min_p)]
        ids = ids[np.argsort(-logits[ids], kind="stable")]
        kept = logits[ids]
        if self.top_p < 1.0:
            p = np.exp(kept - kept[0])
            cdf = np.cumsum(p) / p.sum()
            n_keep = int(np.searchsorted(cdf, self.top_p, side="left")) + 1  # the token that reaches p stays
            ids, kept = ids[:n_keep], kept[:n_keep]
        if self.min_p > 0.0:
            n_keep = int(np.count_nonzero(kept >= kept[0] + np.log(self.min_p)))
            ids, kept = ids[:n_keep], kept[:n_keep]
        return ids, kept
