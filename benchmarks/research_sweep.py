"""Run several `dreamchat research` experiments side by side on one machine (say a GPU box lent for
a few minutes), one process per (experiment, seed), each training N = 1 2 4 in lockstep within a
wall-time budget; then print one summary table.

    python benchmarks/research_sweep.py --out sweep --minutes 6 --seeds 1 2 --device cuda

Every process is an ordinary `python -m dreamchat.models.research_cli` run, so each output folder
holds the usual results.json / results.md / accuracy.png and the exact command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# name -> research_cli arguments (beyond --passes/--seed/--minutes/--device/--out)
EXPERIMENTS = {
    # the FULL presets of research_cli, with a larger batch (a GPU step costs about the same at 512)
    "rule110": ["rule110", "--batch-size", "512"],
    "depo": ["depo", "--batch-size", "512"],
    "arithmetic": ["arithmetic", "--batch-size", "512"],
    # the setting that showed the effect on the CPU in the first session (one 16-bit string)
    "rule110-16bit": ["rule110", "--batch-size", "512", "--d-model", "32",
                      "--task-arg", "n_strings=1", "--task-arg", "n_bits=16"],
}


def summarise(out: Path) -> list[str]:
    lines = ["| experiment | seed | steps | deepest trained depth N=1 does not solve | N=1 | N=2 | N=4 | N4-N1 |",
             "|---|---|---|---|---|---|---|---|"]
    for res in sorted(out.glob("*/seed*/results.json")):
        r = json.loads(res.read_text())
        runs = {run["passes"]: run for run in r["runs"]}
        acc = {n: {int(d): v["accuracy"] for d, v in run["accuracy"].items()} for n, run in runs.items()}
        unsolved = [d for d in r["train_depths"] if acc[1][d] < 0.95]
        d = max(unsolved) if unsolved else max(r["train_depths"])
        cells = [f"{acc[n][d]:.3f}" if n in acc else "-" for n in (1, 2, 4)]
        gap = 100 * (acc[4][d] - acc[1][d]) if 4 in acc and 1 in acc else float("nan")
        lines.append(f"| {res.parent.parent.name} | {res.parent.name[4:]} | {r['experiment']['steps']} | "
                     f"{d}{'' if unsolved else ' (all solved)'} | " + " | ".join(cells) + f" | {gap:+.1f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, required=True, help="training wall time per process")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=20000, help="step cap per process")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more research_cli arguments")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    procs = []
    started = time.perf_counter()
    for name in args.experiments:
        for seed in args.seeds:
            folder = args.out / name / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "dreamchat.models.research_cli", *EXPERIMENTS[name],
                   "--passes", "1", "2", "4", "--seed", str(seed), "--data-seed", str(seed),
                   "--minutes", str(args.minutes), "--steps", str(args.steps), "--threads", "1",
                   "--device", args.device, "--out", str(folder), *args.extra]
            log = open(folder / "log.txt", "w")
            procs.append((name, seed, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    for name, seed, proc, log in procs:
        rc = proc.wait()
        log.close()
        print(f"{name} seed {seed}: exit {rc} after {time.perf_counter() - started:.0f} s", flush=True)
    table = summarise(args.out)
    (args.out / "summary.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
