"""WindowAttention: streaming equals whole-sequence, the window mask matches a hand-written softmax,
positions are relative, and the cache stays bounded."""

import math

import pytest
import torch

from dreamchat.models.attention import AttentionConfig, WindowAttention, apply_rope


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def layer(window, d_model=16, n_heads=2) -> WindowAttention:
    torch.manual_seed(0)
    return WindowAttention(AttentionConfig(d_model=d_model, n_heads=n_heads, window=window)).double()


def by_hand(att: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention written out with an explicit (T, T) window mask, positions from 0."""
    B, T, _ = x.shape
    H, D = att.config.n_heads, att.head_dim
    q, k, v = att.qkv(x).view(B, T, 3, H, D).unbind(2)
    q, k = apply_rope(q, 0, att.config.rope_base), apply_rope(k, 0, att.config.rope_base)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(D)           # (B, H, T, T)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    visible = (j <= i) & (i - j < att.config.window)
    weights = scores.masked_fill(~visible, -math.inf).softmax(-1)
    y = torch.einsum("bhts,bshd->bthd", weights, v).reshape(B, T, H * D)
    return att.proj(y)


@pytest.mark.parametrize("window", [1, 3, 8, 64])
def test_whole_sequence_matches_hand_written_window(window):
    att = layer(window)
    x = torch.randn(2, 21, 16, dtype=torch.float64)
    y, _ = att(x)
    torch.testing.assert_close(y, by_hand(att, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("window", [1, 4, 9, 100])
@pytest.mark.parametrize("T", [1, 7, 25])
def test_whole_sequence_equals_token_by_token(window, T):
    att = layer(window)
    x = torch.randn(2, T, 16, dtype=torch.float64)
    y_all, st_all = att(x)
    state, ys = None, []
    for t in range(T):
        y_t, state = att(x[:, t:t + 1], state)
        assert state["k"].shape[2] <= window - 1                            # bounded cache
        ys.append(y_t)
    torch.testing.assert_close(torch.cat(ys, 1), y_all, rtol=1e-10, atol=1e-10)
    assert int(state["pos"]) == T == int(st_all["pos"])
    torch.testing.assert_close(state["k"], st_all["k"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("window", [5, 50])
def test_prefill_then_continue(window):
    """A block of tokens on top of a cache (e.g. a user turn on a running day) equals one long call."""
    att = layer(window)
    x = torch.randn(1, 30, 16, dtype=torch.float64)
    y_all, _ = att(x)
    y1, st = att(x[:, :11])
    y2, st = att(x[:, 11:], st)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_all, rtol=1e-10, atol=1e-10)


def test_causal():
    att = layer(16)
    x = torch.randn(1, 10, 16, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 6:] += 1.0
    torch.testing.assert_close(att(x)[0][:, :6], att(x2)[0][:, :6], rtol=0, atol=0)


def test_rope_is_relative():
    """The same tokens at a shifted absolute position give the same outputs (sleep restarts at 0)."""
    att = layer(32)
    x = torch.randn(1, 12, 16, dtype=torch.float64)
    y0, _ = att(x)
    y_shift, _ = att(x, {"pos": torch.tensor(1000)})
    torch.testing.assert_close(y_shift, y0, rtol=1e-9, atol=1e-9)


def test_gradient_reaches_all_parameters():
    att = layer(8)
    y, _ = att(torch.randn(2, 12, 16, dtype=torch.float64))
    y.square().sum().backward()
    for name, p in att.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_config_validation():
    with pytest.raises(ValueError, match="multiple"):
        AttentionConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="even"):
        AttentionConfig(d_model=12, n_heads=4)
    with pytest.raises(ValueError, match="window"):
        AttentionConfig(window=0)
    with pytest.raises(ValueError, match=r"\[B, T, 16\]"):
        layer(4)(torch.randn(1, 2, 8, dtype=torch.float64))


def test_rope_table_built_in_inference_mode_is_usable_for_training():
    """Wake (inference_mode) may build the cached RoPE table first; training must still backprop."""
    att = layer(8)
    with torch.inference_mode():
        att(torch.randn(1, 3, 16, dtype=torch.float64))
    y, _ = att(torch.randn(1, 5, 16, dtype=torch.float64))
    y.sum().backward()
    assert att.qkv.weight.grad is not None


def test_long_day_grows_the_rope_table():
    att = layer(4)
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    y_near, _ = att(x)
    assert att._rope_cache[0].shape[0] < 5006
    y_far, _ = att(x, {"pos": torch.tensor(5000)})
    assert att._rope_cache[0].shape[0] >= 5006
    torch.testing.assert_close(y_far, y_near, rtol=1e-8, atol=1e-8)  # relative positions only
