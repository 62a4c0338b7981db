"""The tower: a stack of attention (A) and Gated DeltaNet (G) blocks with explicit state, and sleep.

The tower maps features to features, x [B, T, d_model] -> h [B, T, d_model]. It has no embedding
and no output head: the memory model (backbone features in, logit bias out) and the research model
(its own token embedding in, next-token logits out) are two front ends around the same tower.

State is one flat `dict[str, Tensor]` with dotted names, ready for safetensors:

    "blocks.{i}.S"                       fast weights of GDN block i, [B, H, K, V] (gdn.STATE_LAYOUT)
    "blocks.{i}.conv"                    GDN block i's short-conv cache (streaming only)
    "blocks.{i}.k" / ".v" / ".pos"       attention block i's window cache (streaming only)

Only the S matrices are long-term memory (`long_term`); the caches live inside one day / one chunk.

Wake is `forward`: one pass, any T, streaming-capable (feed T = 1 with the returned state).
Sleep is Algorithm 1 of "Language Models Need Sleep" on one chunk: N passes over the same chunk,
pass j reading pass j-1's output features and starting from pass j-1's S, attention rebuilt from
scratch on every pass; after the last pass the features are dropped and only S is returned.
Gradients flow through every pass into the slow weights and into the state the chunk started from.
"""

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from dreamchat.models.attention import AttentionConfig, WindowAttention
from dreamchat.models.gdn import GatedDeltaNet, GDNConfig, rms_norm

# Names (after the "blocks.{i}." prefix) of the state that persists across chunks and days.
LONG_TERM_KEYS = ("S",)


@dataclass
class TowerConfig:
    d_model: int = 256          # width of the residual stream (the paper's Rule 110 model: 256)
    layout: str = "AGAG"        # one letter per block: A = attention, G = Gated DeltaNet (the paper's order)
    n_heads: int = 4            # heads of every mixer (attention and GDN)
    mlp_ratio: float = 2.0      # MLP hidden width / d_model; 0 = MLP-free blocks (as the paper's Jet layers)
    window: int = 512           # attention window: a query sees itself + window-1 earlier tokens
    head_k_dim: int = 64        # GDN key / query width per head (rows of S)
    head_v_dim: int = 64        # GDN value width per head (columns of S)
    conv_size: int = 4          # GDN short causal conv width
    chunk_size: int = 64        # GDN chunk length for the chunkwise-parallel path
    rope_base: float = 10000.0  # attention RoPE base
    norm_eps: float = 1e-5      # eps of every RMSNorm

    def __post_init__(self):
        if not self.layout or set(self.layout) - {"A", "G"}:
            raise ValueError(f"TowerConfig.layout must be a non-empty string of 'A' (attention) and "
                             f"'G' (Gated DeltaNet), got {self.layout!r}")
        if self.mlp_ratio < 0:
            raise ValueError(f"TowerConfig.mlp_ratio must be >= 0 (0 = no MLP), got {self.mlp_ratio}")
        # Validate the mixer configs this layout uses now, with their own messages.
        if "A" in self.layout:
            self.attention_config()
        if "G" in self.layout:
            self.gdn_config()

    def attention_config(self) -> AttentionConfig:
        return AttentionConfig(d_model=self.d_model, n_heads=self.n_heads, window=self.window,
                               rope_base=self.rope_base)

    def gdn_config(self) -> GDNConfig:
        return GDNConfig(d_model=self.d_model, n_heads=self.n_heads, head_k_dim=self.head_k_dim,
                         head_v_dim=self.head_v_dim, conv_size=self.conv_size,
                         chunk_size=self.chunk_size, norm_eps=self.norm_eps)


