"""benchmarks/eval_calibration.py: every knob does what it says on a small memory model, and leaves
the model exactly as it was."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from dreamchat.models.memory import COPY_WRITTEN, MemoryConfig, MemoryModel

import benchmark_modules

V, D = 200, 48
CFG = dict(n_embd=D, n_vocab=V, d_model=32, n_heads=2, head_dim=16, copy_heads=2, copy_key_dim=8,
           key_window=2, query_window=2, n_wording=10)
CONTROL, SYSTEM, USER = 1, 2, 3     # a control token and two role names of this toy vocabulary


@pytest.fixture(scope="module")
def cal():
    return benchmark_modules.load("eval_calibration")


@pytest.fixture()
def model():
    torch.manual_seed(0)
    emb = np.random.default_rng(0).normal(0, 1, (V, D)).astype(np.float32)
    m = MemoryModel(MemoryConfig(**CFG), emb, wording_ids=range(100, 110))
    with torch.no_grad():
        m.gate.bias.fill_(0.0)
    return m.eval()


def day(T: int = 40, seed: int = 1):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(10, 100, T)
    tokens[[0, 12, 25]] = CONTROL        # three turns: system, user, user
    tokens[[1, 13, 26]] = [SYSTEM, USER, USER]
    return rng.normal(0, 3, (T, D)).astype(np.float32), tokens.astype(np.int64)


def bias(model, state, hidden, tokens) -> dict[int, float]:
    """The wake bias after reading the day back, by token id."""
    b = model.wake(state).feed(hidden, tokens)
    return dict(zip(b.ids.tolist(), b.values.tolist()))


def test_every_knob_is_undone_on_exit(cal, model):
    h, t = day()
    before_fp = model.fingerprint
    state = model.consolidate([(h, t)], model.empty_state(), passes=2)
    before = bias(model, state, h, t)
    knobs = dict(copy_scale=2, gate=1, wording=0.5, sharpen=3, write=1, forget=10, centre=0.5,
                 skip_system=1, skip_control=1)
    with cal.applied(model, knobs, key_direction=torch.nn.functional.normalize(torch.ones(2, 8), dim=-1),
                     control=torch.tensor([CONTROL]), system_role=SYSTEM):
        changed = bias(model, model.consolidate([(h, t)], model.empty_state(), passes=2), h, t)
    assert changed != pytest.approx(before)
    assert model.fingerprint == before_fp
    after_state = model.consolidate([(h, t)], model.empty_state(), passes=2)
    assert all(torch.equal(after_state[k], state[k]) for k in state)
    assert bias(model, state, h, t) == pytest.approx(before)


def copy_bias_with(cal, model, **knobs):
    """(state, the copy part of the bias, the same with `knobs`) after one day, wording path off."""
    h, t = day()
    state = model.consolidate([(h, t)], model.empty_state(), passes=2)
    with cal.applied(model, {"wording": 0}):
        plain = bias(model, state, h, t)
    with cal.applied(model, {"wording": 0, **knobs}):
        varied = bias(model, state, h, t)
    return state, plain, varied


def test_copy_scale_and_wording_scale_their_parts_of_the_bias(cal, model):
    state, copy_only, doubled = copy_bias_with(cal, model, copy_scale=2)
    written = state[COPY_WRITTEN][0].nonzero().squeeze(1).tolist()
    assert any(abs(copy_only[i]) > 1e-3 for i in written)
    assert [doubled[i] for i in written] == pytest.approx([2 * copy_only[i] for i in written], rel=1e-4)
    assert all(copy_only[i] == 0 for i in range(100, 110) if i not in written)  # the wording part is off


def test_sharpen_keeps_the_strongest_push_and_shrinks_the_others(cal, model):
    _, plain, sharp = copy_bias_with(cal, model, sharpen=3)
    top = max(plain.values())
    for i, c in plain.items():
        expected = top * (c / top) ** 3 if c > 0 else c
        assert sharp[i] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_unwritable_marks_the_system_turn_and_the_template(cal):
    _, t = day()
    t = torch.as_tensor(t)
    control = torch.tensor([CONTROL])
    system = cal.unwritable(t, control, {SYSTEM}, skip_control=False)
    assert system[:12].all() and not system[12:].any()
    users = cal.unwritable(t, control, {USER}, skip_control=False)   # as skip_assistant marks its role's turns
    assert users[12:].all() and not users[:12].any()
    template = cal.unwritable(t, control, set(), skip_control=True)
    assert template.nonzero().squeeze(1).tolist() == [0, 1, 11, 12, 13, 24, 25, 26]


def test_skip_system_writes_nothing_from_the_system_turn(cal, model):
    h, t = day()
    with cal.applied(model, {"skip_system": 1}, control=torch.tensor([CONTROL]), system_role=SYSTEM):
        state = model.consolidate([(h, t)], model.empty_state(), passes=1)
    written = set(state[COPY_WRITTEN][0].nonzero().squeeze(1).tolist())
    assert written == set(t[13:].tolist())   # values are the tokens after the unskipped positions


def test_skip_punct_and_skip_function_write_no_such_value(cal, model):
    h, t = day()
    quiet = torch.zeros(V, dtype=torch.bool)
    quiet[10:40] = True
    masks = {"punctuation": quiet, "function": torch.zeros(V, dtype=torch.bool)}
    with cal.applied(model, {"skip_punct": 1}, control=torch.tensor([CONTROL]), **masks):
        state = model.consolidate([(h, t)], model.empty_state(), passes=1)
    written = set(state[COPY_WRITTEN][0].nonzero().squeeze(1).tolist())
    assert written == {int(x) for x in t[1:] if not 10 <= x < 40}
    with pytest.raises(ValueError, match="stop-word"):
        with cal.applied(model, {"skip_function": 1}, control=torch.tensor([CONTROL])):
            pass


def test_spread_anchor_and_starts_narrow_where_and_what_is_spread(cal, model):
    """spread_anchor: only at a category word or the position before one; spread_starts: only the
    first piece of a run of content words."""
    _, t = day()
    tokens = torch.as_tensor(t)[None]
    nxt = torch.cat([tokens[:, 1:], torch.full((1, 1), -1)], dim=1).clamp(min=0)
    writes = torch.ones_like(tokens, dtype=torch.bool)
    content = torch.zeros(V, dtype=torch.bool)
    content[10:60] = True
    category = torch.zeros(V, dtype=torch.bool)
    category[60:70] = True
    masks = dict(control=torch.tensor([CONTROL]), content=content, digits=torch.zeros(V, dtype=torch.bool),
                 category=category)
    plain = model.copy_values(tokens, nxt, writes)
    with cal.applied(model, {"spread": 0.5, "span": 3, "spread_anchor": 1}, **masks):
        anchored = model.copy_values(tokens, nxt, writes)
    near = category[tokens] | category[nxt]
    assert torch.allclose(anchored[~near], plain[~near]) and not torch.allclose(anchored, plain)
    with cal.applied(model, {"spread": 0.5, "span": 3, "spread_starts": 1}, **masks):
        starts = model.copy_values(tokens, nxt, writes)
    sources = cal.spread_sources(tokens, content, torch.tensor([CONTROL]), span=3)
    expected = plain + sum(0.5 * model.emb_v[b] * (s & ~content[cal.shifted(tokens, j + 1)])[..., None]
                           for j, (b, s) in enumerate(sources))
    assert torch.allclose(starts, expected, atol=1e-6)


def test_centre_takes_the_shared_direction_out_of_keys(cal, model):
    h, t = day()
    f = model.inputs(torch.as_tensor(h)[None], torch.as_tensor(t)[None])
    u = cal.mean_key_direction(model, [(h, t)])
    assert (model.copy.keys(f) * u).sum(-1).mean() > 0.1     # keys share a direction
    with cal.applied(model, {"centre": 1}, key_direction=u):
        assert (model.copy.keys(f) * u).sum(-1).abs().max() < 1e-5
        assert (model.copy.queries(f) * u).sum(-1).abs().max() < 1e-5


def test_spread_writes_earlier_content_words_of_the_same_turn(cal, model):
    """spread: position t also writes L x e(token) for the content words among the `span` tokens up
    to t, never across a turn; with spread_gap only where neither t's token nor the next is one."""
    _, t = day()
    tokens = torch.as_tensor(t)[None]
    content = torch.zeros(V, dtype=torch.bool)
    content[10:60] = True
    sources = cal.spread_sources(tokens, content, torch.tensor([CONTROL]), span=3)
    back2, spreads2 = sources[2]
    assert torch.equal(back2[0, 2:], tokens[0, :-2])
    assert not spreads2[0, 12:15].any()           # a user turn starts at 12: nothing from before it
    assert all(bool(spreads2[0, i]) == bool(content[tokens[0, i - 2]]) for i in range(16, 25))
    nxt = torch.cat([tokens[:, 1:], torch.full((1, 1), -1)], dim=1).clamp(min=0)
    writes = torch.ones_like(tokens, dtype=torch.bool)
    plain = model.copy_values(tokens, nxt, writes)
    with cal.applied(model, {"spread": 0.5, "span": 3}, control=torch.tensor([CONTROL]), content=content,
                     digits=torch.zeros(V, dtype=torch.bool)):
        spread = model.copy_values(tokens, nxt, writes)
    with cal.applied(model, {"spread": 0.5, "span": 3, "spread_gap": 1}, control=torch.tensor([CONTROL]),
                     content=content, digits=torch.zeros(V, dtype=torch.bool)):
        gap = model.copy_values(tokens, nxt, writes)
    expected = plain + sum(0.5 * model.emb_v[b] * s[..., None] for b, s in sources)
    assert torch.allclose(spread, expected, atol=1e-6)
    inside = content[tokens] | content[nxt]
    assert torch.allclose(gap[inside], plain[inside]) and not torch.allclose(gap, plain)
    assert torch.equal(model.copy_values(tokens, nxt, writes), plain)   # undone on exit


def test_parse_variant(cal):
    assert cal.parse_variant("base") == ("base", {})
    assert cal.parse_variant("copy_scale=1.3,gate=-1") == ("copy_scale=1.3,gate=-1", {"copy_scale": 1.3, "gate": -1.0})
    with pytest.raises(SystemExit, match="unknown variant part"):
        cal.parse_variant("scale=2")
    with pytest.raises(SystemExit, match="needs a number"):
        cal.parse_variant("gate=high")


def test_a_knob_without_what_it_needs_is_refused_before_anything_changes(cal, model):
    before = model.fingerprint
    with pytest.raises(ValueError, match="key_direction"):
        with cal.applied(model, {"copy_scale": 2, "centre": 1}):
            pass
    with pytest.raises(ValueError, match="control token"):
        with cal.applied(model, {"gate": 1, "skip_system": 1}):
            pass
    assert model.fingerprint == before


def test_natural_range(cal):
    assert cal.natural_range("44") == slice(0, 44)
    assert cal.natural_range("44:64") == slice(44, 64)
    with pytest.raises(Exception, match="not N or A:B"):
        cal.natural_range("some")
