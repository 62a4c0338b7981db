"""Backbone features: render_day, day_chunks, the feature cache and the training feature-set builder,
on the tiny synthetic GGUF (random weights, real llama.cpp plumbing)."""

from __future__ import annotations

import numpy as np
import pytest

from dreamchat.models.backbone import Backbone
from dreamchat.models.episodes import make_episodes
from dreamchat.models.features import (
    CachedSequence,
    FeatureCache,
    day_chunks,
    echo_hidden,
    render_day,
    turn_spans,
    unwritten_positions,
    user_turn_spans,
)
from dreamchat.models.train_data import FeatureSet, build_feature_set

MESSAGES = [{"role": "user", "text": "My dog is called Rex."}, {"role": "assistant", "text": "Nice!"},
            {"role": "user", "content": "I live in Paris."}]


@pytest.fixture(scope="module")
def bb(tiny_gguf):
    backbone = Backbone(tiny_gguf, n_ctx=512, n_threads=1)
    yield backbone
    backbone.close()


def test_render_day_is_the_chat_template_with_system_prompt(bb):
    toks = render_day(bb, MESSAGES, "Be brief.")
    text = bb.detokenize(toks, special=True).decode()
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "My dog is called Rex." in text and text.endswith("I live in Paris.<|im_end|>\n")
    gen = render_day(bb, MESSAGES, "Be brief.", add_generation_prompt=True)
    assert gen[:len(toks)] == toks and bb.detokenize(gen[len(toks):], special=True).decode() == "<|im_start|>assistant\n"
    assert render_day(bb, MESSAGES, "")[:1] == bb.tokenize("<|im_start|>user")[:1]   # no system turn
    with pytest.raises(ValueError, match="role"):
        render_day(bb, [{"text": "no role"}], "")


