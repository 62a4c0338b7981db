"""The from-scratch research model and the experiment that reproduces the paper's sleep results.

ResearchModel = token embedding -> Tower (the memory tower's own A/G blocks) -> RMSNorm -> head.
`forward_episode` is Algorithm 1 of "Language Models Need Sleep" (paper-notes §2):

    S <- 0
    for each window of L tokens (hard eviction: attention never crosses a window):
        h <- Embed(window)
        if the window has no answer token:   N passes   (h, S) <- Blocks(h, S), h dropped   (sleep)
        else:                                one pass   (h, S) <- Blocks(h, S), masked CE     (wake)
    backpropagate the summed CE through every window and every pass

`run_experiment` trains one model per sleep depth N on the same data, in the same order, from the same
initial weights, then measures accuracy by task depth on held-out episodes, the wake cost per
predicted token and the sleep cost per window.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from array import array
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from dreamchat.models.tasks import Task, check_example, get_task
from dreamchat.models.tower import RMSNorm, Tower, TowerConfig

log = logging.getLogger(__name__)


# --- the model ------------------------------------------------------------------------------------


@dataclass
class ResearchConfig:
    vocab_size: int = 8  # token ids 0..vocab_size-1 (set from the task's vocabulary)
    window: int = 24  # L: attention span = eviction period (the paper's Rule 110: 24)
    d_model: int = 256  # residual width (the paper's Rule 110 model: 256)
    layout: str = "AGAG"  # blocks in the paper's order: attention, GDN, attention, GDN
    n_heads: int = 4  # heads of every mixer
    head_dim: int = 64  # GDN key and value width per head (S is head_dim x head_dim per head)
    mlp_ratio: float = 2.0  # MLP hidden width / d_model
    checkpoint: bool = True  # recompute each window in backward instead of storing its activations

    def tower_config(self) -> TowerConfig:
        # chunk_size = window: the GDN's chunked path handles a whole window in one chunk.
        return TowerConfig(d_model=self.d_model, layout=self.layout, n_heads=self.n_heads,
                           mlp_ratio=self.mlp_ratio, window=self.window, head_k_dim=self.head_dim,
                           head_v_dim=self.head_dim, chunk_size=self.window)


@dataclass
class EpisodeOutput:
    """The answers of a batch of episodes, flattened: one row per answer token."""

    loss: Tensor  # () mean cross-entropy over the answer tokens
    logits: Tensor  # (A, vocab) logits that predict each answer token
    targets: Tensor  # (A,) the answer tokens
    rows: Tensor  # (A,) the episode (batch index) each answer belongs to


class ResearchModel(nn.Module):
    def __init__(self, config: ResearchConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.tower = Tower(config.tower_config())
        self.norm = RMSNorm(config.d_model, 1e-5)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)

    def _sleep_window(self, chunk: Tensor, S: dict[str, Tensor], passes: int) -> dict[str, Tensor]:
        return self.tower.sleep(self.embed(chunk), S, passes)

    def _wake_window(self, chunk: Tensor, S: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        h, state = self.tower(self.embed(chunk), S)
        return self.norm(h), self.tower.long_term(state)

    def consolidation_windows(self, loss_mask: Tensor, window: int) -> list[bool]:
        """For each window: True if no episode of the batch has an answer in it (sleep), else False."""
        B, T = loss_mask.shape
        if T % window:
            raise ValueError(f"episode length {T} is not a multiple of the window {window}")
        return (~loss_mask.view(B, T // window, window).bool().any(-1).any(0)).tolist()

    def forward_episode(self, tokens: Tensor, loss_mask: Tensor, window: int, passes: int) -> EpisodeOutput:
        """Algorithm 1 on a batch of episodes. tokens, loss_mask: (B, T) with T a multiple of `window`;
        loss_mask[b, t] = 1 marks an answer token, predicted from position t - 1 of the same window.
        A window is a sleep window when no episode of the batch has an answer in it (all tasks here
        share one layout per batch). Returns the answers' logits and the mean CE."""
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        B, T = tokens.shape
        sleeping = self.consolidation_windows(loss_mask, window)
        use_ckpt = self.config.checkpoint and torch.is_grad_enabled()
        S = self.tower.initial_state(B, device=tokens.device, dtype=self.embed.weight.dtype)
        logits, targets, rows = [], [], []
        for n, sleep in enumerate(sleeping):
            chunk = tokens[:, n * window:(n + 1) * window]  # (B, L)
            if sleep:
                if use_ckpt:
                    S = checkpoint(self._sleep_window, chunk, S, passes, use_reentrant=False)
                else:
                    S = self._sleep_window(chunk, S, passes)
                continue
            if use_ckpt:
                h, S = checkpoint(self._wake_window, chunk, S, use_reentrant=False)
            else:
                h, S = self._wake_window(chunk, S)
            answer = loss_mask[:, n * window + 1:(n + 1) * window].bool()  # (B, L-1): answer at t+1
            logits.append(self.head(h[:, :-1][answer]))  # (A_n, vocab)
            targets.append(chunk[:, 1:][answer])  # (A_n,)
            rows.append(answer.nonzero()[:, 0])  # (A_n,)
        if not logits:
            raise ValueError("the batch has no answer token: nothing to predict")
        logits_, targets_ = torch.cat(logits), torch.cat(targets)
        return EpisodeOutput(F.cross_entropy(logits_, targets_), logits_, targets_, torch.cat(rows))