class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last axis (no bias, no mean subtraction)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc = nn.Linear(d_model, hidden, bias=False)
        self.proj = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # tanh GELU (as GPT-2): on CPU the exact erf form costs ~5x more per wake step.
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm residual block: x + mixer(norm(x)), then x + mlp(norm(x)) (skipped if mlp_ratio = 0)."""

    def __init__(self, config: TowerConfig, kind: str):
        super().__init__()
        self.kind = kind
        self.norm_mixer = RMSNorm(config.d_model, config.norm_eps)
        if kind == "A":
            self.mixer = WindowAttention(config.attention_config())
        elif kind == "G":
            self.mixer = GatedDeltaNet(config.gdn_config())
        else:
            raise ValueError(f"unknown block kind {kind!r}: use 'A' (attention) or 'G' (Gated DeltaNet)")
        hidden = int(round(config.mlp_ratio * config.d_model))
        self.norm_mlp = RMSNorm(config.d_model, config.norm_eps) if hidden else None
        self.mlp = MLP(config.d_model, hidden) if hidden else None

    def forward(self, x: Tensor, state: dict | None = None) -> tuple[Tensor, dict]:
        y, state = self.mixer(self.norm_mixer(x), state)
        x = x + y
        if self.mlp is not None:
            x = x + self.mlp(self.norm_mlp(x))
        return x, state


class Tower(nn.Module):
    def __init__(self, config: TowerConfig):
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(Block(config, kind) for kind in config.layout)
        self.apply(self._init_linear)
        # GPT-2 / nanoGPT: scale the projections that write into the residual stream by depth.
        for name, p in self.named_parameters():
            if name.endswith(("mixer.o_proj.weight", "mixer.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * len(self.blocks)))

    @staticmethod
    def _init_linear(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    # --- state -------------------------------------------------------------------------------------

    def initial_state(self, batch: int = 1, device=None, dtype=None) -> dict[str, Tensor]:
        """Zero long-term memory: {"blocks.{i}.S": zeros [batch, H, K, V]} for every GDN block."""
        return {f"blocks.{i}.S": block.mixer.empty_state(batch, device, dtype)["S"]
                for i, block in enumerate(self.blocks) if block.kind == "G"}

    @staticmethod
    def long_term(state: dict[str, Tensor] | None) -> dict[str, Tensor]:
        """Just the persistent S tensors (what the memory store saves); caches are dropped."""
        return {name: t for name, t in (state or {}).items()
                if name.rsplit(".", 1)[-1] in LONG_TERM_KEYS}

    @staticmethod
    def _block_state(state: dict[str, Tensor], i: int) -> dict[str, Tensor]:
        prefix = f"blocks.{i}."
        return {name[len(prefix):]: t for name, t in state.items() if name.startswith(prefix)}

    # --- wake ----------------------------------------------------------------------------------------

    def forward(self, x: Tensor, state: dict[str, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One pass. x [B, T, d_model] -> (h [B, T, d_model], new state with S and caches).
        state None (or missing entries) = zero S and empty caches. Feed T = 1 with the returned state
        to stream token by token."""
        if x.dim() != 3 or x.shape[-1] != self.config.d_model:
            raise ValueError(f"Tower expects x of shape [B, T, {self.config.d_model}], got {tuple(x.shape)}")
        state = state or {}
        new_state = {}
        for i, block in enumerate(self.blocks):
            x, block_state = block(x, self._block_state(state, i))
            new_state.update({f"blocks.{i}.{name}": t for name, t in block_state.items()})
        return x, new_state

    # --- sleep ---------------------------------------------------------------------------------------

    def _sleep_pass(self, h: Tensor, S: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        h, new_state = self.forward(h, S)  # S only: attention and conv caches start empty every pass
        return h, self.long_term(new_state)

    def sleep(self, x: Tensor, state: dict[str, Tensor] | None, passes: int, *,
              use_checkpoint: bool = False) -> dict[str, Tensor]:
        """Algorithm 1 on ONE chunk x [B, T, d_model]: `passes` passes, each reading the previous
        pass's output features and starting from its S. Returns the new long-term state (S only).
        use_checkpoint recomputes each pass in backward instead of storing its activations (training
        memory ~ one pass instead of `passes`)."""
        if passes < 1:
            raise ValueError(f"sleep needs passes >= 1, got {passes}")
        h, S = x, self.long_term(state)
        for _ in range(passes):
            if use_checkpoint and torch.is_grad_enabled():
                h, S = checkpoint(self._sleep_pass, h, S, use_reentrant=False)
            else:
                h, S = self._sleep_pass(h, S)
        return S  # the refined features h are dropped here, as in the paper

    def sleep_chunks(self, chunks: Iterable[Tensor], state: dict[str, Tensor] | None, passes: int,
                     on_progress: Callable[[int], None] | None = None, *,
                     use_checkpoint: bool = False) -> dict[str, Tensor]:
        """Sleep on chunk after chunk (each [B, T_c, d_model]); chunk n starts from chunk n-1's S.
        on_progress(number of chunks done) is called after each chunk."""
        S = self.long_term(state)
        for done, chunk in enumerate(chunks, start=1):
            S = self.sleep(chunk, S, passes, use_checkpoint=use_checkpoint)
            if on_progress is not None:
                on_progress(done)
        return S
