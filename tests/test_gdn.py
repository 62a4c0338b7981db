"""Gated DeltaNet: the chunked path and the wake step against the recurrent reference, the reference
against the textbook matrix form, and the GatedDeltaNet layer's streaming and gate ranges."""

import pytest
import torch
import torch.nn.functional as F

from dreamchat.models.gdn import (
    STATE_LAYOUT, GatedDeltaNet, GDNConfig, gated_delta_rule_chunked, gated_delta_rule_recurrent,
    gated_delta_rule_step,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_inputs(B, T, H, K, V, dtype=torch.float64, seed=0, device="cpu", decay_scale=1.0):
    """Random rule inputs in their documented ranges, all requiring grad (leaf tensors)."""
    gen = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(B, T, H, K, generator=gen, dtype=dtype), dim=-1)
    k = F.normalize(torch.randn(B, T, H, K, generator=gen, dtype=dtype), dim=-1)
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    g = F.logsigmoid(torch.randn(B, T, H, generator=gen, dtype=dtype) + 2) * decay_scale  # <= 0
    beta = torch.sigmoid(torch.randn(B, T, H, generator=gen, dtype=dtype))
    S0 = 0.5 * torch.randn(B, H, K, V, generator=gen, dtype=dtype)
    return [t.to(device).requires_grad_() for t in (q, k, v, g, beta, S0)]


def matrix_form(q, k, v, g, beta, S0):
    """The rule exactly as written in the docs, with an explicit K x K matrix per step (an oracle
    that shares no code with the module)."""
    B, T, H, K = q.shape
    S = S0
    eye = torch.eye(K, dtype=q.dtype)
    outs = []
    for t in range(T):
        kt, vt = k[:, t], v[:, t]                                           # (B, H, K), (B, H, V)
        a, b = g[:, t].exp()[..., None, None], beta[:, t][..., None, None]  # (B, H, 1, 1)
        S = a * (eye - b * kt[..., :, None] * kt[..., None, :]) @ S + b * kt[..., :, None] * vt[..., None, :]
        outs.append((S.transpose(-1, -2) @ q[:, t, ..., None])[..., 0])    # S^T q: (B, H, V)
    return torch.stack(outs, 1), S


def grads(out, S, inputs, seed=1):
    """Gradients of a random linear functional of (out, S) with respect to every input."""
    gen = torch.Generator().manual_seed(seed)
    w_o = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    w_S = torch.randn(S.shape, generator=gen, dtype=S.dtype).to(S.device)
    loss = (out * w_o).sum() + (S * w_S).sum()
    return torch.autograd.grad(loss, inputs)


def test_state_layout_constant():
    assert STATE_LAYOUT == "BHKV"


