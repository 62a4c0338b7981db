"""`dreamchat research TASK --passes 1 2 4 [--quick]`: reproduce the paper's sleep results.

Trains one research model per sleep depth N (same data, same order, same initial weights), then
writes to --out:

    results.json   config, seeds, sizes, wall times, accuracy by depth per N (held-out data),
                   train-range vs out-of-range depths, wake ms per predicted token and sleep ms per
                   window per N, loss curves
    results.md     the same as tables, with the exact command
    accuracy.png   accuracy versus depth, one line per N

`--quick` is a smoke-sized run (about a minute of CPU time for N = 1 2); the default settings are
sized for at most 2 hours per task on an idle 2-core CPU. `--merge DIR...` combines runs that differ
only in N (say one N per machine) into one report; `--costs-only REPEATS` times wake and sleep per N
without training. Also runs on its own: `python -m dreamchat.models.research_cli TASK ...`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from dreamchat.errors import DreamchatError
from dreamchat.models.research import ExperimentConfig, measure_costs, run_experiment
from dreamchat.models.tasks import TASK_NAMES

log = logging.getLogger(__name__)

# Quick: the pipeline runs end to end and learns the easiest depth. Not the paper's result.
QUICK = {
    "rule110": ExperimentConfig(
        task="rule110", task_args={"n_strings": 1, "n_bits": 12, "max_depth": 3}, train_depths=[0, 1, 2],
        d_model=32, n_heads=2, head_dim=16, steps=250, batch_size=32, warmup=30, eval_per_depth=128,
        checkpoint=False, cost_repeats=10),
    "depo": ExperimentConfig(
        task="depo", task_args={"n_nodes": 6, "n_names": 8, "n_queries": 1, "edges_per_window": 3,
                                "max_depth": 4},
        train_depths=[1, 2, 3], d_model=32, n_heads=2, head_dim=16, steps=250, batch_size=32, warmup=30,
        eval_per_depth=128, checkpoint=False, cost_repeats=10),
    "arithmetic": ExperimentConfig(
        task="arithmetic", task_args={"n_statements": 3, "n_vars": 6, "modulus": 5, "n_fillers": 2,
                                      "window": 12},
        train_depths=[0, 1], d_model=32, n_heads=2, head_dim=16, steps=250, batch_size=32, warmup=30,
        eval_per_depth=128, checkpoint=False, cost_repeats=10),
}

# Full: the largest settings that fit about 2 hours per task (N = 1 2 4) on an otherwise idle 2-core CPU,
# sized from measured CPU time per window pass (about 0.1 s at d_model 64, batch 64, one thread):
# rule110 17 window passes per step x 3000 steps, depo 20 x 3000, arithmetic 31 x 2000. Checkpointing
# is off because activations at this size are a few hundred MB; pass --checkpoint for big sizes.
FULL = {
    "rule110": ExperimentConfig(
        task="rule110", task_args={"n_strings": 2, "n_bits": 12, "max_depth": 6},
        train_depths=[0, 1, 2, 3, 4], d_model=64, n_heads=4, head_dim=16, steps=3000, batch_size=64,
        warmup=150, lr=2e-3, eval_per_depth=512, checkpoint=False),
    "depo": ExperimentConfig(
        task="depo", task_args={"n_nodes": 10, "n_names": 16, "n_queries": 2, "edges_per_window": 5,
                                "max_depth": 8},
        train_depths=[1, 2, 3, 4, 5, 6], d_model=64, n_heads=4, head_dim=16, steps=3000, batch_size=64,
        warmup=150, lr=2e-3, eval_per_depth=512, checkpoint=False),
    "arithmetic": ExperimentConfig(
        task="arithmetic", task_args={"n_statements": 6, "n_vars": 16, "modulus": 10, "n_fillers": 3,
                                      "window": 16},
        train_depths=[0, 1, 2, 3, 4], d_model=64, n_heads=4, head_dim=16, steps=2000, batch_size=64,
        warmup=150, lr=2e-3, eval_per_depth=512, checkpoint=False),
}

SOLVED = 0.95  # accuracy at which a depth counts as solved (for the summary line)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=TASK_NAMES, help="synthetic task")
    parser.add_argument("--passes", type=int, nargs="+", default=[1, 2, 4], metavar="N",
                        help="sleep depths to compare, one model each (default: 1 2 4)")
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (about a minute on CPU)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: ./dreamchat-research/TASK[-quick])")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default 1: these models are too small to gain from "
                             "more, and extra threads thrash a busy machine)")
    parser.add_argument("--steps", type=int, help="optimizer steps per model")
    parser.add_argument("--batch-size", type=int, help="episodes per step")
    parser.add_argument("--minutes", type=float,
                        help="size the step count to this much training wall time, every N trained in "
                             "lockstep on the same batches (--steps becomes the cap)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--d-model", type=int, help="model width")
    parser.add_argument("--train-depths", type=int, nargs="+", metavar="D", help="depths seen in training")
    parser.add_argument("--eval-per-depth", type=int, help="held-out episodes per depth")
    parser.add_argument("--seed", type=int, help="initialisation seed (same for every N)")
    parser.add_argument("--data-seed", type=int, help="training data seed (same for every N)")
    parser.add_argument("--checkpoint", action=argparse.BooleanOptionalAction, default=None,
                        help="activation checkpointing per window")
    parser.add_argument("--task-arg", action="append", default=[], metavar="KEY=INT",
                        help="override a task config field, e.g. --task-arg n_bits=10 (repeatable)")
    parser.add_argument("--costs-only", type=int, metavar="REPEATS", default=None,
                        help="train nothing: time wake and sleep for every N (untrained models of the "
                             "same size, samples taken in turn) and write costs.json and costs.md")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                        help="train nothing: combine the results of runs that differ only in --passes "
                             "(say one N per machine) into one report in --out")


def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    """The preset for (task, quick) with the command line's overrides applied."""
    cfg = (QUICK if args.quick else FULL)[args.task]
    overrides = {"passes": list(args.passes)}
    for name in ("steps", "batch_size", "minutes", "lr", "d_model", "train_depths", "eval_per_depth", "seed",
                 "data_seed", "checkpoint"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    task_args = dict(cfg.task_args)
    for item in args.task_arg:
        key, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise DreamchatError(f"--task-arg {item!r} is not KEY=INT; write e.g. --task-arg n_bits=10")
        task_args[key] = int(value)
    overrides["task_args"] = task_args
    return replace(cfg, **overrides)


def _accuracy(run: dict, depth: int) -> float:
    return run["accuracy"][str(depth)]["accuracy"]


def summary_lines(results: dict) -> list[str]:
    """The paper's comparison, computed: at the deepest trained depth N = 1 does not solve, how far
    the largest N is ahead of N = 1."""
    runs = {r["passes"]: r for r in results["runs"]}
    if 1 not in runs or len(runs) < 2:
        return ["(no N = 1 baseline with another N in this run: no comparison)"]
    top = max(runs)
    unsolved = [d for d in results["train_depths"] if _accuracy(runs[1], d) < SOLVED]
    if not unsolved:
        return [f"N = 1 solves every trained depth (accuracy >= {SOLVED}): no headroom for sleep to show."]
    d = max(unsolved)
    gap = 100 * (_accuracy(runs[top], d) - _accuracy(runs[1], d))
    return [f"Deepest trained depth N = 1 does not solve (< {SOLVED}): {d}. "
            f"N = 1: {_accuracy(runs[1], d):.3f}, N = {top}: {_accuracy(runs[top], d):.3f} "
            f"({gap:+.1f} points; the issue's target is +15)."]


def write_markdown(results: dict, path: Path, command: str) -> None:
    runs = results["runs"]
    exp = results["experiment"]
    out_range = set(results["out_of_range_depths"])
    lines = [f"# {results['task']}: accuracy by depth and sleep passes N", "",
             f"Command: `{command}`", "",
             f"Task config: `{json.dumps(results['task_config'])}`; window L = {results['window']}, "
             f"episode T = {results['seq_len']} tokens; chance = {results['chance']:.3f} per answer.",
             f"Model: d_model {exp['d_model']}, layout {exp['layout']}, {exp['n_heads']} heads, GDN head dim "
             f"{exp['head_dim']}, {runs[0]['parameters']:,} parameters. Training: {exp['steps']} steps x "
             f"{exp['batch_size']} episodes, AdamW lr {exp['lr']}, depths {results['train_depths']}; "
             f"seeds: init {exp['seed']}, data {exp['data_seed']}, held-out {exp['eval_seed']} "
             f"({results['eval_episodes']} held-out episodes, none seen in training).",
             f"Device: {results['device']} ({results['torch_threads']} threads); "
             f"wall time {results['wall_seconds']:.0f} s in all.", "",
             "Held-out accuracy per answer token (exact = every answer of the episode right); "
             "* = depth outside the training range.", ""]
    header = "| depth | " + " | ".join(f"N = {r['passes']}" for r in runs) + " |"
    lines += [header, "|---" * (len(runs) + 1) + "|"]
    for d in results["depths"]:
        cells = [f"{_accuracy(r, d):.3f} (exact {r['accuracy'][str(d)]['exact']:.3f})" for r in runs]
        lines.append(f"| {d}{'*' if d in out_range else ''} | " + " | ".join(cells) + " |")
    lines += ["", *summary_lines(results), "",
              "Cost per N. Training: wall time (on a shared machine it depends on the load) and process "
              "CPU time per step. Wake and sleep: batch 1, min over samples (median in brackets); within "
              "one run the samples of all N are taken in turn.", "",
              "| N | train s (wall) | train ms/step (wall) | train CPU ms/step | wake ms / predicted token "
              "| sleep ms / window |",
              "|---|---|---|---|---|---|"]
    if "parts" in results:
        lines[-4:-4] = ["Merged from runs of one N each, trained side by side; their costs were measured "
                        "in each run separately, not in turn. The runs:", "",
                        *[f"- `{c}`" for c in results["parts"]], ""]
    for r in runs:
        cpu = r.get("train_cpu_ms_per_step", "n/a")
        lines.append(f"| {r['passes']} | {r['train_seconds']:.0f} | {r['train_ms_per_step']} | {cpu} | "
                     f"{r['wake_ms_per_token']:.3f} ({r['wake_ms_per_token_median']:.3f}) | "
                     f"{r['sleep_ms_per_window']:.3f} ({r['sleep_ms_per_window_median']:.3f}) |")
    path.write_text("\n".join(lines) + "\n")


def write_costs_markdown(costs: dict, path: Path) -> None:
    rows = costs["costs"]
    base = rows[min(rows, key=int)]
    lines = [f"# {costs['task']}: wake and sleep cost per sleep depth N", "",
             f"Command: `{costs['command']}`", "",
             f"Untrained models of the experiment's size (d_model {costs['experiment']['d_model']}, "
             f"layout {costs['experiment']['layout']}), window L = {costs['window']}, batch 1, "
             f"device {costs['device']} ({costs['torch_threads']} threads). {costs['repeats']} samples per N, "
             "taken in turn across N; min (median in brackets).", "",
             "| N | wake ms / predicted token | sleep ms / window | sleep / sleep at smallest N |",
             "|---|---|---|---|"]
    for n, c in rows.items():
        ratio = c["sleep_ms_per_window"] / base["sleep_ms_per_window"]
        lines.append(f"| {n} | {c['wake_ms_per_token']:.3f} ({c['wake_ms_per_token_median']:.3f}) | "
                     f"{c['sleep_ms_per_window']:.3f} ({c['sleep_ms_per_window_median']:.3f}) | {ratio:.2f} |")
    path.write_text("\n".join(lines) + "\n")


def write_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    depths = results["depths"]
    for r in results["runs"]:
        ax.plot(depths, [_accuracy(r, d) for d in depths], marker="o", label=f"N = {r['passes']}")
    ax.axhline(results["chance"], color="grey", linestyle=":", label="chance")
    if results["out_of_range_depths"]:
        lo = min(results["out_of_range_depths"])
        ax.axvspan(lo - 0.5, max(depths) + 0.5, color="grey", alpha=0.12, label="not trained")
    ax.set_xlabel({"rule110": "rollout steps t", "depo": "hops k", "arithmetic": "operations"}
                  .get(results["task"], "depth"))
    ax.set_xticks(depths)
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{results['task']}: accuracy by depth, sleep passes N")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def merge_results(parts: list[dict]) -> dict:
    """One result from runs of the same experiment that differ only in their sleep depths N."""
    def identity(r: dict) -> tuple:
        exp = {k: v for k, v in r["experiment"].items() if k != "passes"}
        return r["task"], json.dumps(r["task_config"], sort_keys=True), json.dumps(exp, sort_keys=True)

    if len({identity(r) for r in parts}) != 1:
        raise DreamchatError("--merge: the runs differ in more than --passes (task, sizes, seeds or "
                             "steps); merge only runs of one experiment")
    runs = sorted((run for r in parts for run in r["runs"]), key=lambda run: run["passes"])
    passes = [run["passes"] for run in runs]
    if len(set(passes)) != len(passes):
        raise DreamchatError(f"--merge: sleep depth N appears twice ({passes}); merge each N once")
    merged = dict(parts[0], runs=runs, parts=[r.get("command", "") for r in parts])
    merged["experiment"] = dict(parts[0]["experiment"], passes=passes)
    merged["wall_seconds"] = max(r["wall_seconds"] for r in parts)  # the parts ran side by side
    return merged


def command_line(args: argparse.Namespace) -> str:
    """The `dreamchat research` command that reproduces this run (recorded beside the results)."""
    if args.merge:
        return shlex.join(["dreamchat", "research", args.task, "--merge", *map(str, args.merge),
                           *(["--out", str(args.out)] if args.out else [])])
    words = ["dreamchat", "research", args.task, "--passes", *map(str, args.passes)]
    if args.quick:
        words.append("--quick")
    for name, value in sorted(vars(args).items()):
        if name in ("task", "passes", "quick", "task_arg", "func") or value is None:
            continue
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    for item in args.task_arg:
        words += ["--task-arg", item]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DreamchatError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    if any(n < 1 for n in args.passes):
        raise DreamchatError(f"--passes must all be >= 1, got {args.passes}")
    if device == "cpu":
        torch.set_num_threads(args.threads or 1)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True  # these tiny models gain nothing from full fp32
        torch.backends.cudnn.allow_tf32 = True
    cfg = experiment_config(args)
    out = args.out or Path("dreamchat-research") / (args.task + ("-quick" if args.quick else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DreamchatError(f"cannot create the output folder {out}: {err.strerror}; pick another --out")
    command = command_line(args)
    if args.costs_only is not None:
        if args.costs_only < 1:
            raise DreamchatError(f"--costs-only needs a positive number of repeats, got {args.costs_only}")
        costs = measure_costs(cfg, device, repeats=args.costs_only)
        costs["command"] = command
        (out / "costs.json").write_text(json.dumps(costs, indent=1) + "\n")
        write_costs_markdown(costs, out / "costs.md")
        log.info("wrote %s", out / "costs.md")
        return 0
    if args.merge:
        parts = []
        for folder in args.merge:
            try:
                parts.append(json.loads((folder / "results.json").read_text()))
            except (OSError, ValueError) as err:
                raise DreamchatError(f"--merge: cannot read {folder / 'results.json'} ({err}); "
                                     f"pass folders written by `dreamchat research`") from err
        results = merge_results(parts)
        if results["task"] != args.task:
            raise DreamchatError(f"--merge: the runs are of {results['task']}, not {args.task}")
    else:
        try:
            results = run_experiment(cfg, device)
        except ValueError as err:
            raise DreamchatError(f"research {args.task}: {err}") from err
    results["command"] = command
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(results, out / "results.md", command)
    write_plot(results, out / "accuracy.png")
    for line in summary_lines(results):
        log.info(line)
    log.info("wrote %s", out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamchat.models.research_cli",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except DreamchatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
