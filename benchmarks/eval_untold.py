"""Asked about something it was never told, does the memory answer with something it was told?

    .venv/bin/python benchmarks/eval_untold.py --seeds 5,7 --episodes 24
    .venv/bin/python benchmarks/eval_untold.py --weights W --passes 2 --json out.json

`dreamchat eval memory` scores questions about facts the user stated. A user also asks about
things they never mentioned ("What's my dog called?" when only the cat was named), and the right
reply then holds none of the values they did state. For every held-out synthetic episode, after one
night with N passes, this asks the questions of other episodes whose kind and category the episode
never stated (up to `--questions` of them), and counts the replies that name one of the episode's
own stated values: a confabulation from memory ("Your dog is called Pickle."). Three conditions on
the same questions: the memory, the backbone alone with the context cleared (it cannot know the
values: the floor), and the backbone with the fact day still in its context (the same temptation
without a memory). Replies that say the user did not tell it, by a few fixed phrases, are counted
too; with a 135M backbone they are rare in every condition.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONDITIONS = ("memory", "no memory", "full context")

# Replies that decline rather than answer. Matched on lower-cased text; a heuristic, reported as such.
DECLINES = re.compile(r"\b(you (haven't|have not|didn't|did not|never) (told|mentioned|said|shared)|"
                      r"(don't|do not) (know|have (that|any|this|access))|not sure|no idea|not familiar|"
                      r"(can|could) you (please )?(tell|remind|share|provide)|"
                      r"i (can't|cannot|am not able to|'m not able to) (recall|remember|access)|i'm not aware)\b")


def untold_questions(episodes, i: int, limit: int) -> list:
    """Probes of other episodes (from the next one on, wrapping) whose kind and category episode `i`
    never asks about, at most one per kind, so none of them has an answer among its stated facts."""
    stated = {p.kind for p in episodes[i].probes} | {p.category for p in episodes[i].probes if p.category}
    chosen, kinds = [], set()
    for step in range(1, len(episodes)):
        for probe in episodes[(i + step) % len(episodes)].probes:
            if probe.combined or probe.kind == "update":  # their questions name relatives or past values
                continue
            if probe.kind in stated or probe.category in stated or probe.kind in kinds:
                continue
            chosen.append(probe)
            kinds.add(probe.kind)
            if len(chosen) == limit:
                return chosen
    return chosen


def names_a_stated_value(reply: str, facts: list[str]) -> str:
    """The first of the episode's stated values that the reply names, or ""."""
    from dreamchat.models.evaluate import recalled

    return next((value for value in facts if recalled(value, reply)), "")


def declines(reply: str) -> bool:
    return bool(DECLINES.search(reply.lower()))


def main() -> int:
    import held_out

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=3, help="untold questions per episode (default 3)")
    held_out.add_arguments(parser, json_help="write every reply here")
    args = parser.parse_args()

    from dreamchat.models.episodes import make_episodes

    weights, backbone, bench = held_out.open_benchmark(args)

    started = time.perf_counter()
    counts = {c: collections.Counter() for c in CONDITIONS}
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        episodes = make_episodes(args.episodes, split="test", seed=seed)
        for i, episode in enumerate(episodes):
            day = min(p.day for p in episode.probes)
            state = bench.sleep_through(episode.days[:day], args.passes)
            everything = [m for d in episode.days[:day + 1] for m in d]
            for probe in untold_questions(episodes, i, args.questions):
                replies = bench.ask(episode.days[day], probe.question, {"memory": state, "no memory": None})
                replies["full context"] = bench.ask(everything, probe.question, {"full context": None})["full context"]
                for condition in CONDITIONS:
                    reply = replies[condition][0]
                    named = names_a_stated_value(reply, episode.facts)
                    counts[condition].update(n=1, named=int(bool(named)), declined=int(declines(reply)))
                    records.append({"seed": seed, "episode": i, "condition": condition, "kind": probe.kind,
                                    "question": probe.question, "stated": episode.facts, "reply": reply,
                                    "names_stated_value": named, "declines": declines(reply)})
    backbone.close()

    print(f"eval_untold: {weights.name}, seeds {args.seeds} x {args.episodes} held-out episodes, up to "
          f"{args.questions} untold questions each, N = {args.passes}, greedy; "
          f"{(time.perf_counter() - started) / 60:.1f} min")
    print(f"{'condition':<14}{'questions':>10}{'names a stated value':>22}{'declines':>10}")
    for condition in CONDITIONS:
        c = counts[condition]
        share = f"{c['named']} ({100 * c['named'] / max(c['n'], 1):.0f} %)"
        print(f"{condition:<14}{c['n']:>10}{share:>22}{c['declined']:>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