# --- data -----------------------------------------------------------------------------------------


@dataclass
class Episodes:
    """A fixed set of episodes as tensors (generated once, reused for every N)."""

    tokens: Tensor  # (n, T) int16
    loss_mask: Tensor  # (n, T) bool
    depth: Tensor  # (n,) int16

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def batch(self, index: slice | Tensor, device) -> tuple[Tensor, Tensor, Tensor]:
        return (self.tokens[index].long().to(device), self.loss_mask[index].to(device),
                self.depth[index].long().to(device))


def make_episodes(task: Task, depths: list[int], n: int, seed: int, *,
                  exclude: set[bytes] | None = None) -> Episodes:
    """n episodes with depths drawn uniformly from `depths`, from Random(seed). Episodes whose tokens
    are in `exclude` (a training set's `fingerprints`) are redrawn, so evaluation data is held out."""
    rng = random.Random(seed)
    tokens, masks, ds = [], [], []
    redrawn = 0
    while len(tokens) < n:
        depth = depths[len(tokens) % len(depths)] if exclude is not None else rng.choice(depths)
        ex = task.example(rng, depth)
        if exclude is not None and array("h", ex.tokens).tobytes() in exclude:
            redrawn += 1
            if redrawn > 100 * n:
                raise ValueError(f"{task.name}: cannot find {n} held-out episodes; enlarge the task")
            continue
        tokens.append(ex.tokens)
        masks.append(ex.loss_mask)
        ds.append(ex.depth)
    check_example(task, ex)
    if redrawn:
        log.info("%s: redrew %d evaluation episodes that also occur in the training data", task.name, redrawn)
    return Episodes(torch.tensor(tokens, dtype=torch.int16), torch.tensor(masks, dtype=torch.bool),
                    torch.tensor(ds, dtype=torch.int16))


def fingerprints(episodes: Episodes) -> set[bytes]:
    """The token sequences of a set of episodes, for `make_episodes(exclude=...)`."""
    return {row.tobytes() for row in episodes.tokens.numpy()}


# --- the experiment -------------------------------------------------------------------------------


