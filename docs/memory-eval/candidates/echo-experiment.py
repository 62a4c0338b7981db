"""Do keys read from a second reading of each user turn find value-first facts? (twenty-seventh session)

    .venv/bin/python docs/memory-eval/candidates/echo-experiment.py --seeds 5,7 --episodes 24 --mix 0,1

A value is written under the key of the token before it, whose features come from the backbone's
causal reading: in "Einstein - that's my tortoise", the position before "Einstein" has not yet seen
"tortoise". Read the turn twice ("echo": the header and text of each user turn decoded again right
after it) and the second reading's hidden states have seen the whole turn. This script sleeps with
hidden states mixed `mix` of the way from the first reading to the second, for the positions of
each user turn's header and text (everything else as the app reads it), with the shipped weights
unchanged (no training), and answers the held-out probes (greedy, N = 2, the app's reply guards).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))


def echo_chunks(mix: float, dual: bool = False, head: int = 0):
    """A `day_chunks` whose user-turn positions carry `mix` of the second reading's hidden states;
    with `dual`, each chunk as the app reads it and then again with the echo (the memory writes
    every value twice: under the key of each reading)."""
    from dreamchat.models.features import day_chunks

    def chunks(backbone, tokens, chunk_tokens):
        for hidden, chunk in day_chunks(backbone, tokens, chunk_tokens):
            if dual:
                yield hidden.copy(), chunk
            echoed = echo_hidden(backbone, chunk, hidden, mix)
            if head:  # only the first `head` positions of each user turn (its header and first words)
                keep = echoed.copy()
                echoed = hidden.copy()
                for start, end in user_turn_spans(backbone, chunk):
                    echoed[start:min(end, start + head)] = keep[start:min(end, start + head)]
            yield echoed, chunk

    from dreamchat.models.features import echo_hidden, user_turn_spans
    return chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="5,7")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--natural", type=int, default=0, help="also the first N natural conversations")
    parser.add_argument("--mix", default="0,1", help="comma-separated mixes to compare (0 = the app; "
                        "dM: both readings, the second with mix M; M@K: the echo on the first K positions of each user "
                        "turn only)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", default=None, help="memory weights (default: the shipped ones)")
    args = parser.parse_args()

    import torch

    from dreamchat.config import Config
    from dreamchat.default_model import ensure_default_model
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.episodes import make_episodes, natural_conversations
    from dreamchat.models.evaluate import BenchmarkConfig, MemoryBenchmark, recalled
    from dreamchat.models.memory import MemoryModel, default_weights_path

    torch.set_num_threads(1)
    backbone = Backbone(ensure_default_model(progress=False), n_ctx=4096, n_threads=args.threads)
    memory = MemoryModel.load(args.weights or default_weights_path(), backbone.output_embeddings(),
                              backbone.fingerprint)
    scenarios = [("synthetic", e) for s in args.seeds.split(",") for e in make_episodes(args.episodes, split="test", seed=int(s))]
    scenarios += [("natural", e) for e in natural_conversations()[:args.natural]]
    replies: dict[float, list] = {}
    for name in args.mix.split(","):
        # "dM": both readings; "M@K": the echo only on the first K positions of each user turn
        spec, _, head = name.partition("@")
        mix, dual = float(spec.lstrip("d")), spec.startswith("d")
        started = time.perf_counter()
        bench = MemoryBenchmark(backbone, memory, BenchmarkConfig(system_prompt=Config().system_prompt),
                                day_chunks=echo_chunks(mix, dual, int(head or 0)))
        counts, rows = collections.Counter(), []
        for source, episode in scenarios:
            states = {}
            for probe in episode.probes:
                if probe.day not in states:
                    states[probe.day] = bench.sleep_through(episode.days[:probe.day], 2)
                reply = bench.ask(episode.days[probe.day], probe.question, {"m": states[probe.day]}, probe.answer)["m"][0]
                hit = recalled(probe.answer, reply)
                kind = source if source == "natural" else "combined" if probe.combined else probe.kind if probe.kind == "update" else "simple"
                counts.update({(kind, "hit"): hit, (kind, "n"): 1, ("all", "hit"): hit, ("all", "n"): 1})
                rows.append((probe.question, probe.answer, reply, hit))
        replies[name] = rows
        cells = "  ".join(f"{k} {counts[(k, 'hit')]}/{counts[(k, 'n')]}" for k in ("all", "simple", "update", "combined", "natural")
                          if counts[(k, "n")])
        print(f"mix {name}: {cells}  ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    mixes = list(replies)
    for mix in mixes[1:]:
        print(f"\nchanged between mix {mixes[0]} and mix {mix}:")
        for (q, a, r0, h0), (_, _, r1, h1) in zip(replies[mixes[0]], replies[mix]):
            if h0 != h1:
                print(f"  {'+' if h1 else '-'} {q} [{a}]: {r0!r} -> {r1!r}")
    backbone.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
