"""On-policy reply openings (`models/openings.py`): the memory's own replies made into training
targets, and a feature build that uses them."""

from __future__ import annotations

import numpy as np
import pytest

from dreamchat.models.backbone import Backbone
from dreamchat.models.episodes import make_episodes
from dreamchat.models.features import FeatureCache
from dreamchat.models.memory import MemoryModel
from dreamchat.models.openings import OpeningsModel, corrected_reply
from dreamchat.models.train_data import build_feature_set

FACTS = ["Oreo", "Apollo", "Juniper Press", "Lisbon"]


@pytest.mark.parametrize("reply, answer, target", [
    # the reply holds the value: kept through it (what follows a value is often the memory's noise)
    ("Your kitten is called Apollo.", "Apollo", "Your kitten is called Apollo."),
    ("You drive a Ford Transit XC00 now.", "Ford Transit", "You drive a Ford Transit."),
    ("your cousin works at juniper press, as far as I know", "Juniper Press", "your cousin works at juniper press."),
    # a stale or other value where the answer should be: replaced there
    ("You call your kitten Oreo.", "Apollo", "You call your kitten Apollo."),
    ("It's Lisbon, I think. Or Oreo.", "Porto", "It's Porto."),
    # no value: the opening through its first linking word, then the value
    ("Your cousin is an assistant.", "Juniper Press", "Your cousin is Juniper Press."),
    ("You're going to the beach soon!", "Mombasa", "You're going to Mombasa."),
    ("They've taken up a new hobby.", "fencing", "They've taken up fencing."),
])
def test_corrected_reply_keeps_the_memorys_opening(reply, answer, target):
    assert corrected_reply(reply, answer, FACTS) == target


@pytest.mark.parametrize("reply", [
    "I'm sorry for any inconvenience. I'm a tech support chatbot.",   # not an answer: template instead
    "Your cousin, as you mentioned.",                                  # the sentence breaks before a link
    "You said.",                                                       # no linking word
    "Oreo, if I remember right.",                                      # a wrong value first: nothing to keep
    "",
])
def test_corrected_reply_gives_up_on_replies_that_are_not_answers(reply):
    assert corrected_reply(reply, "Apollo", FACTS) is None


class ScriptedOpenings:
    """Stands in for OpeningsModel: always the same reply, and a fingerprint for the cache key."""

    passes, max_tokens = 2, 24

    def __init__(self, text: str):
        self.text = text
        self.memory = type("M", (), {"fingerprint": "scripted"})()
        self.calls = 0

    def sleep(self, days):
        return {}

    def reply(self, backbone, state, context_tokens, context_hidden, prompt):
        self.calls += 1
        return self.text


def _replies(folder, backbone) -> dict[str, str]:
    """Probe name -> the reply text the feature set trains on (where its weights are)."""
    cache = FeatureCache(folder.parent, folder.name)
    out = {}
    for name, seq in cache.read_shard(0).items():
        if "/p" in name:
            at = np.nonzero(seq.weight)[0]
            out[name] = backbone.detokenize(list(seq.tokens[at[0] + 1: at[-1] + 1])).decode()
    return out


def test_a_build_with_openings_trains_on_the_corrected_replies(tiny_gguf, tmp_path):
    episodes = make_episodes(3, split="train", seed=4)
    common = dict(value_weight=3.0, neutral_weight=0.3, shard_size=10, progress=False)
    with Backbone(tiny_gguf, n_ctx=2048) as backbone:
        plain = build_feature_set(backbone, episodes, "Be brief.", tmp_path, "train", **common)
        scripted = ScriptedOpenings("Your thing is a mystery.")
        opened = build_feature_set(backbone, episodes, "Be brief.", tmp_path, "train", **common,
                                   openings=scripted, openings_chance=1.0)
        assert opened != plain                                   # another set, another cache key
        probes = [p for ep in episodes for p in ep.probes]
        assert scripted.calls == len(probes)
        before, after = _replies(plain, backbone), _replies(opened, backbone)
        names = sorted(before)
        assert [before[n].strip() for n in names] == [p.reply for p in probes]
        assert [after[n].strip() for n in names] == [f"Your thing is {p.answer}." for p in probes]
        # chance 0 is the plain set itself (same key, nothing asked of the openings model)
        again = ScriptedOpenings("Your thing is a mystery.")
        assert build_feature_set(backbone, episodes, "Be brief.", tmp_path, "train", **common,
                                 openings=again, openings_chance=0.0) == plain and again.calls == 0


def test_a_real_memory_answers_without_disturbing_the_cached_states(tiny_gguf, tiny_weights, tmp_path):
    """The memory's replies are generated on the backbone's cache between the day and its probes;
    every cached sequence must still hold the hidden states of its own tokens."""
    episodes = make_episodes(2, split="train", seed=5, nights=2)
    with Backbone(tiny_gguf, n_ctx=2048) as backbone:
        memory = MemoryModel.load(tiny_weights, backbone.output_embeddings(), backbone.fingerprint)
        folder = build_feature_set(backbone, episodes, "Be brief.", tmp_path, "train", value_weight=3.0,
                                   neutral_weight=0.3, shard_size=10, progress=False,
                                   openings=OpeningsModel(memory, max_tokens=6), openings_chance=1.0)
        cache = FeatureCache(folder.parent, folder.name)
        seqs = cache.read_shard(0)
        assert any("/p" in n for n in seqs)
        for name, seq in seqs.items():
            backbone.clear()
            fresh = np.asarray(backbone.decode(list(seq.tokens), hidden=True).hidden)
            assert np.allclose(seq.hidden.astype(np.float32), fresh, atol=2e-2), name