def test_reference_matches_matrix_form():
    inputs = make_inputs(2, 9, 3, 5, 4)
    o_ref, S_ref = gated_delta_rule_recurrent(*inputs)
    o_mat, S_mat = matrix_form(*inputs)
    torch.testing.assert_close(o_ref, o_mat, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(S_ref, S_mat, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T", [1, 7, 63, 64, 65, 130])
@pytest.mark.parametrize("H,K,V", [(1, 8, 8), (2, 16, 8), (3, 4, 12)])
def test_chunked_matches_recurrent_float64(T, H, K, V):
    inputs = make_inputs(2, T, H, K, V, seed=T * 31 + H)
    o_ref, S_ref = gated_delta_rule_recurrent(*inputs)
    o_chk, S_chk = gated_delta_rule_chunked(*inputs, chunk_size=64)
    torch.testing.assert_close(o_chk, o_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(S_chk, S_ref, rtol=1e-10, atol=1e-10)
    names = ["q", "k", "v", "g", "beta", "initial_state"]
    for name, gr, gc in zip(names, grads(o_ref, S_ref, inputs), grads(o_chk, S_chk, inputs)):
        torch.testing.assert_close(gc, gr, rtol=1e-9, atol=1e-9, msg=f"gradient of {name} differs")


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 200])
def test_chunked_any_chunk_size(chunk_size):
    inputs = make_inputs(1, 37, 2, 6, 3)
    o_ref, S_ref = gated_delta_rule_recurrent(*inputs)
    o_chk, S_chk = gated_delta_rule_chunked(*inputs, chunk_size=chunk_size)
    torch.testing.assert_close(o_chk, o_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(S_chk, S_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("T", [1, 64, 130])
def test_chunked_state_only_matches_recurrent_state_and_its_gradients(T):
    """outputs=False (the copy memory's sleep writes) returns no o and the same final state, with
    the same gradients into k, v, g, beta and the initial state."""
    inputs = make_inputs(2, T, 2, 6, 5, seed=T)
    _, S_ref = gated_delta_rule_recurrent(*inputs)
    o, S_chk = gated_delta_rule_chunked(*inputs, outputs=False)
    assert o is None
    torch.testing.assert_close(S_chk, S_ref, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(S_ref)
    g_ref = torch.autograd.grad((S_ref * w).sum(), inputs[1:], retain_graph=True)
    g_chk = torch.autograd.grad((S_chk * w).sum(), inputs[1:])
    for name, gr, gc in zip(["k", "v", "g", "beta", "initial_state"], g_ref, g_chk):
        torch.testing.assert_close(gc, gr, rtol=1e-9, atol=1e-9, msg=f"gradient of {name} differs")


@pytest.mark.parametrize("device", DEVICES)
def test_chunked_matches_recurrent_float32(device):
    inputs = make_inputs(2, 130, 4, 32, 16, dtype=torch.float32, device=device)
    o_ref, S_ref = gated_delta_rule_recurrent(*inputs)
    o_chk, S_chk = gated_delta_rule_chunked(*inputs)
    assert o_chk.dtype == S_chk.dtype == torch.float32
    torch.testing.assert_close(o_chk, o_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(S_chk, S_ref, rtol=1e-4, atol=1e-4)
    for gr, gc in zip(grads(o_ref, S_ref, inputs), grads(o_chk, S_chk, inputs)):
        torch.testing.assert_close(gc, gr, rtol=1e-3, atol=1e-3)


def test_low_precision_inputs_compute_in_float32():
    q, k, v, g, beta, S0 = (t.detach() for t in make_inputs(1, 20, 2, 8, 8, dtype=torch.float32))
    o_ref, S_ref = gated_delta_rule_recurrent(q, k, v, g, beta, S0)
    for rule in (gated_delta_rule_recurrent, gated_delta_rule_chunked):
        o, S = rule(*(t.bfloat16() for t in (q, k, v, g, beta)), S0)
        assert o.dtype == torch.bfloat16 and S.dtype == torch.float32
        torch.testing.assert_close(o.float(), o_ref, rtol=0.05, atol=0.05)


def test_chunked_ignores_autocast():
    """Under bf16 autocast (mixed-precision training) the rule still accumulates in float32."""
    q, k, v, g, beta, S0 = (t.detach().float() for t in make_inputs(1, 100, 2, 16, 16))
    o_ref, S_ref = gated_delta_rule_chunked(q, k, v, g, beta, S0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        o, S = gated_delta_rule_chunked(q, k, v, g, beta, S0)
    assert o.dtype == S.dtype == torch.float32
    torch.testing.assert_close(o, o_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(S, S_ref, rtol=1e-6, atol=1e-6)


def test_no_initial_state_means_zeros():
    q, k, v, g, beta, S0 = make_inputs(2, 19, 2, 4, 4)
    zeros = torch.zeros_like(S0)
    for rule in (gated_delta_rule_recurrent, gated_delta_rule_chunked):
        o_none, S_none = rule(q, k, v, g, beta)
        o_zero, S_zero = rule(q, k, v, g, beta, zeros)
        torch.testing.assert_close(o_none, o_zero, rtol=0, atol=0)
        torch.testing.assert_close(S_none, S_zero, rtol=0, atol=0)


def test_strong_decay_stays_finite():
    """Hundreds of nats of cumulative decay inside one chunk must not overflow (exp of G_r - G_s is
    masked before exponentiation) nor poison gradients with NaN."""
    inputs = make_inputs(1, 130, 2, 8, 8, decay_scale=300.0)
    o_ref, S_ref = gated_delta_rule_recurrent(*inputs)
    o_chk, S_chk = gated_delta_rule_chunked(*inputs)
    torch.testing.assert_close(o_chk, o_ref, rtol=1e-9, atol=1e-9)
    for gr, gc in zip(grads(o_ref, S_ref, inputs), grads(o_chk, S_chk, inputs)):
        assert torch.isfinite(gc).all()
        torch.testing.assert_close(gc, gr, rtol=1e-8, atol=1e-8)


def test_chunked_gradcheck():
    inputs = make_inputs(1, 6, 2, 3, 2)
    assert torch.autograd.gradcheck(lambda *a: gated_delta_rule_chunked(*a, chunk_size=4), inputs)


@pytest.mark.parametrize("H,K,V", [(1, 4, 4), (3, 8, 5)])
def test_step_matches_reference(H, K, V):
    q, k, v, g, beta, S0 = make_inputs(2, 11, H, K, V)
    o_ref, S_ref = gated_delta_rule_recurrent(q, k, v, g, beta, S0)
    S = S0
    for t in range(q.shape[1]):
        o_t, S = gated_delta_rule_step(q[:, t], k[:, t], v[:, t], g[:, t], beta[:, t], S)
        torch.testing.assert_close(o_t, o_ref[:, t], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(S, S_ref, rtol=1e-12, atol=1e-12)


def test_rule_rejects_bad_shapes():
    q, k, v, g, beta, S0 = (t.detach() for t in make_inputs(1, 4, 2, 3, 5))
    with pytest.raises(ValueError, match="initial_state"):
        gated_delta_rule_chunked(q, k, v, g, beta, S0.transpose(-1, -2))
    with pytest.raises(ValueError, match="g and beta"):
        gated_delta_rule_recurrent(q, k, v, g[..., :1], beta)
    with pytest.raises(ValueError, match="chunk_size"):
        gated_delta_rule_chunked(q, k, v, g, beta, chunk_size=0)


# --- the layer --------------------------------------------------------------------------------------

def small_layer(**overrides) -> GatedDeltaNet:
    torch.manual_seed(0)
    cfg = dict(d_model=24, n_heads=2, head_k_dim=8, head_v_dim=6, conv_size=4, chunk_size=8)
    return GatedDeltaNet(GDNConfig(**{**cfg, **overrides})).double()


def test_layer_gates_in_range():
    layer = small_layer()
    x = 3 * torch.randn(2, 40, 24, dtype=torch.float64)
    q, k, v, g, beta, gate, conv = layer.project(x)
    assert (g < 0).all() and (g.exp() > 0).all() and (g.exp() < 1).all()
    assert ((beta > 0) & (beta < 1)).all()
    torch.testing.assert_close(q.norm(dim=-1), torch.ones_like(q[..., 0]))
    torch.testing.assert_close(k.norm(dim=-1), torch.ones_like(k[..., 0]))
    assert conv.shape == (2, 3, layer.conv_dim)
    # At initialisation alpha spans the Mamba-2 range (~0.2 .. 0.999 for dt in [1e-3, 0.1], A in [1, 16]).
    x0 = torch.zeros(1, 1, 24, dtype=torch.float64)
    alpha0 = layer.project(x0)[3].exp()
    assert ((alpha0 > 0.19) & (alpha0 < 0.9999)).all()


@pytest.mark.parametrize("T", [1, 7, 20])
@pytest.mark.parametrize("conv_size", [1, 4])
def test_layer_whole_sequence_equals_token_by_token(T, conv_size):
    layer = small_layer(conv_size=conv_size)
    x = torch.randn(2, T, 24, dtype=torch.float64)
    S0 = 0.3 * torch.randn(2, 2, 8, 6, dtype=torch.float64)
    y_all, st_all = layer(x, {"S": S0})
    state, ys = {"S": S0}, []
    for t in range(T):
        y_t, state = layer(x[:, t:t + 1], state)
        ys.append(y_t)
    torch.testing.assert_close(torch.cat(ys, 1), y_all, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state["S"], st_all["S"], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state["conv"], st_all["conv"], rtol=1e-12, atol=1e-12)


def test_layer_split_sequence_carries_conv_cache():
    layer = small_layer()
    x = torch.randn(1, 30, 24, dtype=torch.float64)
    y_all, st_all = layer(x)
    y1, st = layer(x[:, :13])
    y2, st = layer(x[:, 13:], st)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_all, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(st["S"], st_all["S"], rtol=1e-10, atol=1e-10)


def test_layer_gradcheck_through_state():
    layer = small_layer(d_model=6, head_k_dim=3, head_v_dim=2, chunk_size=4)
    x = torch.randn(1, 6, 6, dtype=torch.float64, requires_grad=True)
    S0 = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)

    def f(x, S0):
        y, st = layer(x, {"S": S0})
        return y, st["S"]
    assert torch.autograd.gradcheck(f, (x, S0))


def test_layer_parameters_all_receive_gradient():
    layer = small_layer()
    y, st = layer(torch.randn(2, 17, 24, dtype=torch.float64))
    (y.square().sum() + st["S"].square().sum()).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_layer_rejects_bad_input():
    layer = small_layer()
    with pytest.raises(ValueError, match=r"\[B, T, 24\]"):
        layer(torch.randn(1, 3, 23, dtype=torch.float64))
    with pytest.raises(ValueError, match="state\\['S'\\]"):
        layer(torch.randn(1, 3, 24, dtype=torch.float64), {"S": torch.zeros(1, 2, 6, 8)})
    with pytest.raises(ValueError, match="conv_size"):
        GDNConfig(conv_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_layer_runs_on_cuda():
    layer = small_layer().float().cuda()
    x = torch.randn(2, 70, 24, device="cuda")
    y, st = layer(x)
    y_cpu, st_cpu = layer.cpu()(x.cpu())
    torch.testing.assert_close(y.cpu(), y_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(st["S"].cpu(), st_cpu["S"], rtol=1e-4, atol=1e-4)
