"""Gated DeltaNet: the fast-weight sequence mixer of the memory tower.

Per head the layer carries a matrix S (K rows, V columns; layout `STATE_LAYOUT`) and updates it with
the gated delta rule, token by token:

    S_t = alpha_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T        o_t = S_t^T q_t

alpha_t = exp(g_t) in (0, 1) forgets, beta_t in (0, 1) sets how strongly the token overwrites what S
recalls for its key. Equivalently `S_t = alpha_t S_{t-1} + k_t u_t^T` with the "new value"
`u_t = beta_t (v_t - alpha_t S_{t-1}^T k_t)`: the rule writes only the part of v_t that S does not
already predict.

Three implementations of the same maths live here:

- `gated_delta_rule_recurrent`: the float32 token loop, the reference every other path is tested against.
- `gated_delta_rule_chunked`: the chunkwise-parallel (WY / UT-transform) form used for whole sequences
  (training, sleep). Inside a chunk the T token updates collapse into a few matrix products; only the
  chunk-to-chunk state hand-over is sequential.
- `gated_delta_rule_step`: one token, for wake (the tower runs once per generated token).

`GatedDeltaNet` wraps the rule into a layer in the style of Gated DeltaNet / flash-linear-attention:
projections, a short causal depthwise convolution, L2-normalised q and k, Mamba-2 style decay, sigmoid
write strength and a gated RMSNorm on the output.
"""

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# The fast-weight state S is [batch, heads, key dim, value dim] everywhere: code, tests, file metadata.
STATE_LAYOUT = "BHKV"


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64 (gradcheck); everything else (bf16, fp16, fp32) is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _without_autocast(rule):
    """The rule accumulates one state over thousands of tokens: keep autocast's bf16 matmuls out of it
    (inputs are upcast to float32 inside instead)."""
    @functools.wraps(rule)
    def wrapper(q: Tensor, *args, **kwargs):
        with torch.autocast(device_type=q.device.type, enabled=False):
            return rule(q, *args, **kwargs)
    return wrapper


def _check_rule_inputs(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                       initial_state: Tensor | None) -> None:
    if q.dim() != 4 or q.shape != k.shape:
        raise ValueError(f"q and k must both be [B, T, H, K], got {tuple(q.shape)} and {tuple(k.shape)}")
    B, T, H, K = q.shape
    if v.dim() != 4 or v.shape[:3] != (B, T, H):
        raise ValueError(f"v must be [B, T, H, V] = [{B}, {T}, {H}, V], got {tuple(v.shape)}")
    if g.shape != (B, T, H) or beta.shape != (B, T, H):
        raise ValueError(f"g and beta must be [B, T, H] = [{B}, {T}, {H}], "
                         f"got {tuple(g.shape)} and {tuple(beta.shape)}")
    if initial_state is not None and initial_state.shape != (B, H, K, v.shape[-1]):
        raise ValueError(f"initial_state must be [B, H, K, V] = [{B}, {H}, {K}, {v.shape[-1]}] "
                         f"({STATE_LAYOUT}), got {tuple(initial_state.shape)}")