@dataclass
class ExperimentConfig:
    task: str = "rule110"  # rule110 | depo | arithmetic
    task_args: dict = field(default_factory=dict)  # overrides of the task's config fields
    train_depths: list[int] = field(default_factory=lambda: [0, 1, 2, 3])  # depths seen in training
    passes: list[int] = field(default_factory=lambda: [1, 2, 4])  # sleep depths N, one model each
    d_model: int = 128  # model width
    n_heads: int = 4  # heads per mixer
    head_dim: int = 32  # GDN key/value width per head
    layout: str = "AGAG"  # block order (the paper's)
    mlp_ratio: float = 2.0  # MLP width / d_model
    steps: int = 2000  # optimizer steps per model
    batch_size: int = 64  # episodes per step
    lr: float = 3e-3  # AdamW peak learning rate (tiny models take a large lr)
    weight_decay: float = 0.1  # on matrices only
    warmup: int = 100  # linear warm-up steps, then cosine decay to lr / 10
    eval_per_depth: int = 256  # held-out episodes per depth
    seed: int = 0  # model initialisation (identical for every N)
    data_seed: int = 1  # training data and its order (identical for every N)
    eval_seed: int = 2  # held-out data
    checkpoint: bool = True  # activation checkpointing per window
    cost_repeats: int = 30  # timed samples of wake and sleep cost per N
    minutes: float = 0.0  # > 0: size the step count to this much training wall time (`steps` is the cap)
    train_pool: int = 1 << 18  # training episodes generated at most; longer runs cycle through them


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.dim() >= 2 and not name.startswith("embed") and not getattr(p, "_no_weight_decay", False):
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_at(step: int, cfg: ExperimentConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def build_model(cfg: ExperimentConfig, task: Task) -> ResearchModel:
    """The model for `task`, initialised from cfg.seed (the same weights for every N)."""
    torch.manual_seed(cfg.seed)
    return ResearchModel(ResearchConfig(vocab_size=len(task.vocab), window=task.window,
                                        d_model=cfg.d_model, layout=cfg.layout, n_heads=cfg.n_heads,
                                        head_dim=cfg.head_dim, mlp_ratio=cfg.mlp_ratio,
                                        checkpoint=cfg.checkpoint))


class _Trainer:
    """One model, its optimizer and its loss curve: one per sleep depth N."""

    def __init__(self, model: ResearchModel, cfg: ExperimentConfig, passes: int):
        self.model, self.passes = model, passes
        self.opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))
        self.curve: list[dict] = []
        self.seconds = 0.0  # wall time of this model's steps alone (synchronised on CUDA)
        self.cpu_seconds = 0.0

    def step(self, tokens: Tensor, mask: Tensor, lr: float, log_it: bool, step: int) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        for group in self.opt.param_groups:
            group["lr"] = lr
        out = self.model.forward_episode(tokens, mask, self.model.config.window, self.passes)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        loss = out.loss.item()  # also synchronises a GPU, so the timing below is the step's own
        if not math.isfinite(loss):
            raise FloatingPointError(f"N={self.passes}: loss became {loss} at step {step}; lower the lr")
        if log_it:
            acc = (out.logits.argmax(-1) == out.targets).float().mean().item()
            self.curve.append({"step": step, "loss": round(loss, 5), "train_accuracy": round(acc, 4)})
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.process_time() - c0
        return loss


SIZING_STEPS = 20  # with cfg.minutes: lockstep steps timed before the step count is fixed


def train_lockstep(trainers: list[_Trainer], data: Episodes, cfg: ExperimentConfig, device,
                   on_step: Callable[[int, int, list[float]], None] | None = None) -> int:
    """Train every model on the same batches, step by step in lockstep, so that every N gets exactly
    the same number of steps. Returns that number.

    With cfg.minutes > 0 the step count is not known in advance: the first SIZING_STEPS steps (all in
    warm-up, whose lr does not depend on the total) are timed, then the total is fixed to fit the
    budget, capped at cfg.steps. Should the machine slow down later, training stops at 1.15x the
    budget; the step count actually reached is returned and recorded."""
    total = cfg.steps
    started = time.perf_counter()
    step = 0
    while step < total:
        lo = (step * cfg.batch_size) % len(data)
        tokens, mask, _ = data.batch(slice(lo, lo + cfg.batch_size), device)
        lr = _lr_at(step, replace(cfg, steps=total))
        log_it = step % 50 == 0 or step == total - 1
        losses = [t.step(tokens, mask, lr, log_it, step) for t in trainers]
        step += 1
        if cfg.minutes and step == SIZING_STEPS:
            per_step = (time.perf_counter() - started) / step
            total = max(step + 1, min(cfg.steps, int(60 * cfg.minutes / per_step)))
            log.info("%.0f ms per lockstep step: training %d steps to fit %.1f minutes",
                     1000 * per_step, total, cfg.minutes)
        if log_it and on_step is not None:
            on_step(step - 1, total, losses)
        if cfg.minutes and time.perf_counter() - started > 1.15 * 60 * cfg.minutes:
            log.warning("over the time budget: stopping every N at step %d of %d", step, total)
            break
    return step


