"""benchmarks/toy_binding.py: its episodes are what its table claims they are, and its harness
trains the real memory model (the kinds control, which kind matching alone answers, is learned in
a hundred steps)."""

from __future__ import annotations

import random

import pytest
import torch

import benchmark_modules


@pytest.fixture(scope="module")
def toy():
    return benchmark_modules.load("toy_binding")


def sentences(toy, day):
    """The day's sentences as word lists (fillers dropped), in order."""
    V = toy.VOCAB
    words, out, current = [V.word["user:"]], [], []
    assert day[0] == words[0]
    for t in day[1:]:
        if t in V.fillers:
            continue
        current.append(t)
        if t == V.word["."]:
            out.append(current)
            current = []
    assert not current
    return out


def test_episodes_tie_names_to_relatives_and_flag_the_order(toy):
    V, w = toy.VOCAB, toy.VOCAB.word
    rng = random.Random(3)
    seen_orders = set()
    for kind in ("binding", "kinds"):
        for _ in range(200):
            day, probes = toy.make_episode(rng, kind, held_out=False)
            said = sentences(toy, day)
            assert len(said) == 4
            ties = {s[3]: (i, s[0]) for i, s in enumerate(said) if s[1] == w["is"]}
            facts = {s[0]: (i, s[3], s[1]) for i, s in enumerate(said) if s[1] != w["is"]}
            verbs = {s[1] for s in said if s[1] != w["is"]}
            assert verbs == ({w["works"]} if kind == "binding" else {w["works"], w["lives"]})
            for p in probes:
                relative = p.tokens[4]
                tie_at, name = ties[relative]
                fact_at, value, _ = facts[name]
                assert p.answer == value and p.kind == kind
                assert p.fact_first == (fact_at < tie_at)
                seen_orders.add(p.fact_first)
                other = next(v for n, (_, v, _) in facts.items() if n != name)
                assert p.swap == (other if kind == "binding" else -1)
    assert seen_orders == {True, False}


def test_held_out_episodes_use_names_and_values_never_trained_on(toy):
    train_days, _ = toy.make_set(300, seed=1, held_out=False)
    test_days, _ = toy.make_set(300, seed=1, held_out=True)
    V = toy.VOCAB
    pool = set(V.names) | set(V.values)
    trained = {t for d in train_days for t in d if t in pool}
    tested = {t for d in test_days for t in d if t in pool}
    assert trained and tested and not trained & tested


def test_the_harness_trains_the_memory_model_on_the_kinds_control(toy):
    torch.set_num_threads(1)
    backbone = toy.LocalBackbone(64, seed=0)
    model = toy.new_model(64, backbone, seed=1)
    before = toy.evaluate(model, backbone, passes=1, episodes=60, seed=5)["kinds"]
    toy.train(model, backbone, passes=1, steps=100, batch=32, lr=3e-3, seed=1, log_every=0)
    after = toy.evaluate(model, backbone, passes=1, episodes=60, seed=5)["kinds"]
    assert before["hit"] < 0.2 * before["probes"]
    assert after["hit"] > 0.9 * after["probes"]
