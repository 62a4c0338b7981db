"""Does the memory join two facts, and do more sleep passes help it? Held-out binding episodes
(`make_binding_episodes`): two relatives, each tied to a name and given a fact of the same kind,
each asked about.

    .venv/bin/python benchmarks/eval_binding.py --episodes 40 --passes 1,2,4
    .venv/bin/python benchmarks/eval_binding.py --weights W --json out.json

The combined probes of `dreamchat eval memory` state one fact of their kind per episode, so the
memory can answer "Who employs my cousin?" with the day's only employer, without knowing that Ugo
is the cousin (the seventeenth session found it does: the memory finds a relative's fact through
the kind of fact asked for, not through the name). Here each probe has a distractor, the other
relative's value: a memory that does not join the facts answers about as often with it as with
the answer. Every probe is answered after one night of N passes, twice (greedy, the app's reply
guards): the plain reply, and one made to open as a training reply does ("Your cousin works at"),
so the reply's own first words do not hide what the memory holds (for jobs, whose training
replies all start with the value, the forced reply is the plain one). Probes are counted apart by
order: "fact first" where the fact about the name came before the name was tied to the relative
(one causal reading cannot join them; a second pass, which starts from what the first stored, can).
With `--by-name F` a share F of the probes asks by the person's name instead ("Where does Ugo
work?"): they need no joining, only facts kept apart by name, and are counted apart ("by name"),
outside "all".
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def passes_list(text: str) -> list[int]:
    try:
        passes = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers such as 1,2,4") from None
    if not passes or min(passes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more pass counts of at least 1")
    return passes


def outcome(answer: str, distractor: str, reply: str) -> str:
    """"hit" (the answer, even if the distractor is there too), "swap" (only the distractor), or
    "miss"."""
    from dreamchat.models.evaluate import recalled

    if recalled(answer, reply):
        return "hit"
    return "swap" if recalled(distractor, reply) else "miss"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="memory weights (default: the shipped ones)")
    parser.add_argument("--model", default=None, help="GGUF backbone (default: the default model)")
    parser.add_argument("--seed", type=int, default=0, help="held-out binding episode seed (default 0)")
    parser.add_argument("--episodes", type=int, default=40, help="episodes, two probes each (default 40)")
    parser.add_argument("--passes", type=passes_list, default=[1, 2, 4], help="sleep passes (default 1,2,4)")
    parser.add_argument("--by-name", type=float, default=0.0,
                        help="share of probes asked by the person's name instead (make_binding_episodes' "
                             "by_name), counted apart as \"by name\": no joining needed (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument("--json", default=None, help="write every reply here")
    args = parser.parse_args()
    if not 0 <= args.by_name <= 1:
        parser.error("--by-name is a share of probes, between 0 and 1")

    import torch

    from dreamchat.config import Config
    from dreamchat.default_model import ensure_default_model
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.episodes import make_binding_episodes
    from dreamchat.models.evaluate import BenchmarkConfig, MemoryBenchmark
    from dreamchat.models.memory import MemoryModel, default_weights_path

    weights = Path(args.weights or default_weights_path())
    torch.set_num_threads(1)   # the tower's per-token ops are tiny (as in `dreamchat eval memory`)
    backbone = Backbone(args.model or ensure_default_model(progress=False), n_ctx=4096, n_threads=args.threads)
    memory = MemoryModel.load(weights, backbone.output_embeddings(), backbone.fingerprint)
    bench = MemoryBenchmark(backbone, memory, BenchmarkConfig(system_prompt=Config().system_prompt))

    started = time.perf_counter()
    counts: dict[tuple[int, str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    records = []
    for episode in make_binding_episodes(args.episodes, split="test", seed=args.seed, by_name=args.by_name):
        for n in args.passes:
            state = bench.sleep_through(episode.days[:1], n)
            for probe in episode.probes:
                order = "by name" if not probe.combined else "fact first" if probe.fact_first else "name first"
                row = {"passes": n, "order": order, "question": probe.question, "answer": probe.answer,
                       "distractor": probe.distractor}
                reply = ""
                for how, opening in (("plain", ""), ("forced", probe.opening)):
                    if opening or how == "plain":   # no training reply ends with the value: forced = plain
                        reply = bench.ask(episode.days[1], probe.question, {"m": state}, probe.answer,
                                          opening=opening)["m"][0]
                    result = outcome(probe.answer, probe.distractor, reply)
                    for o in (order, "all") if probe.combined else (order,):
                        counts[(n, how, o)].update({result: 1, "n": 1})
                    row[how] = f"{opening} {reply}".strip()
                    row[f"{how}_outcome"] = result
                records.append(row)
    backbone.close()

    print(f"eval_binding: {weights.name}, seed {args.seed} x {args.episodes} held-out binding episodes "
          f"(two probes each), greedy; {(time.perf_counter() - started) / 60:.1f} min")
    print("hit / swap (the other relative's value) of n, per reply and order")
    orders = ("name first", "fact first", "all") + (("by name",) if args.by_name else ())
    print(f"{'N':<4}" + "".join(f"{how + ', ' + o:>24}" for how in ("plain", "forced") for o in orders))
    for n in args.passes:
        cells = []
        for how in ("plain", "forced"):
            for o in orders:
                c = counts[(n, how, o)]
                cells.append(f"{c['hit']} / {c['swap']} of {c['n']}")
        print(f"{n:<4}" + "".join(f"{cell:>24}" for cell in cells))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    from dreamchat.errors import DreamchatError
    try:
        sys.exit(main())
    except DreamchatError as exc:  # a missing or foreign weights file, no model: one line, no traceback
        sys.exit(f"eval_binding: {exc}")