def train(model: ResearchModel, data: Episodes, cfg: ExperimentConfig, passes: int, device) -> list[dict]:
    """Train one model on `data` in order, cfg.batch_size episodes per step; returns the loss curve."""
    trainer = _Trainer(model, cfg, passes)
    model.train()
    train_lockstep([trainer], data, cfg, device)
    return trainer.curve


@torch.no_grad()
def evaluate(model: ResearchModel, data: Episodes, passes: int, device, batch_size: int = 256) -> dict:
    """Accuracy by depth on `data`: per answer token, and per episode (every answer right)."""
    model.eval()
    window = model.config.window
    correct_by_depth: dict[int, list[float]] = {}
    exact_by_depth: dict[int, list[float]] = {}
    for lo in range(0, len(data), batch_size):
        tokens, mask, depth = data.batch(slice(lo, lo + batch_size), device)
        out = model.forward_episode(tokens, mask, window, passes)
        hit = (out.logits.argmax(-1) == out.targets).float()  # (A,)
        per_row_hits = torch.zeros(tokens.shape[0], device=device).index_add_(0, out.rows, hit)
        per_row_total = torch.zeros(tokens.shape[0], device=device).index_add_(0, out.rows, torch.ones_like(hit))
        for d, h, t in zip(depth.tolist(), per_row_hits.tolist(), per_row_total.tolist()):
            correct_by_depth.setdefault(d, [0.0, 0.0])
            correct_by_depth[d][0] += h
            correct_by_depth[d][1] += t
            exact_by_depth.setdefault(d, []).append(float(h == t))
    return {d: {"accuracy": c / t, "exact": statistics.fmean(exact_by_depth[d]), "episodes": len(exact_by_depth[d])}
            for d, (c, t) in sorted(correct_by_depth.items())}


class CostProbe:
    """Wake cost per predicted token and sleep cost per window of one trained model (batch 1).

    Wake: the prediction window is streamed token by token (one forward pass per token, attention
    cache within the window, as at chat time), starting from the consolidated S. Sleep: `passes`
    passes over one consolidation window. Each call of `sample` times one of each; the runner calls
    the probes of all N in turn, so that load from other processes falls on every N alike."""

    def __init__(self, model: ResearchModel, data: Episodes, passes: int, device):
        self.model, self.passes, self.device = model, passes, torch.device(device)
        window = model.config.window
        tokens, mask, _ = data.batch(slice(0, 1), device)
        sleeping = model.consolidation_windows(mask, window)
        first_wake = sleeping.index(False)
        if first_wake == 0:
            raise ValueError("the episode opens with a prediction window: no sleep to measure")
        with torch.no_grad():
            S = model.tower.initial_state(1, device=device)
            for n in range(first_wake):
                S = model._sleep_window(tokens[:, n * window:(n + 1) * window], S, passes)
        self.S = S
        self.sleep_chunk = tokens[:, (first_wake - 1) * window:first_wake * window]  # (1, L)
        self.wake_chunk = tokens[:, first_wake * window:(first_wake + 1) * window]  # (1, L)
        self.sleep_ms: list[float] = []
        self.wake_ms: list[float] = []  # per token

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def sample(self) -> None:
        self.model.eval()
        t0 = time.perf_counter()
        self.model._sleep_window(self.sleep_chunk, self.S, self.passes)
        self._sync()
        t1 = time.perf_counter()
        state = dict(self.S)
        for t in range(self.wake_chunk.shape[1]):
            h, state = self.model.tower(self.model.embed(self.wake_chunk[:, t:t + 1]), state)
            self.model.head(self.model.norm(h))
        self._sync()
        t2 = time.perf_counter()
        self.sleep_ms.append((t1 - t0) * 1000)
        self.wake_ms.append((t2 - t1) * 1000 / self.wake_chunk.shape[1])

    def summary(self) -> dict:
        """Minimum (the least disturbed run) and median over the samples, warm-up dropped."""
        sleep, wake = self.sleep_ms[1:], self.wake_ms[1:]
        return {"sleep_ms_per_window": round(min(sleep), 3),
                "sleep_ms_per_window_median": round(statistics.median(sleep), 3),
                "wake_ms_per_token": round(min(wake), 3),
                "wake_ms_per_token_median": round(statistics.median(wake), 3)}


