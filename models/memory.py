"""The memory side of the hybrid: a GDN tower plus a copy memory, fused into the backbone's logits.

The backbone (llama.cpp, frozen) gives, for every token t, its final normed hidden state h_t. The
memory model reads (h_t, token_t) and carries fast weights that persist across days:

- **Tower** (`models/tower.py`): a small stack of Gated DeltaNet blocks over learned projections of
  [rms(h_t); e(token_t)]. Its per-block states S are long-term memory; its features refine the copy
  memory's keys from pass to pass during sleep and drive the gate and the answer wording at wake.
- **Copy memory**: one more gated-delta-rule matrix per head, S_copy [1, H, K, Vc]. During sleep
  the value written at position t is the frozen, unit-normalised backbone embedding of the *next*
  token e(x_{t+1}) (seen through a fixed random orthogonal projection to Vc = 128 dimensions) (the whole day is replayed, so it is known); the key comes from a short
  non-causal convolution over the tower's features (sleep may look a few tokens forward). At wake a
  causal convolution gives the query, S_copy^T q is read back through the same unit-normalised
  embedding matrix, so recall works for words never seen in training (values are the backbone's
  own embeddings, not learned vectors). Which vocabulary ids were ever written is kept in the state
  ("copy.written"), so the wake bias is computed only over those ids.
- **Fusion**: logits_t = z_t + g_t * (s * E_hat[written] . read_t + E_hat[wording] . W_o f_t), with
  g_t a learned gate (trained to stay shut on text the memory knows nothing about), s a learned
  scale, and a small learned wording path over a fixed set of reply-template tokens (so the answer
  starts the way the stored fact is phrased back, e.g. "Your cat is called ...").

Sleep is Algorithm 1 of the paper, chunk after chunk: every pass starts from the S left by the
previous pass and reads the previous pass's features; features are dropped after the last pass.
The copy memory is written once per pass with that pass's keys (values stay the next-token
embeddings); at wake it is read-only (the day itself is in the backbone's KV cache), while the
tower's GDN states keep their single-pass updates in a scratch copy (`WakeSession`, in
`models/wake.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dreamchat.errors import DreamchatError, ModelError
from dreamchat.models.gdn import STATE_LAYOUT, gated_delta_rule_chunked
from dreamchat.models.tower import Tower, TowerConfig

if TYPE_CHECKING:
    from dreamchat.models.wake import WakeSession

log = logging.getLogger(__name__)

FORMAT_NAME = "dreamchat-memory"
READS_MEMORIES_OF = "reads_memories_of"   # metadata: JSON list of weights fingerprints, see MemoryModel
FORMAT_VERSION = 1
COPY_STATE = "copy.S"            # [1, H, copy_state_dim, V] (STATE_LAYOUT), the copy memory
COPY_WRITTEN = "copy.written"    # [1, n_vocab] uint8, 1 where a token was ever written as a value
TOWER_PREFIX = "tower."          # tower states are stored as "tower.<name>"
VALUE_POINTER_DIM = 16           # width of `CopyMemory.value_shares`' pointer query and key
VALUE_POINTER_SCALE = 8.0        # its cosines times this: a softmax that can pick one of the window


class ConsolidationCancelled(DreamchatError):
    """`should_stop()` asked consolidation to stop; the memory state was left untouched."""

    def __init__(self):
        super().__init__("sleep was cancelled before it finished; memory is unchanged, run /sleep again")


# field -> the value that reproduces models made before the field existed
LATER_FIELDS = {"copy_hidden": False, "copy_key_power": 1, "value_window": 0}


@dataclass
class MemoryConfig:
    n_embd: int = 576            # backbone hidden / embedding width (SmolLM2-135M: 576)
    n_vocab: int = 49152         # backbone vocabulary size (SmolLM2: 49152)
    d_model: int = 128           # tower width
    n_heads: int = 2             # heads per tower GDN block
    head_dim: int = 32           # key = value width per tower head
    copy_heads: int = 4          # heads of the copy memory (independent S_copy matrices)
    copy_key_dim: int = 32       # key / query width per copy head (rows of S_copy)
    copy_value_dim: int = 128    # values = unit embeddings through a fixed orthogonal n_embd -> this
                                 #   projection (JL-style; cosines of distinct tokens stay small), 4.5x
                                 #   cheaper than full width; 0 = the full n_embd
    key_window: int = 3          # sleep keys see this many tokens back and forward (non-causal conv)
    query_window: int = 3        # wake queries see this many tokens back (causal conv)
    tower_layout: str = "GG"     # tower blocks (A = window attention, G = Gated DeltaNet)
    mlp_ratio: float = 2.0       # tower MLP width / d_model
    n_wording: int = 256         # size of the wording vocabulary (reply-template tokens, distinct ids)
    copy_decay_init: float = 1e-4  # initial per-token forgetting of the copy memory (alpha ~ 1 - this)
    gate_bias_init: float = -4.0   # the gate starts shut: sigmoid(-4) ~ 0.018
    copy_scale_init: float = 10.0  # initial logit scale of a perfect copy read (cosine 1)
    copy_hidden: bool = False    # keys and queries also read rms(h) through one shared projection
    copy_key_power: int = 1      # 2: the copy memory stores keys as k (x) k, so a query matches a key
                                 #   by (k.q)^2: sharper, and room for K (K + 1) / 2 nearly orthogonal keys
    value_window: int = 0        # > 0: each position also writes a learned share of the tokens up to
                                 #   this many back (`CopyMemory.value_shares`), so a value stated before
                                 #   what it names ("Einstein - that's my tortoise") can be written
                                 #   under the key that sees the name; 0 = only the next token

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int) and v < (0 if f.name.endswith("window") else 1):
                raise ValueError(f"MemoryConfig.{f.name} must be positive, got {v}")
        if self.copy_key_power not in (1, 2):
            raise ValueError(f"MemoryConfig.copy_key_power must be 1 or 2, got {self.copy_key_power}")

    @property
    def copy_state_dim(self) -> int:
        """Rows of each copy head's matrix S_copy: the width of the keys it stores (k, or the
        upper triangle of k (x) k)."""
        K = self.copy_key_dim
        return K if self.copy_key_power == 1 else K * (K + 1) // 2

    def to_json(self) -> str:
        # Fields added after weights were shipped are written only when they change the model, so
        # older weights keep their fingerprint (and users' snapshots stay loadable).
        data = {k: v for k, v in asdict(self).items() if LATER_FIELDS.get(k, object()) != v}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "MemoryConfig":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown MemoryConfig fields {sorted(unknown)}")
        return cls(**data)


@dataclass
class SparseBias:
    """Add `values` to the backbone's logits at `ids` (int64 / float32, same length)."""
    ids: np.ndarray
    values: np.ndarray

    def apply(self, logits: np.ndarray) -> np.ndarray:
        out = np.array(logits, dtype=np.float32, copy=True)
        out[self.ids] += self.values
        return out


