"""Tower: state naming, streaming wake, sleep (Algorithm 1) against a hand-written loop, and gradients
through every sleep pass into the slow weights and the starting state."""

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.func import functional_call

from dreamchat.models.tower import Tower, TowerConfig

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_tower(layout="AGAG", **overrides) -> Tower:
    torch.manual_seed(0)
    cfg = dict(d_model=16, layout=layout, n_heads=2, head_k_dim=4, head_v_dim=6, window=8,
               chunk_size=8, mlp_ratio=2.0)
    return Tower(TowerConfig(**{**cfg, **overrides})).double()


def test_initial_state_names_and_shapes():
    tower = tiny_tower("AGGA")
    state = tower.initial_state(batch=3)
    assert set(state) == {"blocks.1.S", "blocks.2.S"}
    for t in state.values():
        assert t.shape == (3, 2, 4, 6) and t.abs().sum() == 0


def test_forward_state_names_and_long_term():
    tower = tiny_tower("AG")
    h, state = tower(torch.randn(2, 5, 16, dtype=torch.float64))
    assert h.shape == (2, 5, 16)
    assert set(state) == {"blocks.0.k", "blocks.0.v", "blocks.0.pos", "blocks.1.S", "blocks.1.conv"}
    assert set(tower.long_term(state)) == {"blocks.1.S"}


@pytest.mark.parametrize("layout", ["AGAG", "G", "GA"])
@pytest.mark.parametrize("T", [1, 6, 19])
def test_wake_streaming_equals_whole_sequence(layout, T):
    tower = tiny_tower(layout, window=5)
    x = torch.randn(2, T, 16, dtype=torch.float64)
    S0 = {n: 0.3 * torch.randn_like(t) for n, t in tower.initial_state(2, dtype=torch.float64).items()}
    h_all, st_all = tower(x, S0)
    state, hs = dict(S0), []
    for t in range(T):
        h_t, state = tower(x[:, t:t + 1], state)
        hs.append(h_t)
    torch.testing.assert_close(torch.cat(hs, 1), h_all, rtol=1e-10, atol=1e-10)
    for name, t in tower.long_term(st_all).items():
        torch.testing.assert_close(state[name], t, rtol=1e-10, atol=1e-10)


def test_wake_mixed_block_sizes_equal_whole_sequence():
    """A day as the assistant streams it: a prompt block, generated tokens one by one, the next turn."""
    tower = tiny_tower(window=6)
    x = torch.randn(1, 16, 16, dtype=torch.float64)
    h_all, _ = tower(x)
    state, hs = None, []
    for lo, hi in [(0, 7), (7, 8), (8, 9), (9, 10), (10, 14), (14, 15), (15, 16)]:
        h, state = tower(x[:, lo:hi], state)
        hs.append(h)
    torch.testing.assert_close(torch.cat(hs, 1), h_all, rtol=1e-10, atol=1e-10)


def test_sleep_leaves_the_callers_state_alone():
    tower = tiny_tower()
    S0 = {n: torch.randn_like(t) for n, t in tower.initial_state(1, dtype=torch.float64).items()}
    before = {n: t.clone() for n, t in S0.items()}
    tower.sleep(torch.randn(1, 5, 16, dtype=torch.float64), S0, 2)
    assert S0.keys() == before.keys() and all(torch.equal(S0[n], before[n]) for n in S0)


def hand_sleep(tower, x, S, passes):
    """Algorithm 1 written out: each pass = one forward from the previous S on the previous features,
    with fresh caches; keep only S at the end."""
    h = x
    for _ in range(passes):
        h, new = tower(h, {n: t for n, t in S.items() if n.endswith(".S")})
        S = {n: t for n, t in new.items() if n.endswith(".S")}
    del h
    return S


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_sleep_equals_hand_written_loop(passes):
    tower = tiny_tower()
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    S0 = {n: 0.2 * torch.randn_like(t) for n, t in tower.initial_state(2, dtype=torch.float64).items()}
    got = tower.sleep(x, S0, passes)
    want = hand_sleep(tower, x, S0, passes)
    assert set(got) == set(want) == {"blocks.1.S", "blocks.3.S"}
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-12, atol=1e-12)


def test_sleep_passes_differ_and_ignore_caches():
    tower = tiny_tower()
    x = torch.randn(1, 10, 16, dtype=torch.float64)
    one, two = tower.sleep(x, None, 1), tower.sleep(x, None, 2)
    assert not torch.allclose(one["blocks.1.S"], two["blocks.1.S"])
    # A state fresh from wake (with caches) sleeps exactly like its S alone: caches never cross chunks.
    _, woke = tower(torch.randn(1, 4, 16, dtype=torch.float64))
    a, b = tower.sleep(x, woke, 2), tower.sleep(x, tower.long_term(woke), 2)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_sleep_chunks_chains_chunks():
    tower = tiny_tower()
    chunks = [torch.randn(1, n, 16, dtype=torch.float64) for n in (9, 4, 12)]
    seen = []
    got = tower.sleep_chunks(iter(chunks), None, 2, on_progress=seen.append)
    S = {}
    for c in chunks:
        S = hand_sleep(tower, c, S, 2)
    assert seen == [1, 2, 3]
    for name in S:
        torch.testing.assert_close(got[name], S[name], rtol=1e-12, atol=1e-12)


