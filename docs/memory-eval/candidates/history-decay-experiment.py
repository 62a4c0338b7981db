"""Experiment of the model card's twenty-fifth session, kept as run, not part of the product.

    python docs/memory-eval/candidates/history-decay-experiment.py [--mode decay|recent] --seed 5 \
        --cases talk-30,facts-10,after-7 --gammas 1,0.7,0.5

Recall (greedy, N = 2) of one night's facts when the memory already holds H nights before them
(`talk-H`: unrelated days, as `dreamchat eval memory --history H`; `facts-H`: other held-out
episodes' fact days) and of facts followed by K unrelated nights (`after-K`, retention). `--mode
decay` multiplies the copy memory by gamma before every sleep; `--mode recent` reads, at wake,
S - (1 - gamma) S_before, where S_before is the copy memory before the latest sleep (the latest
night at full strength, everything older at gamma). With `--episodes 0 --natural 44` it runs the
natural conversations."""
import sys, json, time, argparse
import numpy as np, torch
from dreamchat.models.evaluate import MemoryBenchmark, BenchmarkConfig, recalled
from dreamchat.models.episodes import make_episodes, unrelated_days
from dreamchat.models.backbone import Backbone
from dreamchat.models.memory import MemoryModel, default_weights_path
from dreamchat.default_model import ensure_default_model
from dreamchat.config import Config
p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=5); p.add_argument("--episodes", type=int, default=24)
p.add_argument("--natural", type=int, default=0)
p.add_argument("--cases", default="talk-30,facts-10,after-7")
p.add_argument("--gammas", default="1,0.7,0.5"); p.add_argument("--mode", default="decay"); p.add_argument("--tower", action="store_true")
p.add_argument("--out")
a = p.parse_args()
d = Config()
cfg = BenchmarkConfig(episodes=a.episodes, natural=a.natural, seed=a.seed, system_prompt=d.system_prompt,
                      default_passes=2, nights=(1,))
bb = Backbone(ensure_default_model(progress=False), n_ctx=4096, n_threads=2)
mem = MemoryModel.load(default_weights_path(), bb.output_embeddings(), bb.fingerprint)
torch.set_num_threads(1)
bench = MemoryBenchmark(bb, mem, cfg)
scs = bench.scenarios(1)
answers = [pr.answer for sc in scs for pr in sc.episode.probes]
other = make_episodes(200, split="test", seed=a.seed + 1000)

prev = {}
def sleep(st, day, g):
    if a.mode == "recent":
        prev["S"] = st["copy.S"]
        return mem.consolidate(bench.day_features(day), st, 2)
    if g != 1.0:
        st = {k: (v * g if (k == "copy.S" or (a.tower and k.startswith("tower.") and k.endswith(".S"))) else v)
              for k, v in st.items()}
    return mem.consolidate(bench.day_features(day), st, 2)

t0 = time.time(); out = {}; recs = []
for case in a.cases.split(","):
    kind, H = case.split("-"); H = int(H)
    if kind == "talk" or kind == "after":
        hist = unrelated_days(H, split="test", seed=77, avoid=answers)
    else:
        hist = [ep.days[0] for ep in other[:H]]
    for g in (float(x) for x in a.gammas.split(",")):
        base = mem.empty_state()
        if kind != "after":
            for day in hist:
                base = sleep(base, day, g)
        hits = n = 0
        for sc in scs:
            for dday in sorted({pr.day for pr in sc.episode.probes}):
                st = base
                for day in sc.episode.days[:dday]:
                    if day:
                        st = sleep(st, day, g)
                if kind == "after":
                    for day in hist:
                        st = sleep(st, day, g)
                if a.mode == "recent" and g != 1.0:
                    st = {**st, "copy.S": st["copy.S"] - (1 - g) * prev["S"]}
                for pr in (x for x in sc.episode.probes if x.day == dday):
                    r = bench.ask(sc.episode.days[dday], pr.question, {"m": st}, pr.answer)["m"][0]
                    h = recalled(pr.answer, r); hits += h; n += 1
                    recs.append(dict(case=case, gamma=g, source=sc.source, q=pr.question, answer=pr.answer, reply=r, hit=h))
        out[f"{case} g{g}"] = [hits, n]
        print(case, g, hits, n, f"{time.time()-t0:.0f}s", flush=True)
print(json.dumps(out))
if a.out: json.dump(recs, open(a.out, "w"), indent=0)
