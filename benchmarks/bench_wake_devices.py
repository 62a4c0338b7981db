"""Where should the memory model run on a machine with a GPU? Its wake feed and its sleep, timed on
the CPU and on CUDA in one run, without a backbone.

The app's memory model is tiny (two GDN blocks, d = 128), so a wake step is a few dozen kernels
of a few microseconds each: on a GPU it is bound by kernel launches and by copying the bias back to
the host every token, which is why this is measured rather than assumed. Inputs are the shipped
weights (or --weights) over a random output embedding of the default model's shape, and random
hidden states: the work per token is the same as with the real backbone, and no model file has to
be present (the real one is larger than what reaches a GPU machine here).

Rows: `WakeSession.feed` for one token (what the assistant calls per generated token: numpy in,
sparse bias out) on the CPU with one torch thread, on CUDA as the app runs it (the traced step
replayed from the session's CUDA graph), and on CUDA without the graph; then a 4,000-token day
consolidated with N passes on each device.

    python benchmarks/bench_wake_devices.py [--tokens 200] [--passes 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def per_token_ms(fn, tokens: int, repeats: int = 5) -> float:
    """Median over `repeats` runs of the mean time of `tokens` calls (ms per call)."""
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(tokens):
            fn()
        runs.append((time.perf_counter() - t) * 1000 / tokens)
    return statistics.median(runs)


def slept_state(memory, rng: np.random.Generator, nights: int, day_tokens: int, passes: int):
    """A memory after `nights` random days, so the written-id set (the bias's size) is realistic."""
    c = memory.config
    state = memory.empty_state()
    for _ in range(nights):
        hidden = rng.standard_normal((day_tokens, c.n_embd), dtype=np.float32)
        tokens = rng.integers(0, c.n_vocab, day_tokens)
        state = memory.consolidate([(hidden, tokens)], state, passes=passes)
    return state


def main(argv=None) -> int:
    from dreamchat.models.memory import MemoryConfig, MemoryModel, default_weights_path, read_metadata
    from dreamchat.models.wake import WakeSession

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default=None, help="memory weights (default: the shipped ones)")
    p.add_argument("--tokens", type=int, default=200,
                   help="wake steps timed per variant, over 5 runs (default 200)")
    p.add_argument("--nights", type=int, default=3, help="random days slept before wake (default 3)")
    p.add_argument("--passes", type=int, default=4, help="sleep passes (default 4)")
    p.add_argument("--sleep-tokens", type=int, default=4000, help="tokens of the timed day (default 4000)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as the app runs the memory model on the CPU

    weights = Path(args.weights) if args.weights else default_weights_path()
    config = MemoryConfig.from_json(read_metadata(weights)["config"])
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((config.n_vocab, config.n_embd), dtype=np.float32) * 0.05
    memory = MemoryModel.load(weights, emb).eval()
    state = slept_state(memory, rng, args.nights, 300, args.passes)
    hidden = rng.standard_normal((args.tokens * 10, config.n_embd), dtype=np.float32)
    tokens = rng.integers(0, config.n_vocab, args.tokens * 10)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {"weights": str(weights), "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
               "wake_feed_ms_per_token": {}, "sleep_s": {}}
    day_h = rng.standard_normal((args.sleep_tokens, config.n_embd), dtype=np.float32)
    day_t = rng.integers(0, config.n_vocab, args.sleep_tokens)
    for dev in devices:
        memory.to(dev)
        # On CUDA the app replays each session's traced step from a CUDA graph; the plain traced
        # step is timed beside it, as what the graph saves.
        variants = {"cpu": True} if dev == "cpu" else {"cuda (CUDA graph, as the app)": True,
                                                        "cuda (traced step, no graph)": False}
        for name, graphed in variants.items():
            session = WakeSession(memory, state, graphed=graphed)
            session.feed(hidden[:50], tokens[:50])
            i = iter(range(50, len(tokens)))

            def step():
                k = next(i)
                session.feed(hidden[k:k + 1], tokens[k:k + 1])

            for _ in range(10):
                step()
            results["wake_feed_ms_per_token"][name] = round(per_token_ms(step, args.tokens // 5), 4)
        memory.consolidate([(day_h[:512], day_t[:512])], state, passes=1)  # warm-up
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        chunks = [(day_h[s:s + 1024], day_t[s:s + 1024]) for s in range(0, args.sleep_tokens, 1024)]
        memory.consolidate(chunks, state, passes=args.passes)
        results["sleep_s"][dev] = round(time.perf_counter() - t, 3)
    results["sparse_bias_ids"] = int(len(session.ids))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
