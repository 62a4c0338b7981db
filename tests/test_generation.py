"""generate(): streaming, stop conditions, the logits hook, UTF-8 safety, the KV invariant, cancel."""

from __future__ import annotations

import numpy as np
import pytest

import gguf_factory
from dreamchat.models.backbone import Backbone, reference_llama
from dreamchat.models.generation import Done, Piece, generate
from dreamchat.models.sampler import Sampler


@pytest.fixture(scope="module")
def bb(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=512, n_threads=1) as backbone:
        yield backbone


@pytest.fixture
def prompt(bb):
    bb.clear()
    return bb.tokenize(bb.render_chat([{"role": "user", "content": "Hello, who are you?"}], True))


def run(bb, prompt, **kwargs):
    kwargs.setdefault("max_tokens", 16)
    events = list(generate(bb, prompt, kwargs.pop("sampler", Sampler.greedy()), **kwargs))
    *pieces, done = events
    assert all(isinstance(p, Piece) and p.text for p in pieces) and isinstance(done, Done)
    return [p.text for p in pieces], done


def forcing(sequence):
    """A hook that makes greedy decoding produce `sequence` (then whatever the model likes)."""
    calls = []

    def hook(logits, hidden, tokens):
        step = len(calls)
        calls.append((len(tokens), tokens[-1], None if hidden is None else hidden.copy()))
        if step < len(sequence):
            logits[:] = -1e9
            logits[sequence[step]] = 0.0
        return logits

    hook.calls = calls
    return hook


def test_stream_and_done(bb, prompt):
    pieces, done = run(bb, prompt, max_tokens=20)
    assert done.finish_reason == "length" and done.n_tokens == 20 == len(done.tokens)
    assert "".join(pieces) == done.text == bb.detokenize(done.tokens).decode("utf-8", "replace")
    assert done.tokens_per_s > 0 and done.time_to_first_token_s > 0 and done.prompt_tokens_per_s > 0
    # every generated token was fed: the cache holds the prompt and the reply
    assert bb.tokens == prompt + done.tokens


def test_greedy_is_deterministic(bb, prompt):
    _, a = run(bb, prompt)
    bb.clear()
    _, b = run(bb, prompt)
    assert a.tokens == b.tokens


def test_seeded_sampling_reproduces(bb, prompt):
    sampler = lambda: Sampler(temperature=1.0, top_p=0.95, top_k=40, min_p=0.0, repeat_penalty=1.1, seed=7)
    _, a = run(bb, prompt, sampler=sampler())
    bb.clear()
    _, b = run(bb, prompt, sampler=sampler())
    assert a.tokens == b.tokens


def test_matches_llama_cpp_python(tiny_gguf, bb, prompt):
    """Same model, same prompt, greedy: the same tokens as llama-cpp-python's own loop."""
    _, done = run(bb, prompt, max_tokens=24)
    llm = reference_llama(tiny_gguf, n_ctx=512, n_threads=1, verbose=False)
    theirs = []
    for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
        if token in bb.eos_ids or len(theirs) == 24:
            break
        theirs.append(token)
    llm.close()
    assert done.tokens == theirs


def test_stops_at_end_of_turn_and_hides_it(bb, prompt):
    words = bb.tokenize("Hi there")
    hook = forcing(words + [gguf_factory.IM_END_ID])
    pieces, done = run(bb, prompt, hook=hook)
    assert done.finish_reason == "stop" and done.text == "Hi there" and done.tokens == words
    assert "<|im_end|>" not in "".join(pieces)
    assert bb.tokens == prompt + words  # the stop token is not fed


def test_stop_ids(bb, prompt):
    words = bb.tokenize("Hi there")
    _, done = run(bb, prompt, hook=forcing(words), stop_ids=[words[1]])
    assert done.finish_reason == "stop" and done.tokens == words[:1]


def test_hook_sees_every_fed_token_once(bb, prompt):
    hook = forcing(bb.tokenize("one two three"))
    _, done = run(bb, prompt, hook=hook, max_tokens=5, want_hidden=True)
    fed = [prompt[-1]] + done.tokens  # the last prompt token, then each generated one
    assert [last for _, last, _ in hook.calls] == fed
    assert [n for n, _, _ in hook.calls] == list(range(len(prompt), len(prompt) + len(fed)))
    assert all(h.shape == (bb.n_embd,) and h.dtype == np.float32 for _, _, h in hook.calls)
    # the hidden states are those of the same decodes replayed by hand
    bb.clear()
    expected = [bb.decode(prompt, hidden=True).hidden[-1]] + [bb.decode([t], hidden=True).hidden[0] for t in done.tokens]
    np.testing.assert_array_equal(np.stack([h for _, _, h in hook.calls]), np.stack(expected))


