"""ReplyHook: the memory's bias goes into every step of a reply, except a push that would repeat a
three-token run the reply already holds, or the token it has just emitted (digits excepted)."""

from __future__ import annotations

import numpy as np
import pytest

from dreamchat.models.backbone import Backbone
from dreamchat.models.generation import Done, generate
from dreamchat.models.memory import SparseBias
from dreamchat.models.sampler import Sampler
from dreamchat.models.wake import ReplyHook


class PushingSession:
    """A wake session that pushes the same ids by the same amounts after every token it is fed."""

    def __init__(self, push: dict[int, float]):
        self.ids = np.array(sorted(push), dtype=np.int64)
        self.values = np.array([push[i] for i in self.ids], dtype=np.float32)
        self.fed: list[int] = []

    def feed(self, hidden, tokens):
        assert hidden.shape[0] == len(tokens) == 1
        self.fed.extend(int(t) for t in tokens)
        return SparseBias(self.ids, self.values.copy())


def step(hook, history, vocab=50):
    return hook(np.zeros(vocab, np.float32), np.zeros(8, np.float32), history)


def test_the_bias_is_added_and_withheld_only_from_a_repeated_run():
    session = PushingSession({3: 5.0, 7: 2.0, 9: -1.0})
    hook = ReplyHook(session)
    history = [40, 41]                                   # the prompt; its last token comes first
    logits = step(hook, history)
    assert (logits[3], logits[7], logits[9]) == (5.0, 2.0, -1.0) and hook.reply == []
    for token in [1, 2, 3, 1]:                           # the reply so far: 1 2 3 1
        history.append(token)
        logits = step(hook, history)
        assert logits[7] == 2.0 and logits[3] == (0.0 if token == 3 else 5.0)  # 3 3: the token just said
    history.append(2)                                    # ... 1 2: "1 2 3" would come again
    logits = step(hook, history)
    assert logits[3] == 0.0 and (logits[7], logits[9]) == (2.0, -1.0)
    history.append(9)                                    # the run is broken: 3 is pushed again ...
    logits = step(hook, history)
    assert logits[3] == 5.0 and logits[9] == 0.0         # ... and 9, just said, is not
    assert session.fed == [41, 1, 2, 3, 1, 2, 9] and hook.reply == [1, 2, 3, 1, 2, 9]


def test_the_token_just_said_is_pushed_again_only_when_it_is_repeatable():
    """A word twice in a row ("green green") is the memory stuck on it; a digit twice ("1000") is
    a number."""
    hook = ReplyHook(PushingSession({4: 5.0, 6: 5.0}), repeatable={4})
    history = [40]
    step(hook, history)
    history.append(6)
    assert tuple(step(hook, history)[[4, 6]]) == (5.0, 0.0)
    history.append(4)
    assert tuple(step(hook, history)[[4, 6]]) == (5.0, 5.0)


def test_values_with_repeated_pairs_still_come_back_whole():
    """"2020" or "4646" repeat a pair of tokens, never a run of three; "1000" a digit back to back."""
    hook = ReplyHook(PushingSession({4: 5.0, 6: 5.0}), repeatable={4, 6})
    history = [40]
    step(hook, history)
    for token in [4, 6, 4]:
        history.append(token)
        logits = step(hook, history)
        assert logits[4] == logits[6] == 5.0
    hook = ReplyHook(PushingSession({4: 5.0}), repeatable={4})
    history = [40]
    for token in [4, 4]:                                 # "100": the third 0 still pushed
        history.append(token)
        assert step(hook, history)[4] == 5.0


def test_digit_tokens_are_the_digits_of_the_vocabulary(bb):
    digits = bb.digit_tokens()
    assert digits and all(bb.token_bytes(i).strip().isdigit() for i in digits)
    assert bb.tokenize("7", special=False)[0] in digits
    assert bb.tokenize(" cat", special=False)[0] not in digits


@pytest.fixture(scope="module")
def bb(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=512, n_threads=1) as backbone:
        yield backbone


def reply(bb, hook):
    bb.clear()
    prompt = bb.tokenize(bb.render_chat([{"role": "user", "content": "What's my cat called?"}], True))
    *_, done = generate(bb, prompt, Sampler.greedy(), max_tokens=24, hook=hook, want_hidden=True)
    assert isinstance(done, Done)
    return done.tokens


def test_a_memory_that_pushes_one_token_no_longer_holds_the_reply_in_a_loop(bb):
    token = bb.tokenize(" cat")[0]
    own = reply(bb, None)
    assert token not in own                             # the backbone alone never says it

    def unguarded(logits, hidden, tokens):              # what the hook did before the guard
        logits[token] += 50.0
        return logits

    assert reply(bb, unguarded) == [token] * 24
    guarded = reply(bb, ReplyHook(PushingSession({token: 50.0}), repeatable=bb.digit_tokens()))
    assert guarded[0] == token and guarded.count(token) > 1  # the memory still leads the reply ...
    # ... but the backbone never says the token, so any repeat of it here is the memory's doing:
    # never right after itself, and never closing a run of three the reply already holds
    assert all(not (a == b == token) for a, b in zip(guarded, guarded[1:])), guarded
    runs = [tuple(guarded[i:i + 3]) for i in range(len(guarded) - 2)]
    for i, run in enumerate(runs):
        if run in runs[:i]:
            assert run[-1] != token, guarded
    assert guarded.count(token) <= 12, guarded