def test_gradient_through_sleep_reaches_slow_weights_and_start_state():
    tower = tiny_tower()
    S0 = {n: (0.1 * torch.randn_like(t)).requires_grad_() for n, t in
          tower.initial_state(2, dtype=torch.float64).items()}
    chunks = [torch.randn(2, 10, 16, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    S = tower.sleep_chunks(chunks, S0, passes=3)
    # A "day after" probe: the loss reads memory only through a wake pass from the slept S.
    h, _ = tower(torch.randn(2, 3, 16, dtype=torch.float64), S)
    h.square().mean().backward()
    for name, p in tower.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    for name, t in S0.items():
        assert t.grad is not None and t.grad.abs().sum() > 0, name
    # The chunk features enter only pass 1 (later passes read the previous pass's output), so their
    # gradient has travelled back through all three passes of their chunk.
    for chunk in chunks:
        assert chunk.grad is not None and torch.isfinite(chunk.grad).all() and chunk.grad.abs().sum() > 0


def test_sleep_gradcheck_tiny_tower():
    """Finite differences through 2 chunks x 2 passes, w.r.t. the features, the starting S and a few
    slow weights of every mixer kind."""
    tower = tiny_tower("AG", d_model=4, n_heads=2, head_k_dim=2, head_v_dim=2, window=3, chunk_size=2,
                       mlp_ratio=1.0)
    names = ["blocks.0.mixer.qkv.weight", "blocks.1.mixer.in_proj.weight", "blocks.1.mixer.A_log",
             "blocks.1.mixer.conv_weight", "blocks.1.mlp.fc.weight"]
    params = dict(tower.named_parameters())
    weights = tuple(params[n].detach().clone().requires_grad_() for n in names)
    x1 = torch.randn(1, 3, 4, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    S0 = torch.randn(1, 2, 2, 2, dtype=torch.float64, requires_grad=True)

    probe = SleepProbe(tower)

    def f(x1, x2, S0, *w):
        return functional_call(probe, {f"tower.{n}": t for n, t in zip(names, w)}, (x1, x2, S0))
    # The full Jacobian w.r.t. the features and the starting state, then random directions
    # (fast_mode) over everything including ~200 slow weights, at a fraction of the full cost.
    assert torch.autograd.gradcheck(lambda x1, x2, S0: f(x1, x2, S0, *weights), (x1, x2, S0))
    assert torch.autograd.gradcheck(f, (x1, x2, S0, *weights), fast_mode=True)


class SleepProbe(torch.nn.Module):
    """Two chunks, two passes each, as a module forward, so functional_call can swap in weights."""

    def __init__(self, tower: Tower):
        super().__init__()
        self.tower = tower

    def forward(self, x1, x2, S0):
        return self.tower.sleep_chunks([x1, x2], {"blocks.1.S": S0}, passes=2)["blocks.1.S"]


def test_checkpointed_sleep_gives_same_gradients():
    tower = tiny_tower()
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    results = []
    for use_checkpoint in (False, True):
        tower.zero_grad()
        S = tower.sleep(x, None, 3, use_checkpoint=use_checkpoint)
        sum(t.square().sum() for t in S.values()).backward()
        results.append({n: p.grad.clone() for n, p in tower.named_parameters()})
    for name in results[0]:
        torch.testing.assert_close(results[1][name], results[0][name], rtol=1e-10, atol=1e-12)


def test_mlp_free_layout():
    tower = tiny_tower("GAG", mlp_ratio=0)
    assert all(b.mlp is None for b in tower.blocks)
    S = tower.sleep(torch.randn(1, 7, 16, dtype=torch.float64), None, 2)
    assert set(S) == {"blocks.0.S", "blocks.2.S"}


def test_long_term_state_round_trips_through_safetensors(tmp_path):
    tower = tiny_tower().float()
    S = tower.sleep(torch.randn(1, 9, 16), tower.initial_state(), 2)
    save_file({n: t.contiguous() for n, t in S.items()}, tmp_path / "memory.safetensors")
    loaded = load_file(tmp_path / "memory.safetensors")
    h_a, _ = tower(torch.ones(1, 2, 16), S)
    h_b, _ = tower(torch.ones(1, 2, 16), loaded)
    torch.testing.assert_close(h_a, h_b, rtol=0, atol=0)


def test_validation():
    with pytest.raises(ValueError, match="layout"):
        TowerConfig(layout="AXG")
    with pytest.raises(ValueError, match="mlp_ratio"):
        TowerConfig(mlp_ratio=-1)
    TowerConfig(layout="GG", d_model=30, n_heads=4)  # attention's head constraints do not apply
    with pytest.raises(ValueError, match="multiple"):
        TowerConfig(layout="AG", d_model=30, n_heads=4)
    tower = tiny_tower()
    with pytest.raises(ValueError, match="passes"):
        tower.sleep(torch.randn(1, 3, 16, dtype=torch.float64), None, 0)
    with pytest.raises(ValueError, match=r"\[B, T, 16\]"):
        tower(torch.randn(3, 16, dtype=torch.float64))


@pytest.mark.parametrize("device", DEVICES)
def test_default_config_float32(device):
    tower = Tower(TowerConfig()).to(device)
    x = torch.randn(1, 70, 256, device=device)
    S = tower.sleep(x, tower.initial_state(device=device), 2)
    h, st = tower(x[:, :1], S)
    assert torch.isfinite(h).all() and all(torch.isfinite(t).all() for t in S.values())
    assert S["blocks.1.S"].dtype == torch.float32 and S["blocks.1.S"].shape == (1, 4, 64, 64)