def test_hook_without_hidden(bb, prompt):
    hook = forcing([])
    run(bb, prompt, hook=hook, max_tokens=3)
    assert len(hook.calls) == 4 and all(h is None for _, _, h in hook.calls)


def test_hidden_does_not_change_the_reply(bb, prompt):
    _, plain = run(bb, prompt)
    bb.clear()
    _, with_hidden = run(bb, prompt, want_hidden=True)
    assert plain.tokens == with_hidden.tokens


def test_pieces_never_split_utf8(bb, prompt):
    text = "é😀 你好"
    ids = bb.tokenize(text)
    assert len(ids) > 4  # several byte tokens per character
    pieces, done = run(bb, prompt, hook=forcing(ids + [gguf_factory.IM_END_ID]))
    assert done.text == text and "".join(pieces) == text
    assert "\ufffd" not in "".join(pieces)
    assert len(pieces) < len(ids)  # partial characters were held back


def test_invalid_utf8_is_replaced_not_raised(bb, prompt):
    lone = 3 + 0xF0  # the byte token for a lone UTF-8 lead byte (ids 0-2 are the specials)
    assert bb.detokenize([lone]) == b"\xf0"
    _, done = run(bb, prompt, hook=forcing([lone, gguf_factory.IM_END_ID]))
    assert done.text == "\ufffd"


def test_cancel_leaves_the_cache_consistent(bb, prompt):
    words = bb.tokenize(" a b c d e f")
    events = generate(bb, prompt, Sampler.greedy(), max_tokens=50, hook=forcing(words))
    got = [next(events) for _ in range(3)]
    events.close()
    assert all(isinstance(e, Piece) for e in got)
    # the third token was shown but not yet fed
    assert bb.n_past == len(prompt) + 2 and bb.tokens == prompt + words[:2]


def test_stops_when_the_context_is_full(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=64, n_threads=1) as small:
        prompt = small.tokenize(small.render_chat([{"role": "user", "content": "Hello"}], True))
        _, done = run(small, prompt, max_tokens=1000)
        assert done.finish_reason == "length" and small.n_past == small.n_ctx
        assert done.n_tokens == small.n_ctx - len(prompt)


def test_a_reply_that_repeats_itself_stops_as_a_loop(bb, prompt):
    from dreamchat.models.generation import LOOP_REPEATS, LOOP_SPAN, LoopGuard

    cycle = [40, 41, 42, 43, 44]
    looping = forcing(cycle * 40)
    _, done = run(bb, prompt, hook=looping, max_tokens=150)
    assert done.finish_reason == "length" and done.n_tokens == 150  # not asked to stop loops
    bb.clear()
    _, done = run(bb, prompt, hook=forcing(cycle * 40), max_tokens=150, stop_loops=True)
    # the span of LOOP_SPAN tokens that ends at token n was said for the LOOP_REPEATS-th time
    assert done.finish_reason == "loop" and done.n_tokens == LOOP_SPAN + (LOOP_REPEATS - 1) * len(cycle)
    assert bb.tokens == prompt + done.tokens  # the KV invariant holds
    assert LoopGuard.stop_at(cycle * 40) == done.n_tokens and LoopGuard.stop_at(cycle * 3) is None
    # a chorus said three times is not a loop
    bb.clear()
    chorus = list(range(100, 100 + LOOP_SPAN + 4))
    verse = [[200 + 10 * v + i for i in range(8)] for v in range(4)]
    song = [t for v in range(3) for t in verse[v] + chorus] + verse[3]
    _, done = run(bb, prompt, hook=forcing(song), max_tokens=len(song), stop_loops=True)
    assert done.finish_reason == "length" and done.tokens == song


def test_generation_continues_a_conversation(bb, prompt):
    _, first = run(bb, prompt, max_tokens=5)
    follow = bb.tokenize("<|im_end|>\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n")
    _, second = run(bb, follow, max_tokens=5)
    assert bb.tokens == prompt + first.tokens + follow + second.tokens


def test_bad_arguments(bb):
    with pytest.raises(ValueError):
        next(generate(bb, [], Sampler.greedy(), max_tokens=5))
    with pytest.raises(ValueError):
        next(generate(bb, [1], Sampler.greedy(), max_tokens=0))


@pytest.mark.e2e
def test_real_model_matches_create_chat_completion(real_model_path):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    with Backbone(real_model_path, n_ctx=1024, n_threads=1) as b:
        _, done = run(b, b.tokenize(b.render_chat(messages, True)), max_tokens=24)
    llm = reference_llama(real_model_path, n_ctx=1024, n_threads=1, verbose=False)
    theirs = llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=24)
    llm.close()
    assert done.text == theirs["choices"][0]["message"]["content"]
    assert done.finish_reason == theirs["choices"][0]["finish_reason"]
