"""Wake: the memory model's streaming session, and the traced one-token tower step it uses.

`WakeSession` (what `MemoryModel.wake` returns) streams the day's tokens through the tower over a
scratch copy of the state and returns, after each `feed`, the sparse logit bias for the next token.
The products that stay fixed during a day (the copy memory read through the written and wording
ids) are computed once when the session opens, so a token costs a tower step, a causal conv and
one small matrix product.

The one-token feed itself: at wake the tower runs one token at a time, and eager PyTorch spends most
of such a step in per-op dispatch (about 300 tiny ops for the shipped two-block tower and the
memory read). A TorchScript trace of the same feed runs the same kernels from a recorded graph in
about half the time (the tower part, measured on 1 CPU thread: 1.52 ms -> 0.84 ms per token), with
no compiler needed on the user's machine.

Only towers made of Gated DeltaNet blocks are traced: their state (S and the conv cache of every
block) has a fixed shape, so one trace serves every token. Attention blocks grow a KV cache, so a
tower with any of them, or any failure to trace, keeps the eager feed, which computes the same
numbers (`tests/test_memory.py` checks the two against each other).

`ReplyHook` is what generation calls once per token of a reply: it feeds the token to the session,
adds the bias to the backbone's logits, and keeps the memory from driving the reply into a loop.

On CUDA a step is about a hundred kernels of a few microseconds each, so launching them costs more
than running them: the traced step alone took 1.3-2.0 ms a token on an H200, slower than one CPU
thread (0.9-1.2 ms). Each session therefore captures its traced step once in a CUDA graph over
buffers of its own (`GraphedFeed`) and replays it: 0.24-0.27 ms a token, copying the bias back
included (`benchmarks/bench_wake_devices.py`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dreamchat.models.memory import COPY_STATE, COPY_WRITTEN, TOWER_PREFIX, MemoryModel, SparseBias, rms_norm
from dreamchat.models.tower import Tower

log = logging.getLogger(__name__)

# What a session reads the memory through, fixed for its day (see `WakeSession`): copy_rows [U, V],
# word_rows [n_wording, d] and word_at [n_wording], the wording ids' places in U.
Readout = tuple[Tensor, Tensor, Tensor]


def read_memory(m: MemoryModel, f: Tensor, h: Tensor, qbuf: Tensor, S_copy: Tensor, copy_rows: Tensor,
                word_rows: Tensor, word_at: Tensor) -> tuple[Tensor, Tensor]:
    """The copy-memory read and the bias for the token after the last of f [1, T, d] (h [1, T,
    n_embd], the backbone's hidden states): query conv over qbuf (the last query_window
    projections) and f, the read S_copy^T q per head (S_copy [H, K', V]), gate, then the bias over
    the session's ids U: copy_rows [U, V] times the read summed over heads, plus word_rows
    [n_wording, d] times f added at the wording ids' places in U (word_at [n_wording]). Returns
    (bias values [U], new qbuf). Shared by the eager feed and the traced graph."""
    c = m.config
    hn = rms_norm(h.float()) if c.copy_hidden else None
    x = torch.cat([qbuf, m.copy.project(m.copy.query_proj, f, hn)], dim=2)  # (1, HK, w + T)
    qbuf = x[:, :, x.shape[2] - c.query_window:]
    last = x[0, :, x.shape[2] - c.query_window - 1:]                     # (HK, w + 1)
    q = (last * m.copy.query_conv[:, 0]).sum(-1).view(c.copy_heads, -1) # (H, K)
    q = m.copy.lift(F.normalize(q, dim=-1, eps=1e-6))                    # (H, K')
    read = torch.einsum("hk,hkv->hv", q, S_copy)                         # (H, V)
    f_last = f[0, -1]                                                    # (d,)
    gate = torch.sigmoid(m.gate(torch.cat([f_last, read.norm(dim=-1)]))) # (1,)
    values = (copy_rows @ read.sum(0)).index_add(0, word_at, word_rows @ f_last)
    return values * gate, qbuf                                           # (U,), (1, HK, w)


class _FeedGraph(nn.Module):
    """One token of `WakeSession.feed` with every input a tensor and the tower state a flat tuple
    (what tracing needs): (h, tok, qbuf, S_copy, copy_rows, word_rows, word_at, *state) ->
    (values, qbuf, *state)."""

    def __init__(self, model: MemoryModel, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor, copy_rows: Tensor,
                word_rows: Tensor, word_at: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        m = self.model
        f, new = m.tower(m.inputs(h, tok), dict(zip(self.names, state)))
        values, qbuf = read_memory(m, f, h, qbuf, S_copy, copy_rows, word_rows, word_at)
        return (values, qbuf, *(new[name] for name in self.names))


def full_wake_state(tower: Tower, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """`state` with an explicit zero conv cache for every GDN block that has none (a zero cache is
    what an absent one means), so the state has the same keys and shapes before and after a step."""
    out = dict(state)
    for i, block in enumerate(tower.blocks):
        if block.kind == "G" and f"blocks.{i}.conv" not in out:
            S = out[f"blocks.{i}.S"]
            out[f"blocks.{i}.conv"] = block.mixer.empty_state(S.shape[0], S.device, S.dtype)["conv"]
    return out


class TracedFeed:
    """A traced one-token feed: called like the eager one, with the tower state as a dict."""

    def __init__(self, model: MemoryModel, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor,
                 readout: Readout, state: dict[str, Tensor]):
        self.names = sorted(state)
        self.shapes = {name: tuple(t.shape) for name, t in state.items()}
        self.dtype, self.device = h.dtype, h.device
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript announces its own deprecation
            self.fn = torch.jit.trace(_FeedGraph(model, self.names),
                                      (h, tok, qbuf, S_copy, *readout, *(state[n] for n in self.names)),
                                      check_trace=False)

    def accepts(self, h: Tensor, state: dict[str, Tensor]) -> bool:
        return (h.shape[1] == 1 and h.dtype == self.dtype and h.device == self.device
                and sorted(state) == self.names
                and all(tuple(state[n].shape) == self.shapes[n] for n in self.names))

    def __call__(self, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor, readout: Readout,
                 state: dict[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        values, qbuf, *new = self.fn(h, tok, qbuf, S_copy, *readout, *(state[n] for n in self.names))
        return values, qbuf, dict(zip(self.names, new))


class GraphedFeed:
    """A session's traced one-token step captured in a CUDA graph (CUDA only).

    The graph reads and writes fixed buffers: a call copies the token in, replays, and moves the
    step's new query buffer and tower state into the buffers the next replay reads. `qbuf` and
    `state` are therefore the session's live state while it feeds one token at a time; `load`
    puts a state computed elsewhere (the eager feed of several tokens) into them. The returned
    values are overwritten by the next call.
    """

    def __init__(self, step: TracedFeed, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor,
                 readout: Readout, state: dict[str, Tensor]):
        self.names = step.names
        self.h, self.tok, self.qbuf = h.clone(), tok.clone(), qbuf.clone()
        self.state = {n: state[n].clone() for n in self.names}
        args = (self.h, self.tok, self.qbuf, S_copy, *readout, *(self.state[n] for n in self.names))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # capture wants its kernels warmed up off the main stream
            for _ in range(2):
                step.fn(*args)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: a sleep running in another thread may use CUDA while this thread captures
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.values, self.new_qbuf, *new = step.fn(*args)
        self.new_state = dict(zip(self.names, new))

    def load(self, qbuf: Tensor, state: dict[str, Tensor]) -> None:
        self.qbuf.copy_(qbuf)
        for n in self.names:
            self.state[n].copy_(state[n])

    def __call__(self, h: Tensor, tok: Tensor) -> Tensor:
        self.h.copy_(h)
        self.tok.copy_(tok)
        self.graph.replay()
        self.load(self.new_qbuf, self.new_state)
        return self.values


def graph_feed(step: TracedFeed, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor, readout: Readout,
               state: dict[str, Tensor]) -> GraphedFeed | None:
    """A CUDA graph of the traced step for one session, or None off CUDA or where capture fails."""
    if h.device.type != "cuda":
        return None
    try:
        return GraphedFeed(step, h, tok, qbuf, S_copy, readout, state)
    except Exception as exc:  # a graph is an optimisation: the traced step computes the same
        log.info("wake feed not captured in a CUDA graph (%s: %s); replaying the traced step",
                 exc.__class__.__name__, exc)
        return None


def trace_feed(model: MemoryModel, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor, readout: Readout,
               state: dict[str, Tensor]) -> TracedFeed | None:
    """A traced feed for this model and state layout, or None where only the eager feed applies."""
    if any(block.kind != "G" for block in model.tower.blocks):
        return None
    try:
        return TracedFeed(model, h, tok, qbuf, S_copy, readout, state)
    except Exception as exc:  # tracing is an optimisation: any failure keeps the eager feed
        log.info("wake feed not traced (%s: %s); using the eager feed", exc.__class__.__name__, exc)
        return None


def traced_feed_for(model: MemoryModel, h: Tensor, tok: Tensor, qbuf: Tensor, S_copy: Tensor,
                    readout: Readout, state: dict[str, Tensor]) -> TracedFeed | None:
    """The model's traced one-token feed for inputs like these: traced on first use and kept on the
    model (every session reuses it; `MemoryModel._apply` drops it). A trace that failed is not
    tried again for the same model."""
    step = model.__dict__.get("_wake_step")
    if step is not None and step.accepts(h, state):
        return step
    if model.__dict__.get("_wake_trace_failed"):
        return None
    step = trace_feed(model, h, tok, qbuf, S_copy, readout, state)
    model.__dict__["_wake_step"] = step
    model.__dict__["_wake_trace_failed"] = step is None
    return step


class WakeSession:
    """Streaming wake over a scratch copy of the state: `feed` returns the bias for the next token.

    Fixed products are computed once here, for the union U of written ids and wording ids: the
    copy rows s * E_hat[U] (zero rows for ids never written) and the wording rows E_hat[wording]
    W_o, so one token costs a tower step, a causal conv, the read S_copy^T q and two small
    products, [|U|, V] and [n_wording, d]. Kept apart, not as one [|U|, V + d] matrix, because U
    grows with every token ever written: a few hundred ids after a day, 10,000 and more after
    months of chat, and at that size the product streams its matrix from memory on every token.
    """

    def __init__(self, model: MemoryModel, state: dict[str, Tensor], traced: bool = True,
                 graphed: bool = True):
        self.model = model
        self.traced = traced  # False: always the eager feed (the reference, for tests)
        c = model.config
        dev = model.device
        with torch.no_grad():
            self.tower_state = full_wake_state(model.tower, {k[len(TOWER_PREFIX):]: v.to(dev).clone()
                                                             for k, v in state.items() if k.startswith(TOWER_PREFIX)})
            S_copy = state[COPY_STATE].to(dev)[:1].float()                       # (1, H, K, V)
            written = state[COPY_WRITTEN].to(dev)[0].bool()                      # (n_vocab,)
            words = model.wording_ids
            ids = torch.unique(torch.cat([written.nonzero().squeeze(1), words]))  # (U,), sorted
            copy_rows = model.emb_v[ids] * (written[ids][:, None] * model.copy_log_scale.exp())  # (U, V)
            word_rows = model.emb[words] @ model.wording.weight                  # (n_wording, d)
            self.ids = ids.cpu().numpy()
            self.readout: Readout = (copy_rows.contiguous(), word_rows.contiguous(),
                                     torch.searchsorted(ids, words))
            self.S_copy = S_copy[0].contiguous()                                 # (H, K', V)
            self.qbuf = torch.zeros(1, c.copy_heads * c.copy_key_dim, c.query_window, device=dev)
        self.n_fed = 0
        self.graph: GraphedFeed | None = None  # captured at the first one-token feed on CUDA
        self._graph_tried = not graphed        # graphed=False: replay the traced step as it is

    @torch.no_grad()
    def feed(self, hidden: np.ndarray, tokens: np.ndarray) -> SparseBias:
        """One pass over T new tokens (hidden [T, n_embd], tokens [T]); returns the logit bias for the
        token that follows the last of them."""
        m, c = self.model, self.model.config
        h = torch.as_tensor(np.asarray(hidden, dtype=np.float32), device=m.device).reshape(1, -1, c.n_embd)
        tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=m.device).reshape(1, -1)
        if h.shape[1] != tok.shape[1] or tok.shape[1] == 0:
            raise ValueError(f"feed needs hidden [T, {c.n_embd}] and tokens [T] with T >= 1, "
                             f"got {tuple(h.shape[1:])} and {tok.shape[1]} tokens")
        step = traced_feed_for(m, h, tok, self.qbuf, self.S_copy, self.readout, self.tower_state) \
            if self.traced and tok.shape[1] == 1 else None
        if step is not None and not self._graph_tried:
            self._graph_tried = True
            self.graph = graph_feed(step, h, tok, self.qbuf, self.S_copy, self.readout, self.tower_state)
            if self.graph is not None:  # from here on the graph's buffers are the live state
                self.qbuf, self.tower_state = self.graph.qbuf, self.graph.state
        if step is not None and self.graph is not None:
            values = self.graph(h, tok)                                          # advances qbuf, state
        elif step is not None:
            values, self.qbuf, self.tower_state = step(h, tok, self.qbuf, self.S_copy, self.readout, self.tower_state)
        else:
            f, self.tower_state = m.tower(m.inputs(h, tok), self.tower_state)    # (1, T, d)
            values, self.qbuf = read_memory(m, f, h, self.qbuf, self.S_copy, *self.readout)  # (U,)
            if self.graph is not None:  # back into the buffers the next replay reads
                self.graph.load(self.qbuf, self.tower_state)
                self.qbuf, self.tower_state = self.graph.qbuf, self.graph.state
        self.n_fed += tok.shape[1]
        return SparseBias(ids=self.ids, values=values.float().cpu().numpy())


class ReplyHook:
    """generate()'s logits hook for one reply: feed each token to the wake session, add its bias.

    Two guards, on the memory's bias only (the backbone's own logits then decide the token). A fact
    comes back as a span the user said once, so a reply that starts repeating itself is not
    recalling; without the guards the copy read's push (tens of logits, far above what the repeat
    penalty takes off) could hold a reply in a loop to its last token: "Your hobby is greenstone
    greenstone greenstone ...".
    - The memory does not push a token that would repeat a three-token run this reply already
      holds ("no repeat n-gram", as in Hugging Face's `no_repeat_ngram_size`). Three tokens, not
      two, so values such as "2020" or "4646" still come back whole.
    - Nor does it push the token the reply has just emitted ("green green", "Labs Labs"), unless
      that token is one of `repeatable`: the backbone's digits, which numbers repeat back to back
      ("1000", "5555"). No value of the episode generator or the natural conversations repeats
      any other token back to back.

    The first call carries the last prompt token (see `generate`); every later one a reply token.

    It also notes which reply tokens the memory chose (`decided`): those it pushed by at least
    `DECIDED_PUSH` logits where the backbone alone would have preferred another token, other than
    the wording path's own reply-template words ("Your", "called"), which are not recollections.
    The assistant turns them into the words it answered from memory and finds where the user said
    them (`dreamchat/recall.py`).
    """

    RUN = 3  # tokens in a run that the memory will not help repeat
    DECIDED_PUSH = 2.0  # logits: a smaller push only breaks near-ties the backbone had anyway

    def __init__(self, session: WakeSession, repeatable: Collection[int] = frozenset()):
        self.session = session
        self.repeatable = repeatable
        self.reply: list[int] = []
        self.followers: dict[tuple[int, ...], set[int]] = {}  # (RUN - 1) tokens -> tokens seen after them
        self.decided: list[bool] = []  # per token of `reply`: the memory's push chose it
        model = getattr(session, "model", None)
        self.wording = frozenset(model.wording_ids.tolist()) if model is not None else frozenset()
        self._prompt_fed = False
        self._step: tuple[SparseBias, int] | None = None  # last step's bias, the backbone's own top token

    def __call__(self, logits: np.ndarray, hidden: np.ndarray, tokens: list[int]) -> np.ndarray:
        token = int(tokens[-1])
        if self._prompt_fed:
            self._add(token)
        self._prompt_fed = True
        bias = self.withhold(self.session.feed(hidden[None, :], np.array([token])))
        if len(bias.ids):
            self._step = (bias, int(np.argmax(logits)))
            logits[bias.ids] += bias.values
        else:
            self._step = None
        return logits

    def _chosen_by_memory(self, token: int) -> bool:
        if self._step is None or token in self.wording:
            return False
        bias, backbone_top = self._step
        if token == backbone_top:
            return False
        i = int(np.searchsorted(bias.ids, token))    # a WakeSession's ids are sorted ...
        if not (i < len(bias.ids) and bias.ids[i] == token):
            at = np.flatnonzero(bias.ids == token)   # ... a stand-in's may not be
            if not len(at):
                return False
            i = int(at[0])
        return bool(bias.values[i] >= self.DECIDED_PUSH)

    def _add(self, token: int) -> None:
        self.decided.append(self._chosen_by_memory(token))
        self.reply.append(token)
        if len(self.reply) >= self.RUN:
            self.followers.setdefault(tuple(self.reply[-self.RUN:-1]), set()).add(token)

    def withhold(self, bias: SparseBias) -> SparseBias:
        """`bias` without the push on tokens that would repeat a run of this reply, or its last
        token."""
        if not self.reply:
            return bias
        last = self.reply[-1]
        mask = None if last in self.repeatable else bias.ids == last
        run = self.followers.get(tuple(self.reply[1 - self.RUN:])) if len(self.reply) >= self.RUN - 1 else None
        if run:
            in_run = np.isin(bias.ids, list(run))
            mask = in_run if mask is None else mask | in_run
        if mask is None or not mask.any():
            return bias
        values = np.where(mask, np.float32(0), bias.values)
        return SparseBias(ids=bias.ids, values=values.astype(np.float32, copy=False))
