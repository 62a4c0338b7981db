"""Refit the copy memory's read-out scale on held-out episodes: temperature scaling for recall.

Training fits the scale s of `logits = z + g * (s * E_hat[written] . read + ...)` (`models/memory.py`)
on the training phrasings, where a stored fact's key and the question's query match closely. On
phrasings the model never saw they match less well, the read is weaker, and at the first value token
the backbone's own guess often wins: about half of v4's first-token misses on held-out episodes were
a token the day never contained. As with temperature scaling of a classifier, this one scalar is
refit after training on episodes training never saw, and nothing else changes.

The validation episodes must not be the benchmark's: build them from the test split with a seed of
their own (the benchmarks use seeds 0 to 2), e.g.

    dreamchat train --build-only test --eval-episodes 100 --data-seed 8 --cache CACHE   # seed 9
    python -m dreamchat.models.calibrate WEIGHTS --data CACHE/test-... --out OUT

It prints teacher-forced recall (`train.evaluate`) for every factor and N, picks the smallest factor
whose recall, averaged over N, is within `--tolerance` of the best, and writes the weights with the
scale multiplied by it. The result has a new fingerprint: memories made with the old weights are
rebuilt from the journal with `dreamchat memory rebuild`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

FACTORS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)


def sweep(objective, fs, factors=FACTORS, passes=(1, 2, 4), device="cpu") -> list[dict]:
    """Teacher-forced recall of `objective.model` with its copy scale multiplied by each factor;
    one row per factor: {"factor", "recall": {N: recall}, "mean"}. The model is left as it was."""
    import torch

    from dreamchat.models.train import evaluate

    model = objective.model
    base = model.copy_log_scale.detach().clone()
    rows = []
    try:
        for factor in factors:
            with torch.no_grad():
                model.copy_log_scale.copy_(base + math.log(factor))
            recall = {n: evaluate(objective, fs, n, torch.device(device))["recall"] for n in passes}
            rows.append({"factor": factor, "recall": recall, "mean": sum(recall.values()) / len(recall)})
    finally:
        with torch.no_grad():
            model.copy_log_scale.copy_(base)
    return rows


def choose(rows: list[dict], tolerance: float = 0.005) -> float:
    """The smallest factor whose mean recall is within `tolerance` of the best: a bigger scale also
    pushes the memory harder into ordinary text, so it must earn its place."""
    best = max(row["mean"] for row in rows)
    return min(row["factor"] for row in rows if row["mean"] >= best - tolerance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamchat.models.calibrate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("weights", help="memory weights (.safetensors) to calibrate")
    parser.add_argument("--data", required=True, help="validation feature set (test split, its own seed)")
    parser.add_argument("--out", required=True, help="where to write the calibrated weights")
    parser.add_argument("--factors", default=",".join(map(str, FACTORS)), help="scale factors to try")
    parser.add_argument("--passes", default="1,2,4", help="sleep passes to average over (default 1,2,4)")
    parser.add_argument("--tolerance", type=float, default=0.005, help="recall within this of the best")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from dreamchat.models.memory import MemoryModel
    from dreamchat.models.train import _objective_class
    from dreamchat.models.train_data import FeatureSet

    if args.threads:
        torch.set_num_threads(args.threads)
    factors = [float(f) for f in args.factors.split(",")]
    if not factors or min(factors) <= 0:
        parser.error("--factors must be positive numbers")
    fs = FeatureSet(args.data)
    model = MemoryModel.load(args.weights, fs.embeddings)
    objective = _objective_class()(model, fs.embeddings)
    passes = [int(p) for p in args.passes.split(",")]
    rows = sweep(objective, fs, factors, passes)
    print("| factor | " + " | ".join(f"N = {n}" for n in passes) + " | mean |")
    print("|---" * (len(passes) + 2) + "|")
    for row in rows:
        print(f"| {row['factor']:g} | " + " | ".join(f"{row['recall'][n]:.1%}" for n in passes)
              + f" | {row['mean']:.1%} |")
    factor = choose(rows, args.tolerance)
    with torch.no_grad():
        model.copy_log_scale += math.log(factor)
    model.save(Path(args.out))
    print(f"chose factor {factor:g}: copy scale {math.exp(model.copy_log_scale.item()):.2f}; "
          f"wrote {args.out} (fingerprint {model.fingerprint[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