def measure_costs(cfg: ExperimentConfig, device: str | torch.device, repeats: int = 200) -> dict:
    """Wake ms per predicted token and sleep ms per window for every N in cfg.passes, on freshly
    initialised models (no training: the cost of a pass does not depend on the weights' values),
    sampled in turn across N so that load from other processes falls on every N alike."""
    task = get_task(cfg.task, **cfg.task_args)
    episode = make_episodes(task, [task.depths[-1]], 1, cfg.eval_seed)
    probes = [CostProbe(build_model(cfg, task).to(device), episode, n, device) for n in cfg.passes]
    for _ in range(repeats + 1):
        for probe in probes:
            probe.sample()
    return {"task": task.name, "task_config": asdict(task), "window": task.window,
            "experiment": asdict(cfg), "device": str(device), "torch_threads": torch.get_num_threads(),
            "repeats": repeats, "costs": {str(n): p.summary() for n, p in zip(cfg.passes, probes)}}


def run_experiment(cfg: ExperimentConfig, device: str | torch.device) -> dict:
    """Train one model per N in cfg.passes on identical data and init; return everything measured."""
    task = get_task(cfg.task, **cfg.task_args)
    bad = [d for d in cfg.train_depths if d not in task.depths]
    if bad:
        raise ValueError(f"train depths {bad} are outside {cfg.task}'s depths {list(task.depths)}")
    t0 = time.perf_counter()
    train_data = make_episodes(task, cfg.train_depths, min(cfg.steps * cfg.batch_size, cfg.train_pool),
                               cfg.data_seed)
    eval_data = make_episodes(task, list(task.depths), cfg.eval_per_depth * len(task.depths),
                              cfg.eval_seed, exclude=fingerprints(train_data))
    data_s = time.perf_counter() - t0
    log.info("%s: window %d, episode %d tokens, %d training / %d held-out episodes (%.1f s)",
             task.name, task.window, task.seq_len, len(train_data), len(eval_data), data_s)

    trainers = []
    for passes in cfg.passes:
        model = build_model(cfg, task).to(device)
        model.train()
        trainers.append(_Trainer(model, cfg, passes))
    t_start = time.perf_counter()

    def on_step(step: int, total: int, losses: list[float]) -> None:
        log.info("step %d/%d loss %s (%.0f s)", step, total,
                 " ".join(f"N={t.passes}:{loss:.4f}" for t, loss in zip(trainers, losses)),
                 time.perf_counter() - t_start)

    steps = train_lockstep(trainers, train_data, cfg, device, on_step)
    runs, probes = [], []
    for trainer in trainers:
        t_eval = time.perf_counter()
        by_depth = evaluate(trainer.model, eval_data, trainer.passes, device)
        eval_s = time.perf_counter() - t_eval
        log.info("N=%d: %s", trainer.passes, ", ".join(f"d{d} {r['accuracy']:.3f}" for d, r in by_depth.items()))
        runs.append({"passes": trainer.passes,
                     "parameters": sum(p.numel() for p in trainer.model.parameters()),
                     "train_seconds": round(trainer.seconds, 1),
                     "train_ms_per_step": round(1000 * trainer.seconds / steps, 1),
                     "train_cpu_ms_per_step": round(1000 * trainer.cpu_seconds / steps, 1),
                     "eval_seconds": round(eval_s, 1), "curve": trainer.curve,
                     "accuracy": {str(d): r for d, r in by_depth.items()}})
        probes.append(CostProbe(trainer.model, eval_data, trainer.passes, device))

    for _ in range(cfg.cost_repeats + 1):  # round robin over N; the first round is a warm-up
        for probe in probes:
            probe.sample()
    for run, probe in zip(runs, probes):
        run.update(probe.summary())

    return {"task": task.name, "task_config": asdict(task), "vocab_size": len(task.vocab),
            "window": task.window, "seq_len": task.seq_len, "depths": list(task.depths), "chance": task.chance,
            "train_depths": list(cfg.train_depths),
            "out_of_range_depths": [d for d in task.depths if d not in cfg.train_depths],
            "experiment": asdict(replace(cfg, steps=steps)), "planned_steps": cfg.steps,
            "device": str(device), "torch_threads": torch.get_num_threads(),
            "train_episodes": len(train_data), "eval_episodes": len(eval_data),
            "data_seconds": round(data_s, 1), "wall_seconds": round(time.perf_counter() - t0, 1),
            "runs": runs}
