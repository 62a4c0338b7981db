"""Experiment of the model card's twenty-fifth session, not part of the product (as run, but for its hook,
which now wraps the app's instead of repeating its body: the same numbers).

    python docs/memory-eval/candidates/sampling-sharpen-experiment.py --episodes 0 --natural 44 \
        --samples 3 --variants base,s4t2,s4t5

The app's sampling (three draws a probe, one night, N = 2) as `dreamchat eval memory --sampling app`
draws it (`base`), and with the step's logits multiplied by F whenever the memory pushes the
fused argmax token by at least T logits (`sF tT`): sampling made nearly greedy where the memory
decides the token."""
import sys, json, time, argparse
import numpy as np, torch
from dataclasses import replace
from dreamchat.models import wake as wake_mod
from dreamchat.models.evaluate import MemoryBenchmark, BenchmarkConfig, recalled
from dreamchat.models.backbone import Backbone
from dreamchat.models.memory import MemoryModel, default_weights_path
from dreamchat.default_model import ensure_default_model
from dreamchat.config import Config

p = argparse.ArgumentParser()
p.add_argument("--episodes", type=int, default=24); p.add_argument("--seed", type=int, default=5)
p.add_argument("--natural", type=int, default=0); p.add_argument("--samples", type=int, default=3)
p.add_argument("--variants", default="base,s4t2"); p.add_argument("--out")
a = p.parse_args()

MODE = {"factor": 1.0, "tau": 1e9}
fired = [0, 0]
orig_call = wake_mod.ReplyHook.__call__
def call(self, logits, hidden, tokens):
    before = np.array(logits, copy=True)
    logits = orig_call(self, logits, hidden, tokens)          # the app's hook: feed, guards, bias
    pushed = logits - before
    fired[1] += 1
    if pushed[int(np.argmax(logits))] >= MODE["tau"]:         # the memory decides this token
        fired[0] += 1
        logits *= MODE["factor"]
    return logits
wake_mod.ReplyHook.__call__ = call

d = Config()
cfg = BenchmarkConfig(episodes=a.episodes, natural=a.natural, seed=a.seed, system_prompt=d.system_prompt,
                      default_passes=2, sampling="app", samples=a.samples, nights=(1,))
bb = Backbone(ensure_default_model(progress=False), n_ctx=4096, n_threads=2)
mem = MemoryModel.load(default_weights_path(), bb.output_embeddings(), bb.fingerprint)
torch.set_num_threads(1)
bench = MemoryBenchmark(bb, mem, cfg)
variants = {}
for v in a.variants.split(","):
    if v == "base": variants[v] = (1.0, 1e9)
    else:
        f, t = v[1:].split("t"); variants[v] = (float(f), float(t))
score = {v: [0, 0] for v in variants}
recs = []
t0 = time.time()
scs = bench.scenarios(1)
for i, sc in enumerate(scs):
    for dday in sorted({pr.day for pr in sc.episode.probes}):
        state = bench.sleep_through(sc.episode.days[:dday], 2)
        for pr in (x for x in sc.episode.probes if x.day == dday):
            for v, (f, t) in variants.items():
                MODE.update(factor=f, tau=t)
                reps = bench.ask(sc.episode.days[dday], pr.question, {v: state}, "")[v]
                for r in reps:
                    h = recalled(pr.answer, r); score[v][0] += h; score[v][1] += 1
                    recs.append(dict(variant=v, source=sc.source, q=pr.question, answer=pr.answer, reply=r, hit=h))
    print(i, {v: s for v, s in score.items()}, f"fired {fired[0]}/{fired[1]}", round(time.time() - t0), flush=True, file=sys.stderr)
print(json.dumps({v: s for v, s in score.items()}), f"fired {fired}")
if a.out: json.dump(recs, open(a.out, "w"), indent=0)
