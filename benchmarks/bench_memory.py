"""Cost of the memory side against the backbone, in one run (CPU unless CUDA is there).

Measures, on the default model (or --model) and the shipped memory weights (or --weights; a freshly
initialised model of the default size when there are none, which costs the same):

- wake: the backbone's per-token decode time (one token, hidden states on, as in generation),
  `WakeSession.feed` for one token, over a memory that has slept on --nights days, and the whole
  per-token hook of a reply (`ReplyHook`: the feed, the loop guard and adding the bias into the
  logits); their ratios are the target "tower cost at wake <= 10 % of the backbone's decode";
- sleep: a --sleep-tokens day (default 4,000) consolidated with --passes N (default 4), once with
  the backbone's features already computed and once including them (`day_chunks`).

    python benchmarks/bench_memory.py [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv=None) -> int:
    from dreamchat.config import Config
    from dreamchat.default_model import default_model_path
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.episodes import make_episodes
    from dreamchat.models.features import day_chunks, render_day
    from dreamchat.models.memory import MemoryConfig, MemoryModel, default_weights_path
    from dreamchat.models.wake import ReplyHook

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="GGUF (default: the default model)")
    p.add_argument("--weights", default=None, help="memory weights (default: the shipped ones)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for llama.cpp (default 2)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch CPU threads (default 1, as the app runs the tower: dreamchat/loading.py)")
    p.add_argument("--tokens", type=int, default=64, help="single-token steps to time (default 64)")
    p.add_argument("--nights", type=int, default=3, help="days slept before timing wake (default 3)")
    p.add_argument("--written", type=int, default=0,
                   help="grow the memory's written-id set to this many ids before timing wake, as months of "
                        "chat do (default 0: what the nights wrote)")
    p.add_argument("--sleep-tokens", type=int, default=4000, help="tokens of the day to sleep on (default 4000)")
    p.add_argument("--passes", type=int, default=4, help="sleep passes (default 4)")
    p.add_argument("--chunk", type=int, default=1024, help="sleep chunk length (default 1024, as the assistant)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where the memory tower runs: auto = CUDA when there, as the app (dreamchat/loading.py)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.torch_threads)

    backbone = Backbone(args.model or default_model_path(), n_ctx=4096, n_threads=args.threads)
    weights = Path(args.weights) if args.weights else default_weights_path()
    if weights.is_file():
        memory = MemoryModel.load(weights, backbone)
    else:
        memory = MemoryModel(MemoryConfig(n_embd=backbone.n_embd, n_vocab=backbone.n_vocab),
                             backbone.output_embeddings()).eval()
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    memory.to(device)
    system = Config().system_prompt

    # A long day of synthetic conversation (held-out phrasings), cut to --sleep-tokens tokens.
    messages, tokens = [], []
    for ep in make_episodes(200, split="test", seed=7):
        messages += ep.days[0]
        tokens = render_day(backbone, messages, system)
        if len(tokens) >= args.sleep_tokens:
            break
    tokens = tokens[: args.sleep_tokens]

    # Memory after a few nights (so the written-id set, hence the sparse bias, has a realistic size).
    state = memory.empty_state()
    for night in range(args.nights):
        day = tokens[night * 300:(night + 1) * 300]
        state = memory.consolidate(day_chunks(backbone, day, args.chunk), state, passes=args.passes)

    # A memory of months: every token ever written stays in the written-id set, and the wake bias is
    # computed over all of them (dreamchat's own 33,000 tokens of written chat hold 5,800 distinct
    # ones). Which ids they are does not change the cost, so random ones stand in for them.
    written = state["copy.written"][0]
    missing = torch.nonzero(written == 0).squeeze(1)
    extra = max(0, min(args.written - int(written.sum()), len(missing)))
    pick = missing[torch.randperm(len(missing), generator=torch.Generator().manual_seed(0))[:extra]]
    written[pick.to(written.device)] = 1

    # Wake: backbone decode of one token vs the tower's step for one token.
    prompt = tokens[:200]
    backbone.clear()
    hidden = backbone.decode(prompt, hidden=True).hidden
    session = memory.wake(state)
    session.feed(hidden, np.asarray(prompt))
    next_ids = iter(tokens[200:200 + 10 * args.tokens])
    last = {}

    def backbone_step():
        last["d"] = backbone.decode([next(next_ids)], hidden=True)

    def tower_step():
        session.feed(last["d"].hidden, np.asarray([prompt[-1]]))

    hook = ReplyHook(memory.wake(state), repeatable=backbone.digit_tokens())  # as the app builds it
    hook.session.feed(hidden, np.asarray(prompt))
    reply, reply_ids = list(prompt), iter(tokens[200:200 + 10 * args.tokens])
    logits = np.zeros(backbone.n_vocab, np.float32)

    def hook_step():
        hook(logits, last["d"].hidden[-1], reply)
        reply.append(next(reply_ids))

    backbone_step()
    for _ in range(5):
        tower_step()
        hook_step()
    backbone_ms = median_ms(backbone_step, args.tokens)
    tower_ms = median_ms(tower_step, args.tokens)
    hook_ms = median_ms(hook_step, args.tokens)
    n_ids = len(session.feed(last["d"].hidden, np.asarray([prompt[-1]])).ids)

    # Sleep on the whole day: features precomputed, then features included.
    t = time.perf_counter()
    chunks = list(day_chunks(backbone, tokens, args.chunk))
    features_s = time.perf_counter() - t
    t = time.perf_counter()
    memory.consolidate(chunks, state, passes=args.passes)
    consolidate_s = time.perf_counter() - t

    results = {
        "device": device, "threads": args.threads,
        "torch_threads": args.torch_threads,
        "weights": str(weights) if weights.is_file() else "untrained (default size)",
        "wake": {"backbone_decode_ms_per_token": round(backbone_ms, 3),
                 "tower_feed_ms_per_token": round(tower_ms, 3),
                 "tower_over_backbone": round(tower_ms / backbone_ms, 4),
                 "reply_hook_ms_per_token": round(hook_ms, 3),
                 "reply_hook_over_backbone": round(hook_ms / backbone_ms, 4),
                 "sparse_bias_ids": n_ids, "nights_slept": args.nights},
        "sleep": {"tokens": len(tokens), "passes": args.passes, "chunk": args.chunk,
                  "features_s": round(features_s, 2), "consolidate_s": round(consolidate_s, 2),
                  "total_s": round(features_s + consolidate_s, 2)},
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    backbone.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
