"""Sampler: each filter checked exactly on hand-made logits."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from dreamchat.models.sampler import REPEAT_LAST_N, Sampler


def make(**overrides) -> Sampler:
    settings = dict(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0, seed=0)
    settings.update(overrides)
    return Sampler(**settings)


def logits_for(probs) -> np.ndarray:
    """Logits whose softmax is `probs` (exactly, up to float32 rounding)."""
    return np.log(np.asarray(probs, dtype=np.float64)).astype(np.float32)


def kept_ids(sampler: Sampler, logits) -> list[int]:
    ids, _ = sampler.candidates(np.asarray(logits, np.float32))
    return ids.tolist()


def test_greedy_is_argmax_and_ignores_filters_and_seed():
    logits = np.array([0.1, 3.0, -1.0, 2.9], np.float32)
    for seed in (None, 0, 1):
        s = make(temperature=0.0, top_k=1, top_p=0.1, min_p=0.9, seed=seed)
        assert s.sample(logits.copy()) == 1


def test_top_k_keeps_the_k_largest_in_order():
    logits = [0.5, 2.0, -1.0, 3.0, 1.0]
    assert kept_ids(make(top_k=2), logits) == [3, 1]
    assert kept_ids(make(top_k=1), logits) == [3]
    assert kept_ids(make(top_k=0), logits) == [3, 1, 4, 0, 2]  # 0 = off
    assert kept_ids(make(top_k=99), logits) == [3, 1, 4, 0, 2]


def test_top_p_keeps_the_token_that_reaches_p():
    logits = logits_for([0.5, 0.2, 0.15, 0.1, 0.05])
    assert kept_ids(make(top_p=0.5), logits) == [0]  # 0.5 reaches 0.5 exactly
    assert kept_ids(make(top_p=0.6), logits) == [0, 1]  # 0.5 < 0.6 <= 0.7
    assert kept_ids(make(top_p=0.86), logits) == [0, 1, 2, 3]  # 0.85 < 0.86 <= 0.95
    assert kept_ids(make(top_p=0.0), logits) == [0]  # at least one token
    assert kept_ids(make(top_p=1.0), logits) == [0, 1, 2, 3, 4]


def test_top_p_after_top_k_renormalises_over_the_k():
    logits = logits_for([0.4, 0.3, 0.2, 0.1])
    # over the top 2 the probabilities are 4/7 and 3/7: 4/7 >= 0.5 already
    assert kept_ids(make(top_k=2, top_p=0.5), logits) == [0]
    assert kept_ids(make(top_k=2, top_p=0.6), logits) == [0, 1]
    assert kept_ids(make(top_k=0, top_p=0.6), logits) == [0, 1]  # 0.4 < 0.6 <= 0.7 over all four


def test_min_p_is_relative_to_the_most_likely():
    logits = logits_for([0.5, 0.3, 0.1, 0.06, 0.04])
    assert kept_ids(make(min_p=0.19), logits) == [0, 1, 2]  # keep p >= 0.095
    assert kept_ids(make(min_p=0.21), logits) == [0, 1]  # keep p >= 0.105
    assert kept_ids(make(min_p=0.61), logits) == [0]  # 0.3 < 0.305
    assert kept_ids(make(min_p=0.0), logits) == [0, 1, 2, 3, 4]
    assert kept_ids(make(min_p=0.19, top_p=0.95), logits) == [0, 1, 2]  # same on the sorted path


def test_filters_chain_in_llama_cpp_order():
    logits = logits_for([0.35, 0.25, 0.2, 0.1, 0.06, 0.04])
    # top-k 4 -> [0..3]; top-p 0.9 over them (0.389, 0.667, 0.889, 1.0) -> [0..3]; min-p 0.5 of 0.35 -> [0, 1, 2]
    assert kept_ids(make(top_k=4, top_p=0.9, min_p=0.5), logits) == [0, 1, 2]


def test_repeat_penalty_llama_cpp_style():
    s = make(repeat_penalty=2.0)
    logits = np.array([4.0, -4.0, 1.0, -1.0, 3.0], np.float32)
    s.penalize(logits, [0, 1, 0, 0, 1])  # repeated ids are penalised once
    np.testing.assert_array_equal(logits, [2.0, -8.0, 1.0, -1.0, 3.0])


def test_repeat_penalty_window_is_last_64():
    s = make(repeat_penalty=2.0)
    logits = np.ones(100, np.float32)
    history = [7] + [8] * REPEAT_LAST_N  # 7 falls out of the window
    s.penalize(logits, history)
    assert logits[7] == 1.0 and logits[8] == 0.5


def test_repeat_penalty_applies_before_greedy():
    s = make(temperature=0.0, repeat_penalty=1.5)
    logits = np.array([3.0, 2.5, 0.0], np.float32)
    assert s.sample(logits.copy(), history=[]) == 0
    assert s.sample(logits.copy(), history=[0]) == 1  # 3.0 / 1.5 = 2.0 < 2.5


def test_sampling_follows_the_distribution():
    probs = [0.6, 0.3, 0.1]
    s = make(seed=123)
    counts = Counter(s.sample(logits_for(probs)) for _ in range(6000))
    for token, p in enumerate(probs):
        assert abs(counts[token] / 6000 - p) < 0.03


def test_temperature_sharpens_and_flattens():
    logits = logits_for([0.6, 0.3, 0.1])
    cold_sampler, hot_sampler = make(temperature=0.25, seed=1), make(temperature=4.0, seed=1)
    cold = Counter(cold_sampler.sample(logits.copy()) for _ in range(2000))
    hot = Counter(hot_sampler.sample(logits.copy()) for _ in range(2000))
    assert cold[0] / 2000 > 0.9  # 0.6^4 / (0.6^4 + 0.3^4 + 0.1^4) = 0.94
    assert 0.22 < hot[2] / 2000 < 0.30  # p ∝ p^(1/4): 0.1^.25 / (0.6^.25 + 0.3^.25 + 0.1^.25) = 0.258


def test_filtered_tokens_are_never_drawn():
    logits = logits_for([0.3, 0.3, 0.3, 0.1])
    s = make(top_k=3, temperature=5.0, seed=2)
    assert 3 not in {s.sample(logits.copy()) for _ in range(500)}


def test_seed_reproduces():
    rng = np.random.default_rng(0)
    steps = [rng.normal(size=50).astype(np.float32) for _ in range(30)]
    runs = [[make(seed=42, top_k=20, top_p=0.9).sample(x.copy()) for x in steps] for _ in range(2)]
    assert runs[0] == runs[1]
    other = [make(seed=43, top_k=20, top_p=0.9).sample(x.copy()) for x in steps]
    assert other != runs[0]


def test_from_settings_reads_the_fields():
    settings = SimpleNamespace(temperature=0.3, top_p=0.8, top_k=7, min_p=0.1, repeat_penalty=1.2, seed=5,
                               max_tokens=99)
    s = Sampler.from_settings(settings)
    assert (s.temperature, s.top_p, s.top_k, s.min_p, s.repeat_penalty, s.seed) == (0.3, 0.8, 7, 0.1, 1.2, 5)


def test_from_config_dataclass():
    config = pytest.importorskip("dreamchat.config")
    s = Sampler.from_settings(config.SamplingSettings())
    assert s.top_k == config.SamplingSettings().top_k


@pytest.mark.parametrize("bad", [dict(temperature=-0.1), dict(top_p=1.5), dict(top_k=-1), dict(min_p=2.0),
                                 dict(repeat_penalty=0.0)])
def test_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        make(**bad)
