"""Experiment of the model card's twenty-sixth session, not part of the product.

    python docs/memory-eval/candidates/rerank-experiment.py --episodes 24 --seed 5 --out OUT.json

Hypothesis: the reply's first words, mostly the backbone's, decide many misses (seventeenth
session: a reply made to open as a training reply recalls 86 of 110 probes against 78). If the
app drew several replies and kept the one the memory supports most, a reply whose opening leads to
the value ("Your cousin works at Juniper Press.") would beat one whose opening shuts it out ("Your
cousin is an assistant.").

For every probe (one night, N = 2): the greedy reply and `--samples` draws of the app's sampling,
each with the app's reply hook. Every step records the backbone's log-probabilities before the
memory's bias and after it, so each candidate gets
- `support`: the sum over its tokens of log p_fused(y) - log p_backbone(y) (how much the memory
  raised this reply over what the backbone alone would say),
- `fused`: the sum of log p_fused(y) (the likelihood the sampler drew from),
- `push`: the largest single-token support.
Prints recall of greedy, of each selector, and of the oracle (any candidate right). Replies are
complete (no stop at the answer), so the scores see the whole reply.
"""
import argparse
import json
import sys
import time

import numpy as np
import torch

from dreamchat.config import Config
from dreamchat.default_model import ensure_default_model
from dreamchat.models import wake as wake_mod
from dreamchat.models.backbone import Backbone
from dreamchat.models.evaluate import BenchmarkConfig, MemoryBenchmark, recalled
from dreamchat.models.memory import MemoryModel, default_weights_path

p = argparse.ArgumentParser()
p.add_argument("--episodes", type=int, default=24)
p.add_argument("--seed", type=int, default=5)
p.add_argument("--natural", type=int, default=0)
p.add_argument("--samples", type=int, default=3)
p.add_argument("--weights", default=None)
p.add_argument("--out")
a = p.parse_args()

STEPS: list[tuple[int, float, float]] = []   # per reply: (token fed, lp_backbone, lp_fused) of the previous step
_pending: list[np.ndarray] = []
orig_call = wake_mod.ReplyHook.__call__


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def call(self, logits, hidden, tokens):
    before = log_softmax(logits)
    if getattr(self, "_seen_prompt", False) and _pending:   # tokens[-1] is what the last step chose
        b, f = _pending.pop()
        t = int(tokens[-1])
        STEPS.append((t, float(b[t]), float(f[t])))
    self._seen_prompt = True
    out = orig_call(self, logits, hidden, tokens)
    _pending.clear()
    _pending.append((before, log_softmax(out)))
    return out


wake_mod.ReplyHook.__call__ = call

d = Config()
cfg = BenchmarkConfig(episodes=a.episodes, natural=a.natural, seed=a.seed, system_prompt=d.system_prompt,
                      default_passes=2, sampling="app", samples=a.samples, nights=(1,))
bb = Backbone(ensure_default_model(progress=False), n_ctx=4096, n_threads=2)
mem = MemoryModel.load(a.weights or default_weights_path(), bb.output_embeddings(), bb.fingerprint)
torch.set_num_threads(1)
sampled = MemoryBenchmark(bb, mem, cfg)
greedy = MemoryBenchmark(bb, mem, BenchmarkConfig(**{**cfg.__dict__, "sampling": "greedy", "samples": 1}))


def candidates(bench, context, question, state):
    """The replies of `bench` with their step records."""
    out = []
    orig_reply = bench._reply

    def reply(*args, **kw):
        STEPS.clear(); _pending.clear()
        text = orig_reply(*args, **kw)
        steps = list(STEPS)
        out.append((text, steps))
        return text

    bench._reply = reply
    try:
        bench.ask(context, question, {"m": state}, "")
    finally:
        bench._reply = orig_reply
    return out


def scores(steps):
    if not steps:
        return dict(support=-1e9, fused=-1e9, push=-1e9, mean_support=-1e9)
    sup = [f - b for _, b, f in steps]
    return dict(support=sum(sup), fused=sum(f for _, _, f in steps), push=max(sup),
                mean_support=sum(sup) / len(sup))


SELECTORS = ["support", "mean_support", "fused", "push"]
tally = {k: 0 for k in ["greedy", "first draw", "oracle", *SELECTORS]}
n = 0
records = []
t0 = time.time()
scs = sampled.scenarios(1)
for i, sc in enumerate(scs):
    for day in sorted({pr.day for pr in sc.episode.probes}):
        state = sampled.sleep_through(sc.episode.days[:day], 2)
        for pr in (x for x in sc.episode.probes if x.day == day):
            cands = candidates(greedy, sc.episode.days[day], pr.question, state) + \
                candidates(sampled, sc.episode.days[day], pr.question, state)
            rows = [dict(reply=t, hit=recalled(pr.answer, t), **scores(s)) for t, s in cands]
            n += 1
            tally["greedy"] += rows[0]["hit"]
            tally["first draw"] += rows[1]["hit"]
            tally["oracle"] += any(r["hit"] for r in rows)
            for k in SELECTORS:
                tally[k] += max(rows, key=lambda r: r[k])["hit"]
            records.append(dict(source=sc.source, kind=pr.kind, question=pr.question, answer=pr.answer,
                                candidates=rows))
    print(i, n, tally, round(time.time() - t0), flush=True, file=sys.stderr)
print(json.dumps({"probes": n, **tally}))
if a.out:
    json.dump(records, open(a.out, "w"), indent=0)