@_without_autocast
def gated_delta_rule_recurrent(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                               initial_state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The reference: a plain token loop in float32 (float64 if the inputs are float64).

    q, k: [B, T, H, K], already L2-normalised by the caller; v: [B, T, H, V];
    g: [B, T, H] log-decay (<= 0, alpha = exp(g)); beta: [B, T, H] in (0, 1);
    initial_state: [B, H, K, V] or None (zeros).
    Returns o [B, T, H, V] (in v's dtype) and the final state S [B, H, K, V] (in the compute dtype).
    S_t = alpha_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = S_t^T q_t.
    """
    _check_rule_inputs(q, k, v, g, beta, initial_state)
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt, out_dtype = _compute_dtype(q.dtype), v.dtype
    q, k, v, g, beta = (t.to(dt) for t in (q, k, v, g, beta))
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(dt)
    outputs = []
    for t in range(T):
        S = S * g[:, t].exp()[..., None, None]                          # decay: (B, H, K, V)
        recalled = torch.einsum("bhk,bhkv->bhv", k[:, t], S)            # what S predicts for k_t: (B, H, V)
        u = beta[:, t, :, None] * (v[:, t] - recalled)                  # new value: (B, H, V)
        S = S + k[:, t, :, :, None] * u[:, :, None, :]                  # rank-1 write: (B, H, K, V)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t], S))       # read: (B, H, V)
    o = torch.stack(outputs, dim=1) if T > 0 else v.new_zeros(B, 0, H, V, dtype=dt)  # (B, T, H, V)
    return o.to(out_dtype), S


def gated_delta_rule_step(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                          state: Tensor) -> tuple[Tensor, Tensor]:
    """One token of the rule, for wake. q, k: [B, H, K]; v: [B, H, V]; g, beta: [B, H];
    state: [B, H, K, V]. Returns o [B, H, V] (v's dtype) and the new state (state's dtype)."""
    out_dtype = v.dtype
    if q.dtype != state.dtype:  # wake runs with everything in the state's dtype: no conversions
        q, k, v, g, beta = (t.to(state.dtype) for t in (q, k, v, g, beta))
    S = state * g.exp().view(*g.shape, 1, 1)                                # decay: (B, H, K, V)
    k = k.unsqueeze(-1)                                                     # (B, H, K, 1)
    u = beta.unsqueeze(-1) * (v - (k * S).sum(-2))                          # new value: (B, H, V)
    S = torch.addcmul(S, k, u.unsqueeze(-2))                                # S + k u^T: (B, H, K, V)
    o = (q.unsqueeze(-1) * S).sum(-2)                                       # read S^T q: (B, H, V)
    return o.to(out_dtype), S


@_without_autocast
def gated_delta_rule_chunked(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                             initial_state: Tensor | None = None,
                             chunk_size: int = 64, outputs: bool = True) -> tuple[Tensor | None, Tensor]:
    """The same maths as `gated_delta_rule_recurrent`, chunkwise parallel (same shapes and dtypes).

    Within a chunk of C tokens, with G_r the cumulative log-decay up to token r and S_0 the state at
    the chunk start, the new values u_r = beta_r (v_r - alpha_r S_{r-1}^T k_r) solve the unit lower
    triangular system (I + A) U = beta V - diag(beta e^G) K S_0 with A_rs = beta_r e^{G_r - G_s} k_r.k_s
    (s < r). Solving once per chunk gives U = u - w S_0 (the WY / UT-transform form of
    flash-linear-attention's naive chunk kernel, with a triangular solve instead of its in-place
    loop, so autograd sees plain differentiable ops). Then
        o_r = e^{G_r} S_0^T q_r + sum_{s <= r} e^{G_r - G_s} (q_r . k_s) U_s
        S_C = e^{G_C} S_0 + sum_s e^{G_C - G_s} k_s U_s^T
    Any T works: the sequence is padded with inert tokens (k = v = 0, g = 0, beta = 0).
    `outputs=False` skips o (returned as None) for callers that keep only the final state, like the
    copy memory's sleep writes: a third of the work when K is large.
    """
    _check_rule_inputs(q, k, v, g, beta, initial_state)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt, out_dtype = _compute_dtype(q.dtype), v.dtype
    if T == 0:
        S = q.new_zeros(B, H, K, V, dtype=dt) if initial_state is None else initial_state.to(dt)
        return v.new_zeros(B, 0, H, V), S
    C = min(chunk_size, T)
    N = math.ceil(T / C)
    pad = N * C - T

    # Chunk index first, so that the sequential loop below reads contiguous slices.
    def chunks(t: Tensor) -> Tensor:  # (B, T, H, ...) -> (N, B*H, C, ...)
        t = t.to(dt)
        if pad:
            widths = [0, 0] * (t.dim() - 2) + [0, pad]                  # pad the time axis only
            t = F.pad(t, widths)                                        # (B, N*C, H, ...)
        t = t.reshape(B, N, C, H, *t.shape[3:])                         # (B, N, C, H, ...)
        t = t.transpose(2, 3).transpose(0, 1)                           # (N, B, H, C, ...)
        return t.reshape(N, B * H, C, *t.shape[4:])                     # (N, BH, C, ...)

    q, k, v = chunks(q), chunks(k), chunks(v)                           # (N, BH, C, K|V)
    g, beta = chunks(g), chunks(beta)                                   # (N, BH, C)

    G = g.cumsum(-1)                                                    # (N, BH, C)
    idx = torch.arange(C, device=q.device)
    causal = idx[:, None] >= idx[None, :]                               # (C, C): s <= r
    strict = idx[:, None] > idx[None, :]                                # (C, C): s < r
    # e^{G_r - G_s} on and below the diagonal, 0 above (masked before exp: no overflow, no NaN grads).
    decay = (G[..., :, None] - G[..., None, :]).masked_fill(~causal, -math.inf).exp()  # (N, BH, C, C)

    # Intra-chunk UT transform: solve (I + A) [u | w] = [beta v | beta e^G k] for every chunk at once.
    k_beta = k * beta[..., None]                                        # (N, BH, C, K)
    A = ((k_beta @ k.transpose(-1, -2)) * decay).masked_fill(~strict, 0.0)  # (N, BH, C, C), s < r only
    rhs = torch.cat([v * beta[..., None], k_beta * G.exp()[..., None]], dim=-1)  # (N, BH, C, V+K)
    # unitriangular: the solver takes the unit diagonal as given and never reads A's (zero) diagonal.
    uw = torch.linalg.solve_triangular(A, rhs, upper=False, unitriangular=True)
    u, w = uw.split([V, K], dim=-1)                                     # (N, BH, C, V), (N, BH, C, K)

    G_last = G[..., -1:]                                                # (N, BH, 1)
    k_decayed_t = (k * (G_last - G).exp()[..., None]).transpose(-1, -2)  # (N, BH, K, C)
    chunk_decay = G_last.exp()[..., None]                               # (N, BH, 1, 1)

    # The only sequential part: hand the state from chunk to chunk (3 small ops per chunk).
    S = q.new_zeros(B * H, K, V) if initial_state is None else initial_state.to(dt).reshape(B * H, K, V)
    starts, news = [], []
    for n in range(N):
        if outputs:
            starts.append(S)                                            # state at chunk start: (BH, K, V)
        U = torch.baddbmm(u[n], w[n], S, alpha=-1)                      # U = u - w S_0: (BH, C, V)
        S = torch.baddbmm(S * chunk_decay[n], k_decayed_t[n], U)        # (BH, K, V)
        news.append(U)
    if not outputs:
        return None, S.reshape(B, H, K, V)
    S0s = torch.stack(starts)                                           # (N, BH, K, V)
    U = torch.stack(news)                                               # (N, BH, C, V)

    # Outputs for all chunks at once: inter-chunk read of S_0 plus the causal intra-chunk part.
    qk = (q @ k.transpose(-1, -2)) * decay                              # (N, BH, C, C), causal incl. diag
    o = (q * G.exp()[..., None]) @ S0s + qk @ U                         # (N, BH, C, V)
    o = o.reshape(N, B, H, C, V).permute(1, 0, 3, 2, 4)                 # (B, N, C, H, V)
    o = o.reshape(B, N * C, H, V)[:, :T]                                # (B, T, H, V)
    return o.to(out_dtype), S.reshape(B, H, K, V)


@dataclass
class GDNConfig:
    d_model: int = 256          # width of the residual stream the layer reads and writes
    n_heads: int = 4            # independent fast-weight matrices S per layer
    head_k_dim: int = 64        # key / query width per head (rows of S)
    head_v_dim: int = 64        # value width per head (columns of S)
    conv_size: int = 4          # short causal depthwise conv on q, k, v (4 as in fla); 1 = no mixing
    chunk_size: int = 64        # chunk length of the chunkwise-parallel path (64 as in fla)
    norm_eps: float = 1e-5      # eps of the gated output RMSNorm
    dt_min: float = 0.001       # initial decay time-steps are log-uniform in [dt_min, dt_max] (Mamba-2)
    dt_max: float = 0.1         #   ... so alpha = exp(-A dt) starts between ~0.2 and ~0.999
    A_init_min: float = 1.0     # per-head decay rate A is initialised uniform in [A_init_min, A_init_max]
    A_init_max: float = 16.0    #   (Mamba-2 / fla default)

    def __post_init__(self):
        for name in ("d_model", "n_heads", "head_k_dim", "head_v_dim", "conv_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"GDNConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"GDNConfig needs 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")
        if not 0 < self.A_init_min <= self.A_init_max:
            raise ValueError(f"GDNConfig needs 0 < A_init_min <= A_init_max, "
                             f"got {self.A_init_min}, {self.A_init_max}")


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """x / rms(x) * weight over the last axis (one fused kernel where torch has F.rms_norm, >= 2.4)."""
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, weight.shape, weight, eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


class GatedRMSNorm(nn.Module):
    """RMSNorm over each head's output, multiplied by SiLU(gate) (the GDN output gate)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor, gate: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps) * F.silu(gate)


class GatedDeltaNet(nn.Module):
    """Multi-head GDN mixer: q/k/v projections + short causal depthwise conv + SiLU, L2-normalised q/k,
    learned decay alpha (Mamba-2 style A_log/dt_bias parametrisation) and write strength beta from the
    input, output gated RMSNorm (as in Gated DeltaNet / fla), output projection.

    State (caller-owned, see `forward`): {"S": [B, H, K, V], "conv": [B, conv_size - 1, C]} with
    C = 2 H K + H V the conv channels (q, k, v side by side). S is the long-term memory; "conv" is a
    streaming cache (the last conv_size - 1 projected inputs), meaningful only within one sequence.
    """

    def __init__(self, config: GDNConfig):
        super().__init__()
        self.config = config
        H, K, V = config.n_heads, config.head_k_dim, config.head_v_dim
        self.conv_dim = 2 * H * K + H * V
        # One input projection for speed (wake calls this once per token); its output splits into
        # [q (H K) | k (H K) | v (H V)] (the conv channels) | decay input a (H) | write strength b (H)
        # | output gate (H V).
        self.split = [self.conv_dim, H, H, H * V]
        self.in_proj = nn.Linear(config.d_model, sum(self.split), bias=False)
        # Depthwise causal conv over the q, k, v channels, one filter per channel: weight (conv_size, C),
        # row W-1 multiplies the current token. Initialised like nn.Conv1d (uniform, bound 1/sqrt(W)).
        bound = 1.0 / math.sqrt(config.conv_size)
        self.conv_weight = nn.Parameter(torch.empty(config.conv_size, self.conv_dim).uniform_(-bound, bound))
        # alpha_t = exp(g_t), g_t = -exp(A_log) * softplus(a_t + dt_bias): always in (0, 1).
        A = torch.empty(H).uniform_(config.A_init_min, config.A_init_max)
        self.A_log = nn.Parameter(A.log())
        dt = torch.exp(torch.rand(H) * (math.log(config.dt_max) - math.log(config.dt_min))
                       + math.log(config.dt_min))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus of dt
        self.A_log._no_weight_decay = True
        self.dt_bias._no_weight_decay = True
        self.o_norm = GatedRMSNorm(V, config.norm_eps)
        self.o_proj = nn.Linear(H * V, config.d_model, bias=False)

    def empty_state(self, batch: int = 1, device=None, dtype=None) -> dict[str, Tensor]:
        """Zero S and an empty-history conv cache."""
        c = self.config
        return {"S": torch.zeros(batch, c.n_heads, c.head_k_dim, c.head_v_dim, device=device, dtype=dtype),
                "conv": torch.zeros(batch, c.conv_size - 1, self.conv_dim, device=device, dtype=dtype)}

    def _conv(self, x: Tensor, cache: Tensor | None) -> tuple[Tensor, Tensor]:
        """Causal depthwise conv + SiLU. x: (B, T, C); cache: (B, W-1, C) or None (zero history)."""
        B, T, C = x.shape
        W = self.config.conv_size
        if cache is None:
            cache = x.new_zeros(B, W - 1, C)
        xc = torch.cat([cache, x], dim=1)                                  # (B, W-1+T, C)
        new_cache = xc[:, xc.shape[1] - (W - 1):]                          # (B, W-1, C)
        if T == 1:  # wake: one dot product per channel
            y = (xc * self.conv_weight).sum(1, keepdim=True)               # (B, 1, C)
        else:
            # W shifted multiply-adds: as fast as conv1d for W = 4 in float32, and it avoids
            # conv1d's very slow grouped fallback in float64 (gradcheck).
            y = xc[:, :T] * self.conv_weight[0]                            # (B, T, C)
            for w in range(1, W):
                y = torch.addcmul(y, xc[:, w:w + T], self.conv_weight[w])  # (B, T, C)
        return F.silu(y), new_cache

    def project(self, x: Tensor, conv: Tensor | None = None) -> tuple[Tensor, ...]:
        """The rule's inputs for x (B, T, d_model): q, k (B, T, H, K) unit-norm, v (B, T, H, V),
        g (B, T, H) < 0, beta (B, T, H) in (0, 1), the output gate (B, T, H, V) and the new conv cache."""
        c = self.config
        B, T, _ = x.shape
        H, K, V = c.n_heads, c.head_k_dim, c.head_v_dim
        qkv, a, b, gate = self.in_proj(x).split(self.split, dim=-1)
        qkv, conv = self._conv(qkv, conv)                                  # (B, T, C)
        qk, v = qkv.split([2 * H * K, H * V], dim=-1)
        qk = F.normalize(qk.view(B, T, 2 * H, K), dim=-1, eps=1e-6)        # (B, T, 2H, K)
        q, k = qk.split(H, dim=2)                                          # each (B, T, H, K)
        v = v.view(B, T, H, V)                                             # (B, T, H, V)
        g = -self.A_log.exp() * F.softplus(a + self.dt_bias)               # (B, T, H), < 0
        beta = torch.sigmoid(b)                                            # (B, T, H), in (0, 1)
        return q, k, v, g, beta, gate.view(B, T, H, V), conv

    def forward(self, x: Tensor, state: dict | None = None) -> tuple[Tensor, dict]:
        """x [B, T, d_model]; state = {"S": [B,H,K,V], "conv": [B, conv_size-1, C] or absent} or None.
        Returns (y [B, T, d_model], {"S": ..., "conv": ...}). T == 1 takes the single-token step path
        (wake, token by token); longer inputs take the chunked path."""
        c = self.config
        if x.dim() != 3 or x.shape[-1] != c.d_model:
            raise ValueError(f"GatedDeltaNet expects x of shape [B, T, {c.d_model}], got {tuple(x.shape)}")
        B, T, _ = x.shape
        H, K, V = c.n_heads, c.head_k_dim, c.head_v_dim
        state = state or {}
        S = state.get("S")
        if S is not None and S.shape != (B, H, K, V):
            raise ValueError(f"state['S'] must be [B, H, K, V] = [{B}, {H}, {K}, {V}] ({STATE_LAYOUT}), "
                             f"got {tuple(S.shape)}")

        q, k, v, g, beta, gate, conv = self.project(x, state.get("conv"))
        if T == 1:
            if S is None:
                S = x.new_zeros(B, H, K, V, dtype=_compute_dtype(x.dtype))
            o, S = gated_delta_rule_step(q[:, 0], k[:, 0], v[:, 0], g[:, 0], beta[:, 0], S)
            o = o.unsqueeze(1)                                             # (B, 1, H, V)
        else:
            o, S = gated_delta_rule_chunked(q, k, v, g, beta, S, chunk_size=c.chunk_size)
        o = self.o_norm(o, gate)                                           # (B, T, H, V)
        y = self.o_proj(o.reshape(B, T, H * V))                            # (B, T, d_model)
        return y, {"S": S, "conv": conv}
