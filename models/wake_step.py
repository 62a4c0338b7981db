"""A traced one-token step of the memory tower, for wake.

At wake the tower runs one token at a time, and eager PyTorch spends most of such a step in per-op
dispatch (about 250 tiny ops for the shipped two-block tower). A TorchScript trace of the same step
runs the same kernels from a recorded graph in about half the time (measured on 1 CPU thread:
1.52 ms -> 0.84 ms per token), with no compiler needed on the user's machine.

Only towers made of Gated DeltaNet blocks are traced: their state (S and the conv cache of every
block) has a fixed shape, so one trace serves every token. Attention blocks grow a KV cache, so a
tower with any of them, or any failure to trace, keeps the eager step, which computes the same
numbers (`tests/test_memory.py` checks the two against each other).
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import Tensor, nn

from dreamchat.models.tower import Tower

log = logging.getLogger(__name__)


class _Positional(nn.Module):
    """The tower's one-token step with its state as a flat tuple of tensors (what tracing needs)."""

    def __init__(self, tower: Tower, names: list[str]):
        super().__init__()
        self.tower, self.names = tower, names

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        y, new = self.tower(x, dict(zip(self.names, state)))
        return (y, *(new[name] for name in self.names))


def full_wake_state(tower: Tower, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """`state` with an explicit zero conv cache for every GDN block that has none (a zero cache is
    what an absent one means), so the state has the same keys and shapes before and after a step."""
    out = dict(state)
    for i, block in enumerate(tower.blocks):
        if block.kind == "G" and f"blocks.{i}.conv" not in out:
            S = out[f"blocks.{i}.S"]
            out[f"blocks.{i}.conv"] = block.mixer.empty_state(S.shape[0], S.device, S.dtype)["conv"]
    return out


class TracedStep:
    """Calls a traced one-token tower step with a state dict, like `Tower.forward` at T = 1."""

    def __init__(self, tower: Tower, example_x: Tensor, example_state: dict[str, Tensor]):
        self.names = sorted(example_state)
        self.shapes = {name: tuple(t.shape) for name, t in example_state.items()}
        self.dtype, self.device = example_x.dtype, example_x.device
        module = _Positional(tower, self.names)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript announces its own deprecation
            self.fn = torch.jit.trace(module, (example_x, *(example_state[n] for n in self.names)),
                                      check_trace=False)

    def accepts(self, x: Tensor, state: dict[str, Tensor]) -> bool:
        return (x.shape[1] == 1 and x.dtype == self.dtype and x.device == self.device
                and len(state) == len(self.names)
                and all(tuple(state[n].shape) == self.shapes[n] for n in self.names if n in state))

    def __call__(self, x: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        y, *new = self.fn(x, *(state[n] for n in self.names))
        return y, dict(zip(self.names, new))


def trace_wake_step(tower: Tower, example_x: Tensor, state: dict[str, Tensor]) -> TracedStep | None:
    """A traced step for this tower and state layout, or None where only the eager step applies."""
    if any(block.kind != "G" for block in tower.blocks):
        return None
    try:
        return TracedStep(tower, example_x, state)
    except Exception as exc:  # tracing is an optimisation: any failure keeps the eager step
        log.info("wake step not traced (%s: %s); using the eager step", exc.__class__.__name__, exc)
        return None
