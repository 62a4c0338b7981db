"""Training of the memory model's slow weights (`dreamchat train`; also `torchrun -m dreamchat.models.train`).

1. **Data** (`models/train_data.py`). Multi-day episodes from `models/episodes.py` (facts stated
   on one day, asked about on a later one, plus small talk and questions about facts never
   stated). Every day and every probe (question + target reply) is rendered exactly as the
   assistant would see it and decoded once with llama.cpp; hidden states go to a `FeatureCache`
   (float16 shards), keyed by the backbone's fingerprint and a hash of the texts, together with an
   `index.json` (which sequences form which episode) and the backbone's output embeddings. Building
   the cache is the slow part (~450 tokens/s on 2 cores); it happens once, on rank 0, and resumes
   shard by shard.
2. **Objective.** For a batch of episodes: sleep day after day (Algorithm 1, `passes` passes, drawn
   per step from `--passes`), then wake on every probe from the state of the nights before it, and
   take the cross-entropy of the fused logits z + bias on the reply tokens (value tokens weighted
   more), plus a smaller cross-entropy on the later days' ordinary assistant text, so the gate
   learns to stay shut when memory has nothing to add. Backbone logits are h E^T from the cached
   hidden states (same argmax as llama.cpp's, llama-cpp-notes §4(a)). The memory's bias is zero
   outside the written and wording ids, so the exact full-vocabulary softmax needs only those
   columns plus each position's precomputed log-sum-exp. Gradients flow end to end through every
   pass, day and chunk (the paper's BPTT).
3. **Loop.** AdamW, warm-up + cosine, gradient clipping; DistributedDataParallel when started under
   torchrun (gloo on CPU, NCCL on GPU); a tqdm bar on rank 0; checkpoints every `--ckpt-every`
   steps and `--resume`; teacher-forced recall on held-out episodes (values and phrasings never seen
   in training) at the end and every `--eval-every` steps; the final weights as safetensors.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dreamchat.models.train_data import (EpisodeRef, FeatureSet, build_feature_set, make_batch, with_extra_nights,
                                         with_history_nights, wording_vocabulary)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ arguments

def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, not {text!r}")
    return value


def _fact_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in text.split(","))
    except ValueError:
        low = high = 0
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"must be LOW,HIGH with 1 <= LOW <= HIGH, like 3,6; not {text!r}")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `dreamchat train` (`--model`, `--home`, `--weights` come from the main CLI)."""
    g = parser.add_argument_group("data")
    g.add_argument("--episodes", type=int, default=500, help="one-night training episodes (default 500)")
    g.add_argument("--long-episodes", type=int, default=150,
                   help="extra training episodes with --long-nights nights between facts and questions (default 150)")
    g.add_argument("--long-nights", type=int, default=3, help="nights of the long episodes (default 3)")
    g.add_argument("--binding", type=int, default=0, metavar="N",
                   help="N more training episodes that need two facts joined: two relatives, each tied to a name "
                        "and given a fact of the same kind (make_binding_episodes; default 0)")
    g.add_argument("--by-name", type=_probability, default=0.0,
                   help="chance that a binding episode's probe asks by the person's name instead of the "
                        "relative (\"Where does Ugo work?\"), so the memory learns to key facts by name "
                        "(default 0)")
    g.add_argument("--eval-episodes", type=int, default=150, help="held-out episodes (default 150)")
    g.add_argument("--data-seed", type=int, default=1, help="seed of the episode generator")
    g.add_argument("--cache", metavar="DIR", default=None,
                   help="feature cache folder (default: the dreamchat cache folder / features)")
    g.add_argument("--chat", type=_probability, default=0.0,
                   help="chance of a general-knowledge exchange on each later day of an episode (default 0)")
    g.add_argument("--untold", type=_probability, default=0.0,
                   help="chance that an episode's question day also asks about something it never stated, "
                        "answered by saying so, so the memory learns to stay out of such replies (default 0)")
    g.add_argument("--invented", type=_probability, default=0.0,
                   help="chance that a training fact's proper-name value is a made-up word (default 0)")
    g.add_argument("--facts-per-day", type=_fact_range, default=(1, 3), metavar="LOW,HIGH",
                   help="facts told on each fact day of a training episode (default 1,3, as the held-out "
                        "episodes); more facts a day teach the memory to tell them apart")
    g.add_argument("--data", metavar="DIR", action="append", default=None,
                   help="train on an existing feature set (a cache sub-folder with index.json; repeat to "
                        "train on several as one); no backbone needed")
    g.add_argument("--openings", metavar="WEIGHTS", default=None,
                   help="on-policy replies: these memory weights answer each training question as the app "
                        "would, and the reply, its value corrected, is the target (models/openings.py)")
    g.add_argument("--openings-chance", type=_probability, default=0.6,
                   help="chance that a probe's target is the --openings reply, not a template (default 0.6)")
    g.add_argument("--shard-size", type=int, default=20, help="episodes per feature shard (default 20)")
    g.add_argument("--echo", type=_probability, default=0.0, metavar="MIX",
                   help="sleep on days whose user turns are also read a second time, mixed MIX of the way "
                        "to that reading (features.echo_hidden; default 0: as the app reads them)")
    g.add_argument("--eval-data", metavar="DIR", default=None, help="held-out feature set for --data")
    g.add_argument("--app-writes", action="store_true",
                   help="sleep as the app does: no value written from the assistant's turns or the system "
                        "prompt's own words (features.unwritten_positions; reads the backbone's tokenizer). "
                        "Without it every position writes, as for the shipped weights up to v12")
    t = parser.add_argument_group("training")
    t.add_argument("--steps", type=int, default=1500, help="optimizer steps (default 1500)")
    t.add_argument("--batch", type=int, default=16, help="episodes per step, all ranks together (default 16)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    t.add_argument("--passes", default="1,2,4", help="sleep passes drawn per step (default 1,2,4)")
    t.add_argument("--eval-passes", type=int, default=2, help="sleep passes for evaluation (default 2)")
    t.add_argument("--value-weight", type=float, default=3.0, help="loss weight of value tokens (default 3)")
    t.add_argument("--neutral-weight", type=float, default=0.3,
                   help="loss weight of ordinary assistant text on later days (default 0.3)")
    t.add_argument("--kl-weight", type=float, default=1.0,
                   help="weight of KL(backbone || fused) on later days' ordinary text (default 1)")
    t.add_argument("--max-neutral", type=int, default=32,
                   help="ordinary-text positions scored per episode and day (default 32)")
    t.add_argument("--extra-nights", type=int, default=0, metavar="K",
                   help="sleep up to K more days of unrelated conversation, taken from other episodes, "
                        "before an episode's questions, so retention over many nights is trained (default 0)")
    t.add_argument("--extra-chance", type=_probability, default=0.5,
                   help="chance that an episode gets --extra-nights (default 0.5)")
    t.add_argument("--history-nights", type=int, default=0, metavar="K",
                   help="sleep up to K days of unrelated conversation, taken from other episodes, before an "
                        "episode's first day, so writing into a memory in long use is trained (default 0)")
    t.add_argument("--history-chance", type=_probability, default=0.5,
                   help="chance that an episode gets --history-nights (default 0.5)")
    t.add_argument("--dropout", type=_probability, default=0.0,
                   help="dropout on the tower's input while training, against overfitting the phrasings (default 0)")
    t.add_argument("--config", metavar="JSON", default=None, help="MemoryConfig overrides as JSON")
    t.add_argument("--train-only", metavar="PREFIX", action="append", default=None,
                   help="train only the slow weights whose names start with PREFIX (repeatable; e.g. "
                        "copy.hidden_proj after --init added it); the others stay as loaded. When only "
                        "wake-time weights train (gate., copy.query, copy_log_scale, wording.), the result "
                        "still reads memories slept with --init's weights")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto (the GPU when CUDA is there, else the CPU), cpu or cuda")
    o = parser.add_argument_group("output")
    o.add_argument("--out", metavar="PATH", default="memory.safetensors", help="where to write the weights")
    o.add_argument("--max-minutes", type=float, default=0,
                   help="stop (checkpoint, save, evaluate) after this many minutes of training (0 = no limit)")
    o.add_argument("--ckpt-every", type=int, default=200, help="checkpoint every N steps (default 200)")
    o.add_argument("--eval-every", type=int, default=0, help="held-out evaluation every N steps (0 = end only)")
    o.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out")
    o.add_argument("--init", metavar="WEIGHTS", default=None,
                   help="start from these memory weights (.safetensors or .ckpt; fresh optimizer); --config may "
                        "widen copy_key_dim, key_window and query_window, add copy_hidden, or set copy_key_power")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("--build-only", choices=["train", "test", "both"], default=None,
                   help="only build the feature set(s) and stop (e.g. two processes building one each)")


# ------------------------------------------------------------------------------------------ objective

def _objective_class():
    """The training objective, defined on first use so that `dreamchat train --help` (and the CLI
    parser, which imports this module) never pays for importing torch."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Objective(nn.Module):
        """Wraps a MemoryModel so DistributedDataParallel sees one forward: batch -> (loss, stats)."""

        def __init__(self, model, embeddings_raw: np.ndarray, max_neutral: int = 32, kl_weight: float = 1.0):
            super().__init__()
            self.model = model
            self.register_buffer("E_raw", torch.as_tensor(np.asarray(embeddings_raw, np.float32)),
                                 persistent=False)
            self.max_neutral = max_neutral
            self.kl_weight = kl_weight

        def nights(self, batch: dict, passes: int) -> list[dict]:
            """States before each day: [empty, after day 0, after days 0-1, ...] (differentiable)."""
            m = self.model
            B = batch["days"][0]["tokens"].shape[0]
            state = {k: v.to(m.device) for k, v in m.empty_state(B).items()}
            states = [state]
            for day in batch["days"]:
                new = m.sleep(day["hidden"].float(), day["tokens"], day["next"], day["valid"], state, passes)
                keep = day["present"]
                state = {k: torch.where(keep.view(-1, *[1] * (v.dim() - 1)), new[k], v) for k, v in state.items()}
                states.append(state)
            return states

        def position_loss(self, hidden, lse, target, weight, gate, read, wording, written, kl_weight=0.0):
            """Exact full-vocabulary CE of z + bias at N positions, computing only the bias's columns.
            hidden [N, n_embd] (backbone, float), lse [N] = logsumexp(h E^T), target [N], weight [N];
            gate [N], read/wording [N, n_embd], written [N, n_vocab]. Returns the sum of weighted CE,
            plus kl_weight x the weighted KL(backbone || fused): on text the memory knows nothing
            about, the fused distribution should be the backbone's whole distribution, not only
            give the observed token the same probability."""
            m = self.model
            cols = torch.unique(torch.cat([written.any(0).nonzero().squeeze(1), m.wording_ids, target]))
            z_c = hidden @ self.E_raw[cols].t()                                         # (N, C)
            b_c = m.bias_on(cols, gate, read, wording, written)                         # (N, C)
            # logsumexp over the columns outside C, from the full lse (float64 against cancellation)
            p_b = torch.exp((z_c - lse[:, None]).double())                             # (N, C) backbone probs
            mass_c = p_b.sum(-1).clamp(max=1 - 1e-12)
            lse_rest = (lse.double() + torch.log1p(-mass_c)).float()                     # (N,)
            fused = z_c + b_c
            total = torch.logaddexp(lse_rest, torch.logsumexp(fused, dim=-1))           # (N,)
            t_col = torch.searchsorted(cols, target)                                    # (N,)
            logp = fused.gather(1, t_col[:, None]).squeeze(1) - total
            loss = -(logp * weight).sum()
            if kl_weight:
                # KL(p_b || p_f) = (lse_f - lse_b) - sum_v p_b(v) b_v, and b is zero outside C
                kl = total - lse - (p_b.float() * b_c).sum(-1)                          # (N,)
                loss = loss + kl_weight * (kl * weight).sum()
            return loss

        def forward(self, batch: dict, passes: int):
            m = self.model
            states = self.nights(batch, passes)
            loss = torch.zeros((), device=m.device)
            norm = torch.zeros((), device=m.device)
            stats = {}
            if "p_tokens" in batch:
                # Each probe wakes from the state of the nights before its day.
                stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}     # (D+1, B, ...)
                pst = {k: v[batch["probe_day"], batch["probe_episode"]] for k, v in stacked.items()}
                gate, read, wording = m.wake_features(batch["p_hidden"].float(), batch["p_tokens"], pst)
                w = batch["p_weight"]
                at = w[:, :-1].nonzero(as_tuple=True)
                tgt = batch["p_tokens"][:, 1:][at]
                ce = self.position_loss(
                    batch["p_hidden"][at].float(), batch["p_lse"][at], tgt, w[at], gate[at], read[at],
                    wording[at], pst["copy.written"][at[0]])
                loss, norm = loss + ce, norm + w[at].sum()
                stats.update(probe_ce=float(ce.detach()) / max(float(w[at].sum()), 1e-9),
                             gate=float(gate[at].mean().detach()))
            # Ordinary assistant text of later days, from the state of the nights before it.
            for d, day in enumerate(batch["days"]):
                w = day["weight"][:, :-1]
                if d == 0 or not bool((w > 0).any()):
                    continue
                sel = w.nonzero(as_tuple=True)
                if len(sel[0]) > self.max_neutral * w.shape[0]:
                    keep = torch.randperm(len(sel[0]), device=w.device)[: self.max_neutral * w.shape[0]]
                    sel = (sel[0][keep], sel[1][keep])
                gate, read, wording = m.wake_features(day["hidden"].float(), day["tokens"], states[d])
                tgt = day["tokens"][:, 1:][sel]
                ce = self.position_loss(day["hidden"][sel].float(), day["lse"][sel], tgt, w[sel],
                                        gate[sel], read[sel], wording[sel], states[d]["copy.written"][sel[0]],
                                        kl_weight=self.kl_weight)
                loss, norm = loss + ce, norm + w[sel].sum()
                stats["neutral_gate"] = float(gate[sel].mean().detach())
            return loss / norm.clamp(min=1e-9), stats

    return Objective


# ------------------------------------------------------------------------------------------ evaluation

def evaluate(objective, fs: FeatureSet, passes: int, device, batch_size: int = 16, turns=None) -> dict:
    """Teacher-forced recall on a feature set: a probe counts as recalled when every value token is the
    argmax of the fused logits (memory on) given the reply so far; the same for the backbone alone
    (memory off) and with the memory wiped (empty state), and the neutral-text perplexity ratio.
    `turns`: as for `make_batch`."""
    import torch

    m = objective.model
    was_training = m.training
    m.eval()
    res = {"probes": 0, "recalled": 0, "backbone": 0, "wiped": 0, "by_kind": {}}
    nll_mem = nll_base = n_neutral = 0.0
    with torch.no_grad():
        for start in range(0, len(fs.episodes), batch_size):
            ids = list(range(start, min(start + batch_size, len(fs.episodes))))
            batch = make_batch(fs, ids, device, turns)
            states = objective.nights(batch, passes)
            empty = {k: torch.zeros_like(v) for k, v in states[0].items()}
            if "p_tokens" in batch:
                stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
                pst = {k: v[batch["probe_day"], batch["probe_episode"]] for k, v in stacked.items()}
                at = (batch["p_weight"][:, :-1] > 1.0).nonzero(as_tuple=True)      # value tokens
                P = batch["p_tokens"].shape[0]
                has_value = torch.zeros(P, dtype=torch.bool, device=device)
                has_value[at[0]] = True
                z = batch["p_hidden"][at].float() @ objective.E_raw.t()                # (n, n_vocab)
                tgt = batch["p_tokens"][:, 1:][at]
                wiped = {k: v[batch["probe_episode"]] for k, v in empty.items()}

                def recalled(logits):
                    ok = torch.ones(P, dtype=torch.bool, device=device)
                    ok[at[0][logits.argmax(-1) != tgt]] = False
                    return ok & has_value

                outcome = {"backbone": recalled(z)}
                for label, st in (("memory", pst), ("wiped", wiped)):
                    gate, read, wording = m.wake_features(batch["p_hidden"].float(), batch["p_tokens"], st)
                    bias = m.dense_bias(gate[at], read[at], wording[at], st["copy.written"][at[0]])
                    outcome[label] = recalled(z + bias)
                for i, ref in enumerate(batch["probe_refs"]):
                    if not bool(has_value[i]):
                        continue
                    res["probes"] += 1
                    res["recalled"] += bool(outcome["memory"][i])
                    res["backbone"] += bool(outcome["backbone"][i])
                    res["wiped"] += bool(outcome["wiped"][i])
                    k = res["by_kind"].setdefault(ref.kind or "fact", [0, 0])
                    k[0] += bool(outcome["memory"][i])
                    k[1] += 1
            for d, day in enumerate(batch["days"]):
                w = day["weight"][:, :-1]
                if d == 0 or not bool((w > 0).any()):
                    continue
                gate, read, wording = m.wake_features(day["hidden"].float(), day["tokens"], states[d])
                sel = w.nonzero(as_tuple=True)
                h = day["hidden"][sel].float()
                z = h @ objective.E_raw.t()
                bias = m.dense_bias(gate[sel], read[sel], wording[sel], states[d]["copy.written"][sel[0]])
                tgt = day["tokens"][:, 1:][sel]
                nll_base += float(-(torch.log_softmax(z, -1).gather(1, tgt[:, None])).sum())
                nll_mem += float(-(torch.log_softmax(z + bias, -1).gather(1, tgt[:, None])).sum())
                n_neutral += len(tgt)
    m.train(was_training)
    n = max(res["probes"], 1)
    out = {"probes": res["probes"], "recall": res["recalled"] / n, "backbone_recall": res["backbone"] / n,
           "wiped_recall": res["wiped"] / n,
           "by_kind": {k: round(a / b, 4) for k, (a, b) in sorted(res["by_kind"].items())}}
    if n_neutral:
        out["neutral_ppl_ratio"] = math.exp((nll_mem - nll_base) / n_neutral)
        out["neutral_tokens"] = int(n_neutral)
    return out


# ------------------------------------------------------------------------------------------ loop

def _device(choice: str, local_rank: int):
    """Where this process trains: its own GPU (auto, when CUDA is there, or cuda), else the CPU."""
    import torch
    from dreamchat.errors import DreamchatError
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DreamchatError("--device cuda, but torch sees no CUDA device; train with --device cpu (or auto)")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise DreamchatError(f"process {local_rank} has no GPU of its own (this machine has {n}); start at most "
                             f"one process per GPU (torchrun --nproc_per_node {n}) or train with --device cpu")
    return torch.device("cuda", local_rank)


def _distributed(device):
    """(rank, world) from torchrun's environment, the process group initialised if world > 1: NCCL
    between GPUs, gloo between CPU processes (also on a machine that has a GPU)."""
    import torch.distributed as dist
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def _leave_process_group(world: int) -> None:
    """Wait for every rank, then close the group: a process that exits with its gloo group still
    open can abort (SIGABRT, 'terminate called without an active exception') once its peer is gone."""
    if world <= 1:
        return
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()


def _ranks_in_sync(model, world: int) -> bool:
    """True when every rank holds the same weights (DDP keeps them equal; a bug would not)."""
    if world <= 1:
        return True
    import torch
    import torch.distributed as dist
    total = sum(p.detach().double().sum() for p in model.parameters()).reshape(1)
    dev = next(model.parameters()).device
    sums = [torch.zeros(1, dtype=torch.float64, device=dev) for _ in range(world)]
    dist.all_gather(sums, total.to(dev))
    ok = max(float(s) for s in sums) - min(float(s) for s in sums) <= 1e-9 * max(1.0, abs(float(total)))
    if not ok:
        log.error("ranks hold different weights: %s", [float(s) for s in sums])
    return ok


def _lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _default_cache() -> Path:
    from platformdirs import user_cache_dir
    return Path(os.environ.get("DREAMCHAT_CACHE", user_cache_dir("dreamchat"))) / "features"


def prepare_data(args, rank: int, world: int) -> tuple[list[Path], Path | None]:
    """Feature-set folders for training and evaluation. A set to build is split between the
    processes (each decodes its share of the shards with its own backbone); rank 0 indexes it."""
    if args.data:
        return [Path(d) for d in args.data], (Path(args.eval_data) if args.eval_data else None)
    from dreamchat.config import Config
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.episodes import make_binding_episodes, make_episodes

    model_path = [getattr(args, "model", None)]
    if model_path[0] is None and rank == 0:          # fetched once, by one process
        from dreamchat.default_model import ensure_default_model
        model_path[0] = str(ensure_default_model(progress=not args.no_progress))
    if world > 1:
        import torch.distributed as dist
        dist.broadcast_object_list(model_path, src=0)
    backbone = Backbone(model_path[0], n_ctx=2048, n_threads=args.threads)
    system_prompt = Config().system_prompt
    root = Path(args.cache) if args.cache else _default_cache()
    common = dict(value_weight=args.value_weight, neutral_weight=args.neutral_weight, shard_size=args.shard_size,
                  echo=args.echo)
    if getattr(args, "openings", None):
        from dreamchat.models.memory import MemoryModel
        from dreamchat.models.openings import OpeningsModel

        memory = MemoryModel.load(Path(args.openings).expanduser(), backbone.output_embeddings(),
                                  backbone.fingerprint)
        common.update(openings=OpeningsModel(memory), openings_chance=args.openings_chance)

    def build(episodes, name: str) -> str | None:
        if world > 1:
            build_feature_set(backbone, episodes, system_prompt, root, name, **common, part=rank, parts=world,
                              progress=rank == 0 and not args.no_progress)
            dist.barrier()
        if rank == 0:   # every shard is on disk now: write the index
            return str(build_feature_set(backbone, episodes, system_prompt, root, name, **common,
                                         progress=not args.no_progress and world == 1))
        return None

    folders: list[str | None] = [None, None]
    which = args.build_only or "both"
    if which in ("train", "both"):
        facts = args.facts_per_day
        train = make_episodes(args.episodes, split="train", seed=args.data_seed, chat=args.chat,
                              invented=args.invented, facts_per_day=facts, untold=args.untold)
        if args.long_episodes:
            train = interleaved(train, make_episodes(args.long_episodes, split="train", seed=args.data_seed,
                                                     nights=args.long_nights, chat=args.chat,
                                                     invented=args.invented, facts_per_day=facts,
                                                     untold=args.untold))
        if args.binding:
            train = interleaved(train, make_binding_episodes(args.binding, split="train", seed=args.data_seed,
                                                                invented=args.invented, by_name=args.by_name))
        folders[0] = build(train, "train")
    if args.eval_episodes and which in ("test", "both"):
        test = make_episodes(args.eval_episodes, split="test", seed=args.data_seed + 1, chat=args.chat)
        folders[1] = build(test, "test")
    backbone.close()
    if world > 1:
        dist.broadcast_object_list(folders, src=0)
    return ([Path(folders[0])] if folders[0] else []), (Path(folders[1]) if folders[1] else None)


def _chat_turns(args, fs: FeatureSet):
    """The turn markers of the backbone `fs` was built from (for --app-writes)."""
    from dreamchat.errors import DreamchatError
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.features import ChatTurns

    path = getattr(args, "model", None)
    if path is None:
        from dreamchat.default_model import ensure_default_model
        path = str(ensure_default_model(progress=not args.no_progress))
    backbone = Backbone(path, n_ctx=256, n_threads=1)
    try:
        if backbone.fingerprint != fs.backbone_fingerprint:
            raise DreamchatError(f"--app-writes: {path} is not the backbone these features were built from; "
                                 "give that one with --model")
        turns = ChatTurns.of(backbone)
    finally:
        backbone.close()
    if turns is None:
        raise DreamchatError(f"--app-writes: {path} has no ChatML turns, so the app writes every position; "
                             "train without --app-writes")
    return turns


def interleaved(first: list, second: list) -> list:
    """`second` spread evenly through `first`, so a partial set (or a run's first steps) has both."""
    every = max(1, len(first) // len(second)) if second else 1
    mixed, rest = [], list(second)
    for i, item in enumerate(first):
        mixed.append(item)
        if (i + 1) % every == 0 and rest:
            mixed.append(rest.pop(0))
    return mixed + rest


def _initial_weights(path: str, config, given: Iterable[str] = ()):
    """(config to train, saved tensors, their config, the fingerprints of the memories they read:
    their own first, then those they list under `reads_memories_of`) for `--init`: the run's config takes the saved
    one's fields except those --config widens (`memory.GROWABLE`) or sets anew (`memory.REMATCHED`,
    only when `given`, the fields --config names, holds them: without it, fine-tuning squared-key
    weights went on with linear keys, a model that never learned them)."""
    import torch

    from dreamchat.errors import ModelError
    from dreamchat.models.memory import GROWABLE, REMATCHED, MemoryConfig, memories_read, weights_fingerprint
    if not Path(path).is_file():
        raise ModelError(f"--init: no memory weights at {path}; give a .safetensors or .ckpt written by "
                         f"`dreamchat train`")
    try:
        if path.endswith(".ckpt"):
            saved = torch.load(path, map_location="cpu", weights_only=False)
            tensors, old, earlier = saved["model"], MemoryConfig.from_json(saved["config"]), ()
        else:
            from safetensors import safe_open
            with safe_open(path, framework="pt") as fh:
                meta = fh.metadata() or {}
                old, earlier = MemoryConfig.from_json(meta["config"]), memories_read(meta)
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # damaged or foreign file: torch and safetensors raise many types
        raise ModelError(f"--init: {path} is not readable memory weights ({exc.__class__.__name__}); give a "
                         f".safetensors or .ckpt written by `dreamchat train`") from exc
    wider = {f: max(getattr(old, f), getattr(config, f)) for f in GROWABLE}
    chosen = {f: getattr(config, f) for f in REMATCHED if f in set(given)}
    own = weights_fingerprint(old, tensors)
    return (MemoryConfig(**{**vars(old), **wider, **chosen}), tensors, old,
            (own, *(f for f in earlier if f != own)))


def _with_filler_nights(episodes: list, fs: FeatureSet, put, most: int, chance: float,
                        rng: random.Random) -> list:
    """`episodes` (indexes or EpisodeRefs), each with chance `chance` given 1 to `most` of the set's
    days of unrelated conversation by `put` (`with_extra_nights` or `with_history_nights`)."""
    return [put(e if isinstance(e, EpisodeRef) else fs.episodes[e],
                rng.sample(fs.filler_days, rng.randint(1, min(most, len(fs.filler_days)))))
            if rng.random() < chance else e for e in episodes]


def run(args) -> int:
    import torch

    from dreamchat.models.memory import MemoryConfig, MemoryModel

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    # building features is llama.cpp's work: any number of processes, on a GPU machine too
    device = torch.device("cpu") if args.build_only else _device(args.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank, world = _distributed(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if rank == 0:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        log.setLevel(logging.INFO)  # progress lines even when the CLI configured logging at WARNING
    train_dirs, eval_dir = prepare_data(args, rank, world)
    if args.build_only:
        log.info("feature sets: train %s, eval %s", " ".join(map(str, train_dirs)) or None, eval_dir)
        _leave_process_group(world)
        return 0
    fs = FeatureSet(*train_dirs)
    es = FeatureSet(eval_dir) if eval_dir else None
    turns = _chat_turns(args, fs) if args.app_writes else None

    overrides = json.loads(args.config) if args.config else {}
    config = MemoryConfig(n_embd=fs.index["n_embd"], n_vocab=fs.index["n_vocab"], **overrides)
    words = wording_vocabulary(fs, config.n_wording)
    if len(words) < config.n_wording:
        config = MemoryConfig(**{**vars(config), "n_wording": len(words)})
    torch.manual_seed(args.seed)
    start = _initial_weights(args.init, config, overrides) if args.init else None
    if start is not None:
        config, tensors, old_config, memories = start
        words = tensors["wording_ids"].tolist()     # the wording path's columns mean these ids
    model = MemoryModel(config, fs.embeddings, wording_ids=words)
    if start is not None:
        from dreamchat.models.memory import grow_into
        grow_into(model, tensors, old_config)
        if rank == 0:
            log.info("started from %s (%s)", args.init, old_config.to_json())
    model.input_dropout = args.dropout
    if args.train_only:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(tuple(args.train_only)))
        trained = [name for name, p in model.named_parameters() if p.requires_grad]
        if not trained:
            names = ", ".join(name for name, _ in model.named_parameters())
            from dreamchat.errors import DreamchatError
            raise DreamchatError(f"--train-only {' '.join(args.train_only)} matches no slow weight; "
                                 f"give a prefix of one of: {names}")
        if rank == 0:
            log.info("training only %s", ", ".join(trained))
        from dreamchat.models.memory import wake_only
        if start is not None and config == old_config and all(map(wake_only, trained)):
            # what a sleep writes is unchanged: the user's memories made with --init stay valid
            model.reads_memories_of = memories
            if rank == 0:
                log.info("only wake-time weights train: the result reads memories made with %s", args.init)
    model = model.to(device)
    model.backbone_fingerprint = fs.backbone_fingerprint
    objective = _objective_class()(model, fs.embeddings, max_neutral=args.max_neutral,
                                   kl_weight=args.kl_weight).to(device)
    ddp = objective
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        ddp = DistributedDataParallel(objective, device_ids=[local_rank] if device.type == "cuda" else None)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                            weight_decay=0.01, betas=(0.9, 0.98))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)  # checkpoints land beside the weights
    ckpt = out.with_name(out.name + ".ckpt")
    step = 0
    if args.resume and ckpt.is_file():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        step = saved["step"]
        log.info("resumed from %s at step %d", ckpt, step)

    passes_choices = [int(p) for p in str(args.passes).split(",") if p.strip()]
    if (args.extra_nights or args.history_nights) and not fs.filler_days:
        from dreamchat.errors import DreamchatError
        option = "--extra-nights" if args.extra_nights else "--history-nights"
        raise DreamchatError(f"{option} needs feature sets that record their days of unrelated conversation; "
                             "run each set's build command again (`dreamchat train --build-only train ...`) to add them")
    per_rank = max(1, args.batch // world)
    n_eps = len(fs.episodes)
    bar = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=args.steps, initial=step, desc="train", unit="step")
    warmup = max(1, min(100, args.steps // 10))
    started = time.perf_counter()
    while step < args.steps:
        if step % 50 == 0 and fs.refresh():
            # a feature set is still being built (another process): its new shards are in
            n_eps = len(fs.episodes)
            log.info("feature set grew to %d episodes", n_eps)
        step_rng = random.Random(args.seed * 1_000_003 + step)       # same draws on every rank
        picks = step_rng.sample(range(n_eps), min(n_eps, per_rank * world))
        mine = picks[rank * per_rank:(rank + 1) * per_rank] or picks[:per_rank]
        passes = step_rng.choice(passes_choices)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, args.steps, args.lr, warmup)
        # drawn apart from step_rng, so the episodes and passes are those of a run without them
        if args.extra_nights:
            mine = _with_filler_nights(mine, fs, with_extra_nights, args.extra_nights, args.extra_chance,
                                       random.Random(f"extra-nights/{args.seed}/{step}/{rank}"))
        if args.history_nights:
            mine = _with_filler_nights(mine, fs, with_history_nights, args.history_nights, args.history_chance,
                                       random.Random(f"history-nights/{args.seed}/{step}/{rank}"))
        batch = make_batch(fs, mine, device, turns)
        loss, stats = ddp(batch, passes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", N=passes, gate=f"{stats.get('gate', 0):.2f}")
        if rank == 0 and step % 10 == 0:
            log.info("step %d loss %.4f passes %d %s", step, loss.item(), passes,
                     {k: round(v, 4) for k, v in stats.items()})
        out_of_time = bool(args.max_minutes) and time.perf_counter() - started > 60 * args.max_minutes
        if world > 1:  # every rank must stop at the same step
            flag = torch.tensor([float(out_of_time)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        if rank == 0 and (step % args.ckpt_every == 0 or step == args.steps or out_of_time):
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "config": config.to_json()}, ckpt)
        if rank == 0 and es is not None and args.eval_every and step % args.eval_every == 0 and step < args.steps:
            log.info("eval at step %d: %s", step, evaluate(objective, es, args.eval_passes, device, turns=turns))
        if out_of_time:
            log.info("time budget of %.1f minutes reached at step %d", args.max_minutes, step)
            break
    if bar is not None:
        bar.close()
    in_sync = _ranks_in_sync(model, world)
    if rank == 0:
        model.save(out, fs.backbone_fingerprint)
        summary = {"steps": step, "seconds": round(time.perf_counter() - started, 1), "world": world,
                   "weights": str(out), "fingerprint": model.fingerprint, "ranks_in_sync": in_sync}
        if es is not None:
            for n in sorted({1, args.eval_passes, 4}):
                summary[f"eval_passes_{n}"] = evaluate(objective, es, n, device, turns=turns)
        (out.with_name(out.name + ".json")).write_text(json.dumps(summary, indent=2))
        log.info("done: %s", json.dumps(summary))
    _leave_process_group(world)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamchat.models.train", description=__doc__.split("\n")[0])
    parser.add_argument("--model", metavar="PATH", default=None, help="the GGUF backbone (default: the default model)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from dreamchat.errors import DreamchatError
    try:
        return run(args)
    except DreamchatError as err:     # torchrun runs this module, not the CLI: the same one-line errors
        print(f"dreamchat train: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