def test_day_chunks_decode_each_chunk_from_an_empty_cache(bb):
    toks = render_day(bb, MESSAGES * 3, "Be brief.")
    chunks = day_chunks(bb, toks, chunk_tokens=40)
    assert len(chunks) == -(-len(toks) // 40)
    got = list(chunks)
    assert [len(t) for _, t in got] == [min(40, len(toks) - i) for i in range(0, len(toks), 40)]
    assert np.concatenate([t for _, t in got]).tolist() == toks
    for hidden, t in got:
        assert hidden.shape == (len(t), bb.n_embd) and hidden.dtype == np.float32
    # chunk 2 equals decoding its tokens alone (hard eviction: nothing of chunk 1 is seen)
    bb.clear()
    alone = bb.decode(toks[40:80], hidden=True).hidden
    assert np.allclose(got[1][0], alone, atol=1e-4)
    with pytest.raises(ValueError, match="exceeds"):
        day_chunks(bb, toks, chunk_tokens=bb.n_ctx + 1)


def test_the_sleep_leaves_out_the_system_prompts_own_words_and_the_replies(bb):
    day = [{"role": "user", "content": "You are my favourite. My cat is called Pickle."},
           {"role": "assistant", "content": "Pickle is lovely! Tabby cats are the best."}]
    tokens = render_day(bb, day, "You are a thoughtful Zanzibarian helper.")
    quiet = unwritten_positions(bb, tokens)
    (start, end), = turn_spans(bb, tokens, "system")
    (reply_start, reply_end), = turn_spans(bb, tokens, "assistant")
    assert quiet[reply_start:reply_end].all()                        # no value from the reply
    assert start == 0 and not quiet[end:reply_start].any() and not quiet[reply_end:].any()
    said = set(tokens[end:])
    for t in range(start, end):                                      # position t writes token t + 1
        assert quiet[t] == (tokens[t + 1] not in said)
    left_out = bb.detokenize([tokens[t + 1] for t in range(start, end) if quiet[t]]).decode()
    assert "Zanz" in left_out and "You" not in left_out              # "You are" the user said too
    assert not unwritten_positions(bb, [1, 2, 3]).any()              # no ChatML turns: all written


def test_turn_spans_find_a_role_name_of_several_tokens():
    class SmolLM2Like:   # its tokenizer splits "assistant" into "ass" "istant"
        ids = {"<|im_start|>": [1], "<|im_end|>": [2], "system": [9], "user": [3], "assistant": [4, 5]}

        def tokenize(self, text, special=False):
            return self.ids[text]

    #         system turn    user turn          reply turn            unfinished reply
    tokens = [1, 9, 8, 2, 7, 1, 3, 8, 8, 2, 7, 1, 4, 5, 8, 6, 2, 7, 1, 4, 5, 8]
    assert turn_spans(SmolLM2Like(), tokens, "assistant") == [(11, 16), (18, 22)]
    assert turn_spans(SmolLM2Like(), tokens, "user") == [(5, 9)]
    assert turn_spans(SmolLM2Like(), [9, 8, 7], "assistant") == []


def test_echo_reads_each_user_turn_again_and_leaves_the_rest_and_the_cache(bb):
    day = [{"role": "user", "content": "Einstein - that's my tortoise."}, {"role": "assistant", "content": "Nice."},
           {"role": "user", "content": "And Rex is my dog."}]
    tokens = render_day(bb, day, "You are a helpful assistant.")
    spans = user_turn_spans(bb, tokens)
    assert len(spans) == 2 and all(bb.token_bytes(tokens[a], special=True) == b"<|im_start|>" for a, _ in spans)
    assert all(bb.token_bytes(tokens[b], special=True) == b"<|im_end|>" for _, b in spans)
    bb.clear()
    first = np.asarray(bb.decode(tokens, hidden=True).hidden, dtype=np.float32)
    assert echo_hidden(bb, tokens, first, 0.0) is first
    echoed = echo_hidden(bb, tokens, first, 1.0)
    assert bb.tokens == tokens                                   # the cache holds the day again
    inside = np.zeros(len(tokens), bool)
    for a, b in spans:
        inside[a:b] = True
    assert np.array_equal(echoed[~inside], first[~inside])
    assert not np.allclose(echoed[inside], first[inside])
    # The second reading of a turn sees all of it: the turn read after itself, from an empty cache.
    a, b = spans[0]
    bb.clear()
    again = np.asarray(bb.decode(tokens[:b] + tokens[a:b], hidden=True).hidden, dtype=np.float32)[b:]
    assert np.allclose(echoed[a:b], again, atol=1e-3)
    bb.clear()
    bb.decode(tokens)
    half = echo_hidden(bb, tokens, first, 0.5)
    assert np.allclose(half[a:b], (first[a:b] + echoed[a:b]) / 2, atol=1e-3)
    chunks = list(day_chunks(bb, tokens, len(tokens), echo=1.0))
    assert np.allclose(chunks[0][0], echoed, atol=1e-3)


def test_feature_cache_roundtrip(tmp_path):
    cache = FeatureCache(tmp_path, "k")
    rng = np.random.default_rng(0)
    seqs = {f"s{i}": CachedSequence(rng.integers(0, 9, n), rng.normal(size=(n, 4)).astype(np.float16),
                               rng.random(n).astype(np.float32), rng.random(n).astype(np.float32))
            for i, n in enumerate([3, 1, 7])}
    cache.write_shard(0, seqs)
    cache.write_shard(1, {"t": seqs["s0"]})
    back = cache.read_all()
    assert list(back) == ["s0", "s1", "s2", "t"]
    for name, s in seqs.items():
        for field in ("tokens", "hidden", "weight", "lse"):
            assert np.array_equal(getattr(back[name], field), getattr(s, field)), (name, field)


def test_build_feature_set_marks_reply_and_value_tokens(bb, tmp_path):
    episodes = make_episodes(3, split="train", seed=5)
    folder = build_feature_set(bb, episodes, "Be brief.", tmp_path, "tiny", value_weight=3.0,
                               neutral_weight=0.5, shard_size=2, progress=False)
    fs = FeatureSet(folder)
    assert len(fs.episodes) == 3 and fs.embeddings.shape == (bb.n_vocab, bb.n_embd)
    ep, ref = episodes[0], fs.episodes[0]
    probe, pref = ep.probes[0], ref.probes[0]
    seq = fs.seqs[pref.name]
    text = bb.detokenize(seq.tokens.tolist(), special=True).decode()
    assert text.endswith(probe.reply + "<|im_end|>\n") and probe.question in text
    # the weighted targets spell the reply (through the end of turn), the value's tokens weigh 3
    at = np.nonzero(seq.weight)[0]
    targets = bb.detokenize(seq.tokens[at + 1].tolist(), special=True).decode()
    assert targets == probe.reply + "<|im_end|>"
    value = bb.detokenize(seq.tokens[np.nonzero(seq.weight == 3.0)[0] + 1].tolist()).decode()
    assert probe.answer in value
    # hidden states equal a fresh decode of the whole sequence (prefix reuse changes nothing real)
    bb.clear()
    fresh = bb.decode(seq.tokens.tolist(), hidden=True).hidden
    assert np.allclose(seq.hidden.astype(np.float32), fresh, atol=0.05 * np.abs(fresh).max())
    # log-sum-exp of h E^T where a loss is taken
    E = fs.embeddings
    z = seq.hidden[at].astype(np.float32) @ E.T
    assert np.allclose(seq.lse[at], np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1), atol=1e-3)
    # rebuilding finds the finished set
    assert build_feature_set(bb, episodes, "Be brief.", tmp_path, "tiny", value_weight=3.0,
                             neutral_weight=0.5, shard_size=2, progress=False) == folder


def test_a_build_split_in_parts_builds_only_its_shards_and_one_call_indexes_them(bb, tmp_path):
    episodes = make_episodes(5, split="train", seed=5)
    kw = dict(value_weight=3.0, neutral_weight=0.5, shard_size=1, progress=False)
    folder = build_feature_set(bb, episodes, "Be brief.", tmp_path, "tiny", **kw, part=1, parts=2)
    assert sorted(p.name for p in folder.glob("shard-*")) == ["shard-00001.safetensors", "shard-00003.safetensors"]
    assert not (folder / "index.json").exists()                 # a share is not a set
    build_feature_set(bb, episodes, "Be brief.", tmp_path, "tiny", **kw, part=0, parts=2)
    shards = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*")}
    assert len(shards) == 5 and not (folder / "index.json").exists()
    assert build_feature_set(bb, episodes, "Be brief.", tmp_path, "tiny", **kw) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*")} == shards   # indexed, not rebuilt
    fs = FeatureSet(folder)
    assert len(fs.episodes) == 5 and fs.index["settings"]["complete"]
