"""On-policy reply openings for training: the memory's own way into an answer, with the right value.

Why: at wake the reply's first words come from the backbone and the memory together, and the copy
read can only find a fact when those words make a query that matches it. Measured on the held-out
episodes (v12, N = 2, seeds 5 and 7): replies forced to open as the training replies do ("Your
cousin works at", "Your kitten is called") recall 20 of 23 combined facts and 15 of 17 updates,
the model's own openings 14 and 11 ("Who employs my cousin?" -> "Your cousin is an assistant.").
Training replies are written from templates, so the model never learns to answer from the
openings it actually produces.

`OpeningsModel` sleeps an episode's earlier days with a trained memory, lets it answer the
question greedily as the app would, and `corrected_reply` turns that answer into a training target:
kept when it holds the value; otherwise the opening is kept and the value put where the reply went
wrong (in place of another fact's value, or after the opening's first linking word: "Your cousin is
an assistant." -> "Your cousin is Juniper Press."). Like DAgger, the targets follow the states the
model itself reaches. Measured so far (model card, seventeenth session): fine-tuning v12's wake
queries on such a set recalled no more than the same fine-tune on template replies.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

# Sentence-initial words of an answer about the user's life, and the words after which a value may
# come ("is", "at", "called", ...): an opening that has both is kept and given the value.
ANSWER_STARTS = ("you", "your", "you're", "you've", "it", "it's", "they", "they're", "they've", "that", "that's",
                 "he", "she", "the")
LINKS = ("is", "are", "was", "were", "at", "in", "to", "for", "on", "from", "called", "named", "as",
         "into", "with", "by", "up", "be")
MAX_OPENING_WORDS = 8


def _ended(text: str) -> str:
    """`text` with a full stop, unless it already ends a sentence."""
    text = text.strip()
    return text if text[-1:] in (".", "!", "?") else text + "."


def corrected_reply(reply: str, answer: str, other_values: Sequence[str]) -> str | None:
    """The training target made from the memory's own reply, or None to keep the template reply.

    - The reply holds `answer` (case-insensitive): the reply through the answer, and a full stop
      (what the memory pushes after a value is often noise: "You drive a Ford Transit XC00.").
    - It holds another value of the episode (a stale value, another fact's) before any answer: the
      reply up to that value, then `answer` and a full stop.
    - Its opening (at most MAX_OPENING_WORDS words, starting like an answer) has a linking word: the
      opening through the first one, then `answer`.
    """
    text = " ".join(reply.split())
    low = text.lower()
    if not text or not answer:
        return None
    at = low.find(answer.lower())
    if at >= 0:
        return _ended(text[:at + len(answer)])
    wrong = [i for i in (low.find(v.lower()) for v in other_values if v and v.lower() != answer.lower()) if i > 0]
    if wrong:
        head = text[:min(wrong)].rstrip()
        if head and head[-1] not in ".!?":
            return _ended(f"{head} {answer}")
    for n, word in enumerate(re.finditer(r"[\w'’-]+|[^\w\s]", text)):
        w = word.group().lower()
        if n == MAX_OPENING_WORDS or w in ".!?,;:" or (n == 0 and w not in ANSWER_STARTS):
            return None
        if n > 0 and w in LINKS:
            return _ended(f"{text[:word.end()]} {answer}")   # the opening in the reply's own spelling
    return None


class OpeningsModel:
    """A trained memory answering training questions as the app would (greedy, after one night of
    `passes` passes, both reply guards on), for `corrected_reply`."""

    def __init__(self, memory, passes: int = 2, max_tokens: int = 24):
        self.memory, self.passes, self.max_tokens = memory, passes, max_tokens

    def sleep(self, days: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
        """The memory state after sleeping `days` ((hidden, tokens) each, one chunk a day), a night
        each, from empty: what the questions of the next day are answered from."""
        state = self.memory.empty_state()
        for hidden, tokens in days:
            state = self.memory.consolidate([(hidden, tokens)], state, self.passes)
        return state

    def reply(self, backbone, state: dict, context_tokens: list[int], context_hidden: np.ndarray,
              prompt: list[int]) -> str:
        """The memory's greedy reply from `state` (see `sleep`).

        The backbone's cache should hold `context_tokens` (the question day so far, whose hidden
        states are `context_hidden`; decoded again if it does not); `prompt` is that plus the
        question and the assistant header. The cache is truncated back to `context_tokens` after.
        """
        from dreamchat.models.generation import Done, generate
        from dreamchat.models.sampler import Sampler
        from dreamchat.models.wake import ReplyHook

        n = len(context_tokens)
        if backbone.n_past >= n and backbone.tokens[:n] == list(context_tokens):
            backbone.truncate(n)
        else:
            backbone.clear()
            backbone.decode(context_tokens)
        head = prompt[:-1]
        rest = np.asarray(backbone.decode(head[n:], hidden=True).hidden, np.float32) if len(head) > n else \
            np.zeros((0, context_hidden.shape[1]), np.float32)
        wake = self.memory.wake(state)
        wake.feed(np.concatenate([np.asarray(context_hidden, np.float32), rest]), np.asarray(head, np.int64))
        hook = ReplyHook(wake, repeatable=backbone.digit_tokens())
        text = ""
        for event in generate(backbone, prompt[-1:], Sampler.greedy(), max_tokens=self.max_tokens, hook=hook,
                              want_hidden=True):
            if isinstance(event, Done):
                text = event.text
        backbone.truncate(n)
        return text.strip()
