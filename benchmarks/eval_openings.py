"""How much recall do the reply's own first words cost? Plain replies against replies forced to open
as a training reply does, on the same held-out probes and memory.

    .venv/bin/python benchmarks/eval_openings.py --seeds 5,7 --episodes 24
    .venv/bin/python benchmarks/eval_openings.py --weights W --passes 2 --json out.json

For every held-out synthetic probe whose category has a training reply that ends with the value
(`Probe.opening`: "Your cousin works at", "Your kitten is called"), one night of sleep with N
passes, then two greedy replies with the app's reply guards: the plain one, and one that must begin
with the opening (the memory is fed it, and supplies what follows). A probe recalled only when
forced is a fact the memory holds but the reply's own words did not reach: "Who employs my
cousin?" answered "Your cousin is an assistant." while "Your cousin works at" is followed by
"Juniper Press". Categories whose training replies all start with the value (vehicles: "You drive
{av}") are skipped.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import held_out

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    held_out.add_arguments(parser, json_help="write every reply here")
    args = parser.parse_args()

    from dreamchat.models.episodes import make_episodes
    from dreamchat.models.evaluate import recalled

    weights, backbone, bench = held_out.open_benchmark(args)

    started = time.perf_counter()
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for episode in make_episodes(args.episodes, split="test", seed=seed):
            states = {}   # day -> the memory after the days before it, slept once for its probes
            for probe in episode.probes:
                if not probe.opening:
                    counts["skipped (no opening)"]["n"] += 1
                    continue
                if probe.day not in states:
                    states[probe.day] = bench.sleep_through(episode.days[:probe.day], args.passes)
                state = states[probe.day]
                context = episode.days[probe.day]
                plain = bench.ask(context, probe.question, {"m": state}, probe.answer)["m"][0]
                forced = bench.ask(context, probe.question, {"m": state}, probe.answer,
                                   opening=probe.opening)["m"][0]
                hits = recalled(probe.answer, plain), recalled(probe.answer, forced)
                kind = "combined" if probe.combined else "update" if probe.kind == "update" else "simple"
                for k in (kind, "all"):
                    counts[k].update(n=1, plain=hits[0], forced=hits[1], only_forced=hits[1] and not hits[0],
                                     only_plain=hits[0] and not hits[1])
                records.append({"seed": seed, "kind": probe.kind, "question": probe.question,
                                "answer": probe.answer, "opening": probe.opening, "plain": plain,
                                "forced": f"{probe.opening} {forced}", "recalled_plain": hits[0],
                                "recalled_forced": hits[1]})
    backbone.close()

    print(f"eval_openings: {weights.name}, seeds {args.seeds} x {args.episodes} held-out episodes, "
          f"N = {args.passes}, greedy; {(time.perf_counter() - started) / 60:.1f} min")
    print(f"{'probes':<10}{'n':>5}{'plain':>8}{'forced':>8}{'only forced':>13}{'only plain':>12}")
    for k in ("simple", "update", "combined", "all"):
        c = counts[k]
        print(f"{k:<10}{c['n']:>5}{c['plain']:>8}{c['forced']:>8}{c['only_forced']:>13}{c['only_plain']:>12}")
    print(f"skipped (no training reply ends with the value): {counts['skipped (no opening)']['n']}")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