def shifted(x: Tensor, i: int) -> Tensor:
    """x [B, T, ...] moved i positions later along T, zeros (False) in the first i."""
    return F.pad(x, (0, 0) * (x.dim() - 2) + (i, 0))[:, :x.shape[1]]


def rms_norm(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def unit_embeddings(embeddings: np.ndarray | Tensor) -> Tensor:
    """Rows scaled to unit L2 norm, float32: the copy memory's value and read-out vectors."""
    E = torch.as_tensor(np.asarray(embeddings, dtype=np.float32)) if not torch.is_tensor(embeddings) \
        else embeddings.float()
    return F.normalize(E, dim=-1, eps=1e-6)


class CopyMemory(nn.Module):
    """Keys, queries, write strength and decay of the copy memory; the values are not learned.

    Keys: a projection of the tower features followed by a depthwise conv that sees `key_window`
    tokens on both sides (sleep replays the whole chunk, so looking ahead is allowed: in
    "Pickle is what I call my cat" the position before "Pickle" can see "call"). Queries: the same
    kind of conv, causal, since at wake the future is unknown.

    With `copy_hidden`, keys and queries also add one shared projection of the backbone's own
    hidden state rms(h). The backbone was pretrained on far more text than the tower sees, so "my
    cat is called" and "your cat is called" lie close in h whatever the phrasing; sharing the
    projection between keys and queries makes that closeness a match. It starts at zero (the model
    computes what it did without it) and learns from there.
    """

    def __init__(self, c: MemoryConfig):
        super().__init__()
        self.c = c
        HK = c.copy_heads * c.copy_key_dim
        self.key_proj = nn.Linear(c.d_model, HK, bias=False)
        self.query_proj = nn.Linear(c.d_model, HK, bias=False)
        self.key_conv = nn.Parameter(self._conv_init(HK, 2 * c.key_window + 1, centre=c.key_window))
        self.query_conv = nn.Parameter(self._conv_init(HK, c.query_window + 1, centre=c.query_window))
        if c.copy_hidden:
            self.hidden_proj = nn.Linear(c.n_embd, HK, bias=False)
            nn.init.zeros_(self.hidden_proj.weight)
        if c.copy_key_power == 2:  # `lift`'s upper triangle of k (x) k; derived, never saved
            i, j = torch.triu_indices(c.copy_key_dim, c.copy_key_dim)
            self.register_buffer("lift_i", i, persistent=False)
            self.register_buffer("lift_j", j, persistent=False)
            self.register_buffer("lift_weight", torch.where(i == j, 1.0, math.sqrt(2.0)), persistent=False)
        if c.value_window:  # `value_amount` starts at zero: the model writes exactly what it did without it
            self.value_query = nn.Linear(c.d_model, VALUE_POINTER_DIM, bias=False)
            self.value_key = nn.Linear(c.d_model, VALUE_POINTER_DIM, bias=False)
            self.value_bias = nn.Parameter(torch.zeros(c.value_window))    # a prior over how far back
            self.value_gate = nn.Linear(c.d_model, 1)                      # which positions share at all
            nn.init.zeros_(self.value_gate.weight)
            self.value_amount = nn.Parameter(torch.zeros(()))
        self.beta_proj = nn.Linear(c.d_model, c.copy_heads)          # write strength
        self.decay_proj = nn.Linear(c.d_model, c.copy_heads)         # per-token forgetting
        nn.init.zeros_(self.decay_proj.weight)
        # g = -softplus(decay_proj(f)) * 1, softplus^-1(copy_decay_init) as the bias: alpha ~ 1 - init
        nn.init.constant_(self.decay_proj.bias, math.log(math.expm1(c.copy_decay_init)))

    @staticmethod
    def _conv_init(channels: int, width: int, centre: int) -> Tensor:
        w = torch.randn(channels, 1, width) * (0.3 / math.sqrt(width))
        w[:, 0, centre] += 1.0                                       # start close to "this token"
        return w

    def project(self, proj: nn.Linear, f: Tensor, h: Tensor | None) -> Tensor:
        """proj(f) [+ hidden_proj(h)] -> (B, HK, T); h = rms(hidden) [B, T, n_embd]."""
        x = proj(f)
        if self.c.copy_hidden:
            x = x + self.hidden_proj(h)
        return x.transpose(1, 2)

    def keys(self, f: Tensor, h: Tensor | None = None) -> Tensor:
        """f [B, T, d] (h [B, T, n_embd] with copy_hidden) -> unit keys [B, T, H, copy_state_dim]
        (non-causal conv, zero padding at the edges; `lift`ed)."""
        B, T, _ = f.shape
        x = self.project(self.key_proj, f, h)                       # (B, HK, T)
        w = self.c.key_window
        x = F.conv1d(F.pad(x, (w, w)), self.key_conv, groups=x.shape[1])  # (B, HK, T)
        return self.lift(F.normalize(x.transpose(1, 2).reshape(B, T, self.c.copy_heads, -1), dim=-1, eps=1e-6))

    def queries(self, f: Tensor, h: Tensor | None = None) -> Tensor:
        """f [B, T, d] (h as for `keys`) -> unit queries [B, T, H, copy_state_dim] (causal conv from a
        zero history; `lift`ed)."""
        B, T, _ = f.shape
        x = self.project(self.query_proj, f, h)                     # (B, HK, T)
        x = F.conv1d(F.pad(x, (self.c.query_window, 0)), self.query_conv, groups=x.shape[1])
        return self.lift(F.normalize(x.transpose(1, 2).reshape(B, T, self.c.copy_heads, -1), dim=-1, eps=1e-6))

    def lift(self, k: Tensor) -> Tensor:
        """Unit keys or queries [..., K] -> what S_copy stores and is read with [..., copy_state_dim].

        With copy_key_power 2 that is the outer product k (x) k, still of unit norm, whose dot
        products are the squared cosines of the keys: a query near one stored key and half-way to
        another (cosines 0.9 and 0.5) reads them 0.81 : 0.25 instead of 0.9 : 0.5, so facts stated
        in similar words ("my cat is called", "my dog is called") blur less into each other."""
        if self.c.copy_key_power == 1:
            return k
        # k (x) k is symmetric: keep its upper triangle, the off-diagonal terms x sqrt(2), which has
        # the same dot products in K (K + 1) / 2 dimensions instead of K^2
        return k[..., self.lift_i] * k[..., self.lift_j] * self.lift_weight

    def value_shares(self, f: Tensor, valid: Tensor) -> Tensor:
        """f [B, T, d], valid [B, T] -> a [B, T, value_window]: how much of the token i back (i = 0:
        the token at t itself) position t writes besides the next token.

        A pointer: a softmax over the window of the scaled cosines of a query at t and keys at t - i
        (plus a prior per distance), times a gate per position and one learned amount. The shares
        of a position sum to at most |amount| (a share of a value, never many values' worth), and
        the cosines keep the softmax from saturating on the tower's large features."""
        q = F.normalize(self.value_query(f), dim=-1, eps=1e-6)                # (B, T, P)
        k = F.normalize(self.value_key(f), dim=-1, eps=1e-6)
        logits = []
        for i in range(self.c.value_window):
            score = VALUE_POINTER_SCALE * (q * shifted(k, i)).sum(-1) + self.value_bias[i]
            logits.append(score.masked_fill(~shifted(valid, i), float("-inf")))
        p = torch.softmax(torch.stack(logits, dim=-1), dim=-1).nan_to_num(0.0)    # no position inside: 0
        return self.value_amount * torch.sigmoid(self.value_gate(f)) * p

    def write_gates(self, f: Tensor) -> tuple[Tensor, Tensor]:
        """f [B, T, d] -> (g log-decay [B, T, H] <= 0, beta [B, T, H] in (0, 1))."""
        return -F.softplus(self.decay_proj(f)), torch.sigmoid(self.beta_proj(f))


class MemoryModel(nn.Module):
    """Slow weights of the memory side for one backbone; see the module docstring."""

    def __init__(self, config: MemoryConfig, embeddings: np.ndarray | Tensor,
                 wording_ids: Iterable[int] | None = None):
        super().__init__()
        c = self.config = config
        E = unit_embeddings(embeddings)
        if tuple(E.shape) != (c.n_vocab, c.n_embd):
            raise ModelError(f"the backbone's embeddings are {tuple(E.shape)} but this memory model was "
                             f"built for ({c.n_vocab}, {c.n_embd}); use the memory weights trained for "
                             f"this backbone or train new ones with `dreamchat train`")
        self.register_buffer("emb", E, persistent=False)              # (n_vocab, n_embd), frozen
        Vc = c.copy_value_dim or c.n_embd
        R = torch.linalg.qr(torch.randn(c.n_embd, Vc, generator=torch.Generator().manual_seed(0)))[0] \
            if Vc < c.n_embd else torch.eye(c.n_embd)
        self.register_buffer("value_proj", R)                         # (n_embd, Vc), saved, never trained
        self._refresh_values()
        # The wording path's vocabulary: n_wording distinct ids chosen by training (reply-template
        # tokens); `load` overwrites the placeholder range with the saved ids.
        ids = torch.arange(c.n_wording) if wording_ids is None else \
            torch.as_tensor(list(dict.fromkeys(int(i) for i in wording_ids)), dtype=torch.long)
        if len(ids) != c.n_wording or int(ids.min()) < 0 or int(ids.max()) >= c.n_vocab:
            raise ValueError(f"wording_ids must be {c.n_wording} distinct ids in [0, {c.n_vocab}), "
                             f"got {len(ids)}")
        self.register_buffer("wording_ids", ids)                      # (n_wording,) saved with weights
        self.backbone_fingerprint: str | None = None
        # Fingerprints of earlier weights whose memories these read unchanged: a change that only
        # touches how memory is read (`models/calibrate.py`) keeps what a sleep writes, so the
        # user's snapshots stay valid. Saved in the file's metadata.
        self.reads_memories_of: tuple[str, ...] = ()
        # Dropout on the tower's input while training (`dreamchat train --dropout`): a training
        # choice, not part of the config, so it never changes the weights' fingerprint.
        self.input_dropout = 0.0

        self.in_proj = nn.Linear(2 * c.n_embd, c.d_model)
        self.tower = Tower(TowerConfig(**self._tower_kwargs(c)))
        self.copy = CopyMemory(c)
        self.gate = nn.Linear(c.d_model + c.copy_heads, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, c.gate_bias_init)
        self.copy_log_scale = nn.Parameter(torch.tensor(math.log(c.copy_scale_init)))
        self.wording = nn.Linear(c.d_model, c.n_embd, bias=False)
        nn.init.normal_(self.wording.weight, std=0.02)

    def _refresh_values(self) -> None:
        """emb_v: the copy memory's value / read-out vectors, unit rows of E_hat R (n_vocab, Vc)."""
        self.emb_v = F.normalize(self.emb @ self.value_proj, dim=-1, eps=1e-6)

    def _apply(self, fn, *args, **kwargs):  # .to(device) moves the derived matrix along
        out = super()._apply(fn, *args, **kwargs)
        self._refresh_values()
        # wake.py's traced feed holds the old tensors: trace again on the next wake
        self.__dict__.update(_wake_step=None, _wake_trace_failed=False)
        return out

    @staticmethod
    def _tower_kwargs(c: MemoryConfig) -> dict:
        return dict(d_model=c.d_model, layout=c.tower_layout, n_heads=c.n_heads, mlp_ratio=c.mlp_ratio,
                    head_k_dim=c.head_dim, head_v_dim=c.head_dim)

    # ---------------------------------------------------------------- state

    @property
    def device(self) -> torch.device:
        return self.emb.device

    def empty_state(self, batch: int = 1) -> dict[str, Tensor]:
        """Zero fast weights: the tower's S matrices, the copy memory and its (empty) written-id set."""
        c = self.config
        state = {TOWER_PREFIX + k: v for k, v in self.tower.initial_state(batch, device=self.device).items()}
        state[COPY_STATE] = torch.zeros(batch, c.copy_heads, c.copy_state_dim, self.value_proj.shape[1],
                                        device=self.device)
        state[COPY_WRITTEN] = torch.zeros(batch, c.n_vocab, dtype=torch.uint8, device=self.device)
        return state

    def _tower_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        n = len(TOWER_PREFIX)
        return {k[n:]: v for k, v in state.items() if k.startswith(TOWER_PREFIX)}

    def check_state(self, state: dict[str, Tensor]) -> None:
        """Raise ValueError naming the first missing or mis-shaped entry of `state`."""
        ref = self.empty_state(1)
        for name, t in ref.items():
            if name not in state:
                raise ValueError(f"memory state lacks {name!r}; it was made by another memory model")
            if tuple(state[name].shape[1:]) != tuple(t.shape[1:]):
                raise ValueError(f"memory state {name!r} has shape {tuple(state[name].shape)}, "
                                 f"expected [B, {', '.join(map(str, t.shape[1:]))}] ({STATE_LAYOUT})")

    # ---------------------------------------------------------------- the differentiable core

    def inputs(self, hidden: Tensor, tokens: Tensor) -> Tensor:
        """hidden [B, T, n_embd] float, tokens [B, T] long -> tower input [B, T, d_model]."""
        x = torch.cat([rms_norm(hidden.float()), self.emb[tokens]], dim=-1)
        return self.in_proj(F.dropout(x, self.input_dropout, self.training) if self.input_dropout else x)


    def sleep_passes(self, hidden: Tensor, tokens: Tensor, next_tokens: Tensor, valid: Tensor,
                     state: dict[str, Tensor], passes: int) -> Iterator[dict[str, Tensor]]:
        """Algorithm 1 on one chunk, batched and differentiable; yields the state after every pass.

        hidden [B, T, n_embd]; tokens [B, T]; next_tokens [B, T] (the token that follows each
        position, -1 where unknown: nothing is written there); valid [B, T] bool (False = padding,
        inert); state as `empty_state(B)` (not modified). Pass j reads the features of pass j-1 and
        starts from its S; the tower's attention/conv caches start empty on every pass; the copy
        memory is written once per pass with that pass's keys, its values staying e(next token).
        """
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        c = self.config
        valid = valid.bool()
        writes = valid & (next_tokens >= 0)                                       # (B, T)
        nt = next_tokens.clamp(min=0)
        next_values = self.copy_values(tokens, nt, writes)                        # (B, T, Vc)
        if c.value_window:  # the tokens a position may share: itself and those before it, in the chunk
            earlier = torch.stack([self.emb_v[shifted(tokens, i)] for i in range(c.value_window)], dim=2)
        # The written-id set grows by every token written as a value (non-differentiable).
        written = state[COPY_WRITTEN].scatter_reduce(1, nt, writes.to(state[COPY_WRITTEN].dtype),
                                                     reduce="amax")              # (B, n_vocab)
        tower_state = self._tower_state(state)
        S_copy = state[COPY_STATE]
        f = self.inputs(hidden, tokens) * valid[..., None]                        # (B, T, d)
        hn = rms_norm(hidden.float()) * valid[..., None] if c.copy_hidden else None   # (B, T, n_embd)
        for _ in range(passes):
            f, tower_state = self.tower(f, tower_state)
            tower_state = self.tower.long_term(tower_state)                       # S only: caches reset
            f = f * valid[..., None]
            k = self.copy.keys(f, hn)                                             # (B, T, H, K')
            values = next_values
            if c.value_window:  # this pass's features choose which earlier tokens to write too
                shares = self.copy.value_shares(f, valid) * writes[..., None]      # (B, T, W)
                values = values + torch.einsum("btw,btwv->btv", shares, earlier)
            values = values[:, :, None, :].expand(-1, -1, c.copy_heads, -1)       # (B, T, H, Vc)
            g, beta = self.copy.write_gates(f)                                    # (B, T, H) each
            _, S_copy = gated_delta_rule_chunked(k, k, values, g * valid[..., None],
                                                 beta * writes[..., None], S_copy, outputs=False)
            new = {TOWER_PREFIX + name: t for name, t in tower_state.items()}
            new[COPY_STATE] = S_copy
            new[COPY_WRITTEN] = written
            yield new

    def copy_values(self, tokens: Tensor, next_tokens: Tensor, writes: Tensor) -> Tensor:
        """What the copy memory writes at each position [B, T, Vc]: e(next token), zero where
        `writes` is False. (tokens [B, T] is unused here; experiments that write more than the next
        token override this.)"""
        return self.emb_v[next_tokens] * writes[..., None]

    def sleep(self, hidden: Tensor, tokens: Tensor, next_tokens: Tensor, valid: Tensor,
              state: dict[str, Tensor], passes: int) -> dict[str, Tensor]:
        """`sleep_passes` run to the end: the state after the last pass (features dropped)."""
        for new in self.sleep_passes(hidden, tokens, next_tokens, valid, state, passes):
            pass
        return new

    def wake_features(self, hidden: Tensor, tokens: Tensor, state: dict[str, Tensor]
                      ) -> tuple[Tensor, Tensor, Tensor]:
        """One causal pass over wake tokens, batched (training; `WakeSession` is the streaming form).
        Returns gate [B, T] in (0, 1), the copy read [B, T, Vc] (sum over heads of S_copy^T q)
        and the wording vector [B, T, n_embd] (W_o f)."""
        f, _ = self.tower(self.inputs(hidden, tokens), self._tower_state(state))    # (B, T, d)
        q = self.copy.queries(f, rms_norm(hidden.float()) if self.config.copy_hidden else None)  # (B, T, H, K')
        read = torch.einsum("bthk,bhkv->bthv", q, state[COPY_STATE])                # (B, T, H, V)
        gate = torch.sigmoid(self.gate(torch.cat([f, read.norm(dim=-1)], dim=-1))).squeeze(-1)
        return gate, read.sum(2), self.wording(f)

    def dense_bias(self, gate: Tensor, read: Tensor, wording: Tensor, written: Tensor) -> Tensor:
        """The full-vocabulary logit bias at selected positions (training; wake uses the sparse form).
        gate [N], read [N, Vc], wording [N, n_embd], written [N, n_vocab] (0/1) -> [N, n_vocab]."""
        copy = (read @ self.emb_v.t()) * written.to(read.dtype) * self.copy_log_scale.exp()  # (N, n_vocab)
        words = wording @ self.emb[self.wording_ids].t()                                   # (N, n_wording)
        return gate[:, None] * copy.index_add(1, self.wording_ids, words)

    def bias_on(self, ids: Tensor, gate: Tensor, read: Tensor, wording: Tensor, written: Tensor) -> Tensor:
        """`dense_bias` restricted to the vocabulary columns `ids` [C] (training: the bias is zero
        outside the written and wording ids, so the exact full-vocabulary softmax needs only these
        columns plus a precomputed log-sum-exp of the backbone's logits). -> [N, C]."""
        E = self.emb[ids]                                                                  # (C, n_embd)
        copy = (read @ self.emb_v[ids].t()) * written[:, ids].to(read.dtype) * self.copy_log_scale.exp()  # (N, C)
        in_words = torch.zeros(self.config.n_vocab, dtype=read.dtype, device=read.device)
        in_words[self.wording_ids] = 1.0
        words = (wording @ E.t()) * in_words[ids]                                          # (N, C)
        return gate[:, None] * (copy + words)

    # ---------------------------------------------------------------- product API

    @torch.no_grad()
    def consolidate(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], state: dict[str, Tensor],
                    passes: int, on_progress: Callable | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    unwritten: np.ndarray | None = None) -> dict[str, Tensor]:
        """Sleep on one day: chunks of (hidden [T, n_embd], tokens [T]) as the backbone saw them.

        Algorithm 1 chunk after chunk: `passes` passes per chunk, then only S is carried to the next
        chunk. The token that follows a chunk's last position is the next chunk's first token, so
        chunks are read one ahead. `unwritten` (bool over the whole day's positions, the chunks one
        after another): positions the copy memory writes no value from (`features.unwritten_positions`);
        the tower still reads them. `on_progress(chunk_index, n_chunks, pass_index, passes,
        tokens_done)` is called after every pass; `should_stop()` returning True raises
        `ConsolidationCancelled` and leaves `state` as it was (everything is built on new tensors).
        Returns the new state on the CPU.
        """
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.check_state(state)
        if not hasattr(chunks, "__len__"):
            chunks = list(chunks)
        n_chunks = len(chunks)
        dev = self.device
        current = {name: t.to(dev) for name, t in state.items()}
        it = iter(chunks)
        ahead = next(it, None)
        index = tokens_done = day_at = 0
        while ahead is not None:
            hidden, tokens = ahead
            ahead = next(it, None)
            h = torch.as_tensor(np.asarray(hidden, dtype=np.float32), device=dev)[None]   # (1, T, n_embd)
            tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=dev)[None]   # (1, T)
            if h.dim() != 3 or h.shape[1] != tok.shape[1] or h.shape[2] != self.config.n_embd:
                raise ValueError(f"chunk {index}: hidden {tuple(h.shape[1:])} does not match "
                                 f"{tok.shape[1]} tokens of width {self.config.n_embd}")
            follow = int(ahead[1][0]) if ahead is not None and len(ahead[1]) else -1
            nxt = torch.cat([tok[:, 1:], tok.new_full((1, 1), follow)], dim=1)              # (1, T)
            if unwritten is not None:
                quiet = np.asarray(unwritten[day_at:day_at + tok.shape[1]], dtype=bool)
                if len(quiet) != tok.shape[1]:
                    raise ValueError(f"unwritten covers {len(unwritten)} positions, the chunks more")
                nxt = nxt.masked_fill(torch.as_tensor(quiet, device=dev)[None], -1)
            day_at += tok.shape[1]
            valid = torch.ones_like(tok, dtype=torch.bool)
            for p, new in enumerate(self.sleep_passes(h, tok, nxt, valid, current, passes)):
                if should_stop is not None and should_stop():
                    raise ConsolidationCancelled()
                if p == passes - 1:
                    current = new
                    tokens_done += tok.shape[1]
                if on_progress is not None:
                    on_progress(index, n_chunks, p, passes, tokens_done)
            index += 1
        return {name: t.detach().cpu() for name, t in current.items()}

    def wake(self, state: dict[str, Tensor]) -> "WakeSession":
        """A streaming session over `state` (read, never modified: the session works on copies)."""
        from dreamchat.models.wake import WakeSession  # here, not at the top: wake.py imports this module
        self.check_state(state)
        return WakeSession(self, state)

    # ---------------------------------------------------------------- files

    @property
    def fingerprint(self) -> str:
        """sha256 over the config and every saved tensor (name, dtype, shape, bytes)."""
        return weights_fingerprint(self.config, self._tensors())

    def _tensors(self) -> dict[str, Tensor]:
        return {name: t for name, t in self.state_dict().items()}

    def save(self, path: str | Path, backbone_fingerprint: str = "") -> None:
        """Write the slow weights as safetensors, config and format in the metadata (atomic)."""
        from safetensors.torch import save_file
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
                "config": self.config.to_json(), "state_layout": STATE_LAYOUT,
                "backbone_fingerprint": backbone_fingerprint or (self.backbone_fingerprint or ""),
                "n_embd": str(self.config.n_embd), "n_vocab": str(self.config.n_vocab)}
        if self.reads_memories_of:
            meta[READS_MEMORIES_OF] = json.dumps(list(self.reads_memories_of))
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in self._tensors().items()}, str(tmp),
                  metadata=meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, embeddings, backbone_fingerprint: str | None = None) -> "MemoryModel":
        """Read slow weights saved by `save`. `embeddings`: the backbone's output embeddings
        [n_vocab, n_embd], or the Backbone itself (then its fingerprint is checked too). Raises
        ModelError (one line, with the fix) when the file is missing, unreadable, of another format
        or version, or made for another backbone (n_embd / n_vocab, or the backbone fingerprint
        recorded in the file when one is known)."""
        from safetensors import safe_open
        path = Path(path)
        retrain = "train weights for this model with `dreamchat train`"
        if not path.is_file():
            raise ModelError(f"memory weights not found at {path}; reinstall dreamchat or {retrain}")
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise ModelError(f"memory weights at {path} are unreadable ({exc.__class__.__name__}); "
                             f"reinstall dreamchat or {retrain}") from exc
        if meta.get("format") != FORMAT_NAME:
            raise ModelError(f"{path} is not a dreamchat memory-weights file; {retrain}")
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise ModelError(f"memory weights at {path} have format version {meta.get('format_version')}, "
                             f"this dreamchat reads version {FORMAT_VERSION}; upgrade dreamchat or {retrain}")
        try:
            config = MemoryConfig.from_json(meta["config"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"memory weights at {path} have a damaged config; {retrain}") from exc
        if hasattr(embeddings, "output_embeddings"):      # a Backbone: take its matrix and fingerprint
            backbone_fingerprint = backbone_fingerprint or getattr(embeddings, "fingerprint", None)
            embeddings = embeddings.output_embeddings()
        E = np.asarray(embeddings)
        if E.ndim != 2 or E.shape != (config.n_vocab, config.n_embd):
            raise ModelError(f"memory weights at {path} were trained for a backbone with n_vocab="
                             f"{config.n_vocab}, n_embd={config.n_embd}, but this backbone has "
                             f"{tuple(E.shape)}; use --model with the matching GGUF or {retrain}")
        stored_fp = meta.get("backbone_fingerprint", "")
        if backbone_fingerprint and stored_fp and stored_fp != backbone_fingerprint:
            raise ModelError(f"memory weights at {path} were trained for another backbone file "
                             f"(fingerprint {stored_fp[:12]}, this one {backbone_fingerprint[:12]}); {retrain}")
        n_wording = int(tensors["wording_ids"].numel()) if "wording_ids" in tensors else -1
        if n_wording != config.n_wording:
            raise ModelError(f"memory weights at {path} are incomplete (wording ids); {retrain}")
        model = cls(config, E)
        try:
            model.load_state_dict(tensors, strict=True)
            model._refresh_values()
        except RuntimeError as exc:
            raise ModelError(f"memory weights at {path} do not match their config "
                             f"({str(exc).splitlines()[0]}); {retrain}") from exc
        model.backbone_fingerprint = stored_fp or None
        try:
            model.reads_memories_of = memories_read(meta)
        except ValueError as exc:
            raise ModelError(f"memory weights at {path} have damaged metadata ({READS_MEMORIES_OF}); "
                             f"{retrain}") from exc
        model.eval()
        return model


# Fields a model may be widened in while keeping what it learned (`grow_into`); every other field
# must match, since it changes what the trained weights mean.
GROWABLE = ("copy_key_dim", "key_window", "query_window", "copy_hidden", "value_window")
# Fields that change how the same weights' keys are matched, not the weights: free to change.
REMATCHED = ("copy_key_power",)

# Slow weights that only reading the memory uses: the gate, the copy read's queries and scale, the
# wording path. A sleep writes the same fast weights whatever their values, so weights that differ
# from others only in these read the others' memories unchanged (`reads_memories_of`).
WAKE_ONLY = ("gate.", "copy.query_proj.", "copy.query_conv", "copy_log_scale", "wording.")


def wake_only(name: str) -> bool:
    """Whether the slow weight `name` (a `named_parameters` name) is only used at wake."""
    return name.startswith(WAKE_ONLY)


@torch.no_grad()
def grow_into(model: MemoryModel, tensors: dict[str, Tensor], old: MemoryConfig) -> None:
    """Load slow weights trained with config `old` into `model`, whose config may be wider in
    `GROWABLE`; it then computes what the old model computed (to about 1e-6), and training goes on
    from there.

    Wider copy keys: the new query rows start at zero and the new key rows at 1e-3 of the old
    rows' scale, so keys and queries are unchanged to within about 1e-6 (zero on both sides would be
    a saddle: neither would ever receive a gradient); their conv channels keep `model`'s fresh
    initialisation. Wider windows: the new conv taps (both sides of the key conv, the
    far past of the causal query conv) start at zero. A new hidden-state path (`copy_hidden`)
    starts at zero, and so do the shares of a new or wider `value_window`. Raises ValueError when a
    non-growable field differs or a growable one would shrink. A new `copy_key_power` keeps every weight: the same keys and queries, matched by the
    new power (so the model then computes something else, and training adapts it).
    """
    new = model.config
    for f in fields(MemoryConfig):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if f.name in REMATCHED:
            continue
        if f.name in GROWABLE and b < a:
            raise ValueError(f"cannot shrink {f.name} from {a} to {b}")
        if f.name not in GROWABLE and a != b:
            raise ValueError(f"{f.name} differs ({a} -> {b}); only {', '.join(GROWABLE)} can grow")
    H, K0, K1 = new.copy_heads, old.copy_key_dim, new.copy_key_dim
    own = model.state_dict()
    merged = dict(tensors)
    for name, scale in (("copy.key_proj.weight", 1e-3), ("copy.query_proj.weight", 0.0)):
        old_rows = tensors[name].view(H, K0, new.d_model)
        w = torch.randn(H, K1, new.d_model) * (scale * float(old_rows.std()))
        w[:, :K0] = old_rows
        merged[name] = w.view(H * K1, new.d_model)
    for name, pad_left, pad_right in (
            ("copy.key_conv", new.key_window - old.key_window, new.key_window - old.key_window),
            ("copy.query_conv", new.query_window - old.query_window, 0)):
        w = own[name].clone().view(H, K1, 1, -1)                          # fresh init for new channels
        w[:, :K0] = F.pad(tensors[name].view(H, K0, 1, -1), (pad_left, pad_right))
        merged[name] = w.view(H * K1, 1, -1)
    if new.copy_hidden:
        w = torch.zeros(H, K1, new.n_embd)
        if old.copy_hidden:
            w[:, :K0] = tensors["copy.hidden_proj.weight"].view(H, K0, new.n_embd)
        merged["copy.hidden_proj.weight"] = w.view(H * K1, new.n_embd)
    if new.value_window:
        pointer = ("copy.value_query.weight", "copy.value_key.weight", "copy.value_bias",
                   "copy.value_gate.weight", "copy.value_gate.bias", "copy.value_amount")
        if old.value_window:  # farther offsets start with no prior weight
            merged["copy.value_bias"] = F.pad(tensors["copy.value_bias"], (0, new.value_window - old.value_window),
                                              value=-1e4)
        else:  # a new pointer, fresh but for an amount of zero: no shares
            merged.update({name: own[name] for name in pointer})
    model.load_state_dict(merged, strict=True)
    model._refresh_values()


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weights_fingerprint(config: MemoryConfig, tensors: dict[str, Tensor]) -> str:
    """`MemoryModel.fingerprint` from a config and the tensors of a weights file (no backbone needed)."""
    h = hashlib.sha256(config.to_json().encode())
    for name, t in sorted(tensors.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def memories_read(meta: dict[str, str]) -> tuple[str, ...]:
    """The fingerprints a weights file's metadata lists under READS_MEMORIES_OF (ValueError when
    the entry is damaged)."""
    fps = json.loads(meta.get(READS_MEMORIES_OF) or "[]")   # JSONDecodeError is a ValueError
    if not isinstance(fps, list) or not all(isinstance(f, str) for f in fps):
        raise ValueError(f"{READS_MEMORIES_OF} must be a JSON list of fingerprints")
    return tuple(fps)


def default_weights_path() -> Path:
    """The shipped slow weights for the default model (SmolLM2-135M-Instruct Q4_1)."""
    return WEIGHTS_DIR / "smollm2-135m-instruct-q4_1.memory.safetensors"


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of a weights file ({} if it is missing or unreadable)."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # missing, truncated, not safetensors: the caller treats it as "no weights"
        return {}


def shipped_weights_for(backbone_fingerprint: str) -> Path | None:
    """The shipped weights file trained for the backbone with this fingerprint, or None."""
    for path in sorted(WEIGHTS_DIR.glob("*.memory.safetensors")):
        meta = read_metadata(path)
        if meta.get("format") == FORMAT_NAME and meta.get("backbone_fingerprint") == backbone_fingerprint:
            return path
    return None
