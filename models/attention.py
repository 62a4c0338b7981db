"""Window-local causal softmax attention: the short-term memory of the tower.

Each query sees itself and at most `window - 1` earlier tokens. In sleep (Algorithm 1) the caller
passes no state, so attention covers exactly the current chunk and is rebuilt from scratch on every
pass; nothing of it crosses a chunk boundary (hard eviction). In wake the caller streams tokens one by
one and keeps the window's keys and values in the state.

Positions: rotary embeddings (RoPE). Sleep replays a chunk from position 0 on every pass while wake
keeps counting, and what a query should care about is how far back a key is (the Rule 110 task needs
"the cell next to me" exactly), so a relative encoding fits; RoPE gives that with no parameters, costs
a few elementwise ops per step, and cached keys stay valid because they are stored already rotated. A
position-free layer (NoPE) would have to infer distance from the causal mask alone, which is weak for
short windows like the paper's L = 24.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


@dataclass
class AttentionConfig:
    d_model: int = 256          # width of the residual stream
    n_heads: int = 4            # attention heads; head dim = d_model // n_heads (must be even for RoPE)
    window: int = 512           # a query sees itself and up to window - 1 earlier tokens (= a whole chunk
                                #   of `window` tokens in sleep; the wake cache holds window - 1)
    rope_base: float = 10000.0  # RoPE frequency base (as in Llama / GPT-NeoX)

    def __post_init__(self):
        if self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(f"AttentionConfig: d_model ({self.d_model}) must be a multiple of "
                             f"n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"AttentionConfig: head dim d_model / n_heads = {self.d_model // self.n_heads} "
                             f"must be even for rotary embeddings; change d_model or n_heads")
        if self.window < 1:
            raise ValueError(f"AttentionConfig.window must be >= 1, got {self.window}")


def rope_tables(start: int, T: int, dim: int, base: float, device, dtype) -> tuple[Tensor, Tensor]:
    """cos and sin (T, dim/2) of the rotary angles for positions start .. start+T-1. Computed in
    float64 on the CPU (exact angles even a long day in; not every accelerator has float64)."""
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)              # (D/2,)
    pos = torch.arange(start, start + T, dtype=torch.float64)                             # (T,)
    angles = pos[:, None] * inv_freq[None, :]                                             # (T, D/2)
    return angles.cos().to(device, dtype), angles.sin().to(device, dtype)


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., D) by angles whose cos / sin broadcast to (..., D/2) (GPT-NeoX half split)."""
    x1, x2 = x.chunk(2, dim=-1)                                                           # (..., D/2)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)                  # (..., D)


def apply_rope(x: Tensor, start: int, base: float) -> Tensor:
    """Rotate x (B, T, H, D) by its absolute positions start .. start+T-1."""
    cos, sin = rope_tables(start, x.shape[1], x.shape[-1], base, x.device, x.dtype)       # (T, D/2)
    return rotate(x, cos[:, None], sin[:, None])                                          # (B, T, H, D)


class WindowAttention(nn.Module):
    """Causal softmax attention over a sliding window, with an explicit caller-owned state.

    state = {"k": (B, H, L, D), "v": (B, H, L, D), "pos": () int64} with L <= window - 1 the cached
    (already rotated) keys and values of the most recent tokens and "pos" the absolute position of the
    next token. None or {} means "start of a sequence". All three are streaming caches: the tower
    never saves them as long-term memory.
    """

    def __init__(self, config: AttentionConfig):
        super().__init__()
        self.config = config
        self.head_dim = config.d_model // config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self._rope_cache: tuple[Tensor, Tensor] | None = None  # cos, sin for positions 0 .. n-1

    def _rope(self, start: int, T: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """cos, sin (T, 1, 1, D/2) for positions start .. start+T-1, sliced from a table that doubles
        when a long day outgrows it (a wake step then costs two slices instead of six kernels)."""
        cache = self._rope_cache
        if (cache is None or cache[0].shape[0] < start + T or cache[0].device != like.device
                or cache[0].dtype != like.dtype):
            size = max(2 * (start + T), 2 * self.config.window, 64)
            # Plain tensors even when first built under inference_mode (wake), so training can reuse them.
            with torch.inference_mode(False), torch.no_grad():
                cache = rope_tables(0, size, self.head_dim, self.config.rope_base, like.device, like.dtype)
            self._rope_cache = cache
        cos, sin = cache[0][start:start + T], cache[1][start:start + T]                   # (T, D/2)
        return cos[:, None, None], sin[:, None, None]                                     # (T, 1, 1, D/2)

    def forward(self, x: Tensor, state: dict | None = None) -> tuple[Tensor, dict]:
        """x [B, T, d_model] -> (y [B, T, d_model], new state)."""
        c = self.config
        if x.dim() != 3 or x.shape[-1] != c.d_model:
            raise ValueError(f"WindowAttention expects x of shape [B, T, {c.d_model}], got {tuple(x.shape)}")
        B, T, _ = x.shape
        H, D = c.n_heads, self.head_dim
        state = state or {}
        start = int(state["pos"]) if "pos" in state else 0

        qkv = self.qkv(x).view(B, T, 3, H, D)                              # (B, T, 3, H, D)
        qk = rotate(qkv[:, :, :2], *self._rope(start, T, x))               # (B, T, 2, H, D)
        q, k = qk.transpose(1, 3).unbind(2)                                # each (B, H, T, D)
        v = qkv[:, :, 2].transpose(1, 2)                                   # (B, H, T, D)
        if "k" in state:
            k = torch.cat([state["k"], k], dim=2)                          # (B, H, L+T, D)
            v = torch.cat([state["v"], v], dim=2)
        past = k.shape[2] - T

        if T == 1 and past <= c.window - 1:
            y = F.scaled_dot_product_attention(q, k, v)                    # the cache is the window
        elif past == 0 and T <= c.window:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)    # plain causal
        else:
            q_pos = torch.arange(past, past + T, device=x.device)[:, None]  # (T, 1)
            k_pos = torch.arange(past + T, device=x.device)[None, :]        # (1, L+T)
            allowed = (k_pos <= q_pos) & (q_pos - k_pos < c.window)         # (T, L+T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        y = y.transpose(1, 2).reshape(B, T, H * D)                          # (B, T, d_model)

        first = max(0, k.shape[2] - (c.window - 1))                         # keep the last window-1
        new_state = {"k": k[:, :, first:], "v": v[:, :, first:],            # (B, H, <=window-1, D)
                     "pos": torch.tensor(start + T, dtype=torch.long)}
        return self.proj(y), new_state
