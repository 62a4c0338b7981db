"""benchmarks/eval_read_signal.py: its AUC is the Mann-Whitney statistic, and its signals are the
memory's own read, zero where nothing was slept."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from dreamchat.models.memory import MemoryConfig, MemoryModel

import benchmark_modules

V, D = 200, 48
CFG = dict(n_embd=D, n_vocab=V, d_model=32, n_heads=2, head_dim=16, copy_heads=2, copy_key_dim=8,
           key_window=2, query_window=2, n_wording=10, copy_hidden=True, copy_key_power=2)


@pytest.fixture(scope="module")
def signal():
    return benchmark_modules.load("eval_read_signal")


@pytest.fixture()
def memory():
    torch.manual_seed(0)
    emb = np.random.default_rng(0).normal(0, 1, (V, D)).astype(np.float32)
    return MemoryModel(MemoryConfig(**CFG), emb, wording_ids=range(100, 110)).eval()


def test_auc_is_the_chance_a_positive_outscores_a_negative(signal):
    assert signal.auc([3, 4], [1, 2]) == 1.0
    assert signal.auc([1, 2], [3, 4]) == 0.0
    assert signal.auc([1, 3], [2, 2]) == 0.5
    assert signal.auc([2], [2]) == 0.5                       # ties count half
    assert signal.auc([1, 2, 3, 4], [0, 2.5]) == pytest.approx((4 + 2) / 8)
    with pytest.raises(ValueError):
        signal.auc([], [1])


def test_strongest_takes_each_signals_maximum_over_the_span(signal):
    signals = {"norm": np.array([[9.0, 0.0], [1.0, 2.0], [3.0, 1.0]]), "gate": np.array([0.9, 0.1, 0.2])}
    assert signal.strongest(signals, 2) == {"norm head 0": 3.0, "norm head 1": 2.0, "gate": 0.2}


def test_signals_are_zero_before_any_sleep_and_grow_once_a_day_is_written(signal, memory):
    rng = np.random.default_rng(1)
    hidden = rng.normal(0, 1, (12, D)).astype(np.float32)
    tokens = rng.integers(0, V, 12)
    empty = memory.empty_state()
    before = signal.read_signals(memory, empty, *signal.wake_pass(memory, hidden, tokens, empty)[1:])
    assert before["norm"].shape == (12, 2) and before["gate"].shape == (12,)
    assert np.all(before["read"] == 0) and np.all(np.isneginf(before["top_logit"]))

    t = torch.as_tensor(tokens)[None]
    slept = memory.sleep(torch.as_tensor(hidden)[None], t, torch.roll(t, -1), torch.ones_like(t, dtype=torch.bool),
                         empty, passes=2)
    after = signal.read_signals(memory, slept, *signal.wake_pass(memory, hidden, tokens, slept)[1:])
    assert np.all(after["read"] > 0) and np.all(np.isfinite(after["top_logit"]))
    assert np.all((after["gate"] > 0) & (after["gate"] < 1))


def test_a_probe_finds_a_signal_where_there_is_one_and_none_where_there_is_not(signal):
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    groups = np.arange(200) // 4                               # four questions per "episode"
    noise = rng.normal(0, 1, (200, 5))
    assert signal.probe_auc(noise, labels, groups) == pytest.approx(0.5, abs=0.15)
    separable = noise + np.outer(labels, [3, 0, 0, 0, 0])
    assert signal.probe_auc(separable, labels, groups) > 0.95
