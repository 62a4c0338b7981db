"""Training speed of the memory tower, CPU against CUDA in one run (CUDA only when it is there).

Times full training steps as `dreamchat train` takes them: a batch of --batch episodes, every
night slept with N passes (N cycling through --passes, the same draws on every device), backprop
through all of them, gradient clipping and an AdamW step. The features are either real ones
(--data, a folder `dreamchat train` built) or, by default, a synthetic set with the default
backbone's shapes (576-d hidden states, 49,152-token vocabulary) and the episode shapes of the
shipped weights' training set (2-5 days of 20-160 tokens, 1-4 probes of 32-70 tokens): the speed
depends on those shapes, not on what the numbers mean.

    python benchmarks/bench_train.py [--steps 20] [--threads 2] [--data DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_synthetic_set(folder: Path, n_episodes: int, n_vocab: int, n_embd: int, seed: int = 0) -> Path:
    """A feature set shaped like the real training data, with exact log-sum-exps of h E^T."""
    from dreamchat.models.features import CachedSequence, FeatureCache
    from dreamchat.models.train_data import EpisodeRef, ProbeRef, write_index

    rng = np.random.default_rng(seed)
    emb = rng.normal(0, 0.05, (n_vocab, n_embd)).astype(np.float32)
    E = torch.from_numpy(emb)

    def sequence(length: int, n_weighted: int, weights: tuple[float, ...]) -> CachedSequence:
        tokens = rng.integers(0, n_vocab, length).astype(np.int64)
        hidden = rng.normal(0, 1, (length, n_embd)).astype(np.float16)
        w = np.zeros(length, np.float32)
        at = np.sort(rng.choice(length - 1, size=min(n_weighted, length - 1), replace=False))
        w[at] = rng.choice(weights, size=len(at))
        lse = np.zeros(length, np.float32)
        lse[at] = torch.logsumexp(torch.from_numpy(hidden[at].astype(np.float32)) @ E.t(), dim=-1).numpy()
        return CachedSequence(tokens, hidden, w, lse)

    seqs, refs = {}, []
    for e in range(n_episodes):
        n_days = int(rng.choice([2, 3, 4, 5], p=[0.6, 0.2, 0.13, 0.07]))
        days = [f"e{e}/d{d}" for d in range(n_days)]
        for d, name in enumerate(days):     # later days carry ordinary text with a (neutral) loss
            seqs[name] = sequence(int(rng.integers(20, 160)), 0 if d == 0 else 9, (0.3,))
        ref = EpisodeRef(days)
        for p in range(int(rng.integers(1, 5))):
            seqs[f"e{e}/p{p}"] = sequence(int(rng.integers(32, 71)), 8, (3.0, 1.0))
            ref.probes.append(ProbeRef(f"e{e}/p{p}", day=n_days - 1, kind="synthetic", answer="x"))
        refs.append(ref)
    cache = FeatureCache(folder.parent, folder.name)
    cache.write_shard(0, seqs)
    write_index(cache.dir, refs, emb, backbone_fingerprint="synthetic")
    return cache.dir


def time_training(fs, device: torch.device, steps: int, warmup: int, batch: int, passes: list[int],
                  config_overrides: dict) -> dict:
    """Milliseconds per training step (median over `steps`, after `warmup` untimed ones)."""
    from dreamchat.models.memory import MemoryConfig, MemoryModel
    from dreamchat.models.train import _objective_class
    from dreamchat.models.train_data import make_batch, wording_vocabulary

    config = MemoryConfig(n_embd=fs.index["n_embd"], n_vocab=fs.index["n_vocab"], **config_overrides)
    words = wording_vocabulary(fs, config.n_wording)
    if len(words) < config.n_wording:
        config = MemoryConfig(**{**vars(config), "n_wording": len(words)})
    torch.manual_seed(0)
    model = MemoryModel(config, fs.embeddings, wording_ids=words).to(device)
    objective = _objective_class()(model, fs.embeddings, kl_weight=5.0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for step in range(warmup + steps):
        rng = random.Random(step)                      # the same episodes and passes on every device
        ids = rng.sample(range(len(fs.episodes)), min(batch, len(fs.episodes)))
        n = passes[step % len(passes)]
        sync()
        t = time.perf_counter()
        loss, _ = objective(make_batch(fs, ids, device), n)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()
        if step >= warmup:
            times.append((time.perf_counter() - t) * 1000)
            losses.append(loss.item())
    result = {"device": str(device), "ms_per_step": round(statistics.median(times), 1),
              "ms_per_step_mean": round(statistics.fmean(times), 1), "steps": steps,
              "finite_loss": all(np.isfinite(losses))}
    if device.type == "cuda":
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    return result


def main(argv=None) -> int:
    from dreamchat.models.train_data import FeatureSet

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", default=None, help="a built feature set (default: synthetic)")
    p.add_argument("--episodes", type=int, default=64, help="episodes of the synthetic set (default 64)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per device (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--batch", type=int, default=8, help="episodes per step (default 8, as the shipped weights)")
    p.add_argument("--passes", default="1,2,4", help="sleep passes, cycled (default 1,2,4)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--config", default='{"copy_hidden": true}', help="MemoryConfig overrides as JSON")
    p.add_argument("--devices", default="cpu,cuda", help="devices to time, those present (default cpu,cuda)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folders = args.data or [write_synthetic_set(Path(tmp) / "synthetic", args.episodes, 49152, 576)]
        fs = FeatureSet(*folders)
        devices = [torch.device(d) for d in args.devices.split(",")
                   if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
        passes = [int(x) for x in args.passes.split(",")]
        overrides = json.loads(args.config) if args.config else {}
        results = [time_training(fs, d, args.steps, args.warmup, args.batch, passes, overrides) for d in devices]

    name = "synthetic" if not args.data else " + ".join(Path(f).name for f in args.data)
    print(f"training steps: batch {args.batch}, passes {args.passes}, data {name}, "
          f"{args.threads} CPU thread(s), config {args.config}")
    for r in results:
        extra = f", peak {r['peak_cuda_mib']} MiB" if "peak_cuda_mib" in r else ""
        print(f"  {r['device']:5s} {r['ms_per_step']:8.1f} ms/step (median of {r['steps']}; mean "
              f"{r['ms_per_step_mean']:.1f}){extra}{'' if r['finite_loss'] else '  NON-FINITE LOSS'}")
    if len(results) == 2:
        print(f"  speed-up of {results[1]['device']} over cpu: {results[0]['ms_per_step'] / results[1]['ms_per_step']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0 if all(r["finite_loss"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
