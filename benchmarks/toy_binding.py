"""Can the memory model learn to join two facts at all, and do sleep passes help it? A toy without
the backbone, trained from scratch in minutes on a CPU.

    .venv/bin/python benchmarks/toy_binding.py --train-passes 1 2 --steps 1500
    .venv/bin/python benchmarks/toy_binding.py --train-passes 2 --steps 3000 --json out.json

The twentieth session found that v12 is at chance on binding episodes (`eval_binding.py`) and that
fine-tuning it on them memorises the training episodes instead of teaching it to join. That leaves
open whether the architecture can join at all. This toy asks it directly, with the real
`MemoryModel` (tower, copy memory, fusion) and nothing else: a made-up vocabulary, random frozen
embeddings, and a stand-in backbone whose hidden state at a token is a decaying sum of the
embeddings of it and the two tokens before (local context only, like a backbone whose context has
been cleared: it never joins anything itself).

A day states four sentences in a random order, with filler words between them:

    Ana is my cousin .    Bo is my mechanic .    Ana works at Umber .    Bo works at Kite .

and a probe on the next day asks "where does my mechanic work ?": the answer is Kite, and Umber
(the other relative's value, of the same kind) is the swap. A memory that finds the fact by its
kind alone is right half the time. Probes are split by order: "fact first" where the asked
relative's fact came before the sentence that ties the name to the relative. One causal reading
cannot join those when it writes the value (the name's relative is not known yet); a second pass
starts from the first pass's tower state and can. "Kinds" episodes are the control: the two
relatives get facts of different kinds (works at / lives in), which kind matching alone answers.
Names and values of the evaluation episodes are never seen in training, so memorising cannot pass.

The model trains on a mix of binding and kinds episodes at the given number of passes (one model
per value of --train-passes, same data), then every model is evaluated at every --eval-passes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.nn.functional as F

from dreamchat.models.memory import COPY_WRITTEN, TOWER_PREFIX, MemoryConfig, MemoryModel

# ------------------------------------------------------------------------------------ vocabulary

WORDS = ["<pad>", "user:", "is", "my", ".", "works", "at", "lives", "in", "where", "does", "work",
         "live", "?"]
N_FILLERS = 20      # small-talk words dropped between sentences
N_RELATIVES = 24    # shared by training and evaluation, as in the product's episodes
N_NAMES = 400       # the last quarter only in evaluation episodes
N_VALUES = 400      # the same


@dataclass(frozen=True)
class Vocab:
    word: dict
    fillers: range
    relatives: range
    names: range
    values: range

    @property
    def size(self) -> int:
        return self.values.stop


def vocab() -> Vocab:
    w = {name: i for i, name in enumerate(WORDS)}
    f0 = len(WORDS)
    r0 = f0 + N_FILLERS
    n0 = r0 + N_RELATIVES
    v0 = n0 + N_NAMES
    return Vocab(w, range(f0, r0), range(r0, n0), range(n0, v0), range(v0, v0 + N_VALUES))


VOCAB = vocab()
PAD = VOCAB.word["<pad>"]


def split(ids: range, held_out: bool) -> range:
    cut = ids.start + len(ids) * 3 // 4
    return range(cut, ids.stop) if held_out else range(ids.start, cut)


# ------------------------------------------------------------------------------------ episodes

@dataclass
class Probe:
    tokens: list[int]   # the wake question; the answer follows its last token
    answer: int
    swap: int           # the other relative's value (binding) or -1 (kinds)
    fact_first: bool    # the asked relative's fact came before its name was tied to it
    kind: str           # "binding", "kinds" or "named"


def make_episode(rng: random.Random, kind: str, held_out: bool) -> tuple[list[int], list[Probe]]:
    """One day (tokens) and its two probes. "named" episodes are binding episodes whose probes ask
    by the name ("where does Bo work ?"), which needs no joining."""
    w = VOCAB.word
    names = rng.sample(split(VOCAB.names, held_out), 2)
    values = rng.sample(split(VOCAB.values, held_out), 2)
    relatives = rng.sample(VOCAB.relatives, 2)
    verbs = [("works", "at", "work")] * 2 if kind != "kinds" else \
        rng.sample([("works", "at", "work"), ("lives", "in", "live")], 2)
    sentences = []
    for i in range(2):
        sentences.append((("tie", i), [names[i], w["is"], w["my"], relatives[i], w["."]]))
        verb, prep, _ = verbs[i]
        sentences.append((("fact", i), [names[i], w[verb], w[prep], values[i], w["."]]))
    rng.shuffle(sentences)
    day = [w["user:"]]
    for _, words in sentences:
        day += words + rng.choices(VOCAB.fillers, k=rng.randint(0, 3))
    order = [tag for tag, _ in sentences]
    probes = []
    for i in range(2):
        who = [names[i]] if kind == "named" else [w["my"], relatives[i]]
        question = [w["user:"], w["where"], w["does"], *who, w[verbs[i][2]], w["?"]]
        probes.append(Probe(question, values[i], values[1 - i] if kind != "kinds" else -1,
                            order.index(("fact", i)) < order.index(("tie", i)), kind))
    return day, probes


def make_set(n: int, seed: int, held_out: bool, named: float = 0.0):
    """n episodes: a share `named` of named episodes, the rest half binding, half kinds."""
    rng = random.Random(seed)
    days, probes = [], []
    for e in range(n):
        u = rng.random()
        kind = "named" if u < named else "binding" if (u - named) / (1 - named) < 0.5 else "kinds"
        day, ps = make_episode(rng, kind, held_out)
        days.append(day)
        probes.append(ps)
    return days, probes


# ------------------------------------------------------------------------------------ stand-in backbone

class LocalBackbone:
    """h_t = e(x_t) + 0.5 e(x_{t-1}) + 0.25 e(x_{t-2}) over frozen random embeddings: the local
    context a real backbone's hidden state carries, and no joining of its own."""

    def __init__(self, n_embd: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.embeddings = torch.randn(VOCAB.size, n_embd, generator=g) / n_embd ** 0.5

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        e = self.embeddings[tokens]
        h = e.clone()
        for back, weight in ((1, 0.5), (2, 0.25)):
            h[:, back:] += weight * e[:, :-back]
        return h


def pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(r) for r in rows)
    tokens = torch.full((len(rows), T), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    return tokens, tokens != PAD


def answer_logits(model: MemoryModel, backbone: LocalBackbone, days: list[list[int]],
                  probes: list[list[Probe]], passes: int, wipe_tower: bool = False
                  ) -> tuple[torch.Tensor, list[Probe]]:
    """Sleep every day with `passes` passes, ask each of its probes: the fused logits at the answer
    position [P, V] (the stand-in backbone adds nothing: the memory must carry the answer).
    `wipe_tower`: the tower's states are emptied before waking, the copy memory kept (an ablation:
    what the wake question can look up in the tower, besides what the copy memory holds)."""
    tokens, valid = pad(days)
    nxt = torch.cat([tokens[:, 1:], torch.full_like(tokens[:, :1], PAD)], dim=1)
    nxt = torch.where(valid & (nxt != PAD), nxt, torch.full_like(nxt, -1))
    state = model.sleep(backbone.hidden(tokens), tokens, nxt, valid, model.empty_state(len(days)), passes)
    flat = [(e, p) for e, ps in enumerate(probes) for p in ps]
    q_tokens, q_valid = pad([p.tokens for _, p in flat])
    last = q_valid.sum(1) - 1                           # the answer follows each question's last token
    episode = torch.tensor([e for e, _ in flat])
    pst = {k: v[episode] for k, v in state.items()}
    if wipe_tower:
        pst = {k: torch.zeros_like(v) if k.startswith(TOWER_PREFIX) else v for k, v in pst.items()}
    gate, read, wording = model.wake_features(backbone.hidden(q_tokens), q_tokens, pst)
    at = torch.arange(len(flat))
    logits = model.dense_bias(gate[at, last], read[at, last], wording[at, last], pst[COPY_WRITTEN])
    return logits, [p for _, p in flat]


def new_model(n_embd: int, backbone: LocalBackbone, seed: int, layout: str = "GG") -> MemoryModel:
    """The shipped model's shape at a toy width: its tower layout (GG), two heads per block."""
    torch.manual_seed(seed)
    config = MemoryConfig(n_embd=n_embd, n_vocab=VOCAB.size, d_model=64, n_heads=2, head_dim=32,
                          tower_layout=layout, copy_heads=2, copy_key_dim=16, copy_value_dim=n_embd, n_wording=len(WORDS))
    return MemoryModel(config, backbone.embeddings.numpy(), wording_ids=range(len(WORDS)))


def train(model, backbone, passes: int, steps: int, batch: int, lr: float, seed: int, log_every: int,
          named: float = 0.0, pool: int = 0):
    """AdamW on the answer's cross-entropy. `pool` > 0 cycles through that many distinct training
    episodes (as a fine-tune on a fixed feature set does) instead of drawing new ones every step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng_seed = 10_000 * seed
    model.train()
    for step in range(1, steps + 1):
        draw = step % max(1, pool // batch) if pool else step
        days, probes = make_set(batch, rng_seed + draw, held_out=False, named=named)
        logits, flat = answer_logits(model, backbone, days, probes, passes)
        loss = F.cross_entropy(logits, torch.tensor([p.answer for p in flat]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in opt.param_groups:  # linear warm-up, then cosine to a tenth
            warm = min(1.0, step / 100)
            group["lr"] = lr * warm * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / steps)))
        opt.step()
        if log_every and step % log_every == 0:
            print(f"  N={passes} step {step}/{steps} loss {loss.item():.3f}", flush=True)
    model.eval()


@torch.no_grad()
def evaluate(model, backbone, passes: int, episodes: int, seed: int, named: float = 0.0,
             wipe_tower: bool = False) -> dict:
    days, probes = make_set(episodes, seed, held_out=True, named=named)
    logits, flat = answer_logits(model, backbone, days, probes, passes, wipe_tower)
    guess = logits.argmax(-1).tolist()
    counts = {}
    for p, g in zip(flat, guess):
        key = f"{p.kind}, {'fact first' if p.fact_first else 'tie first'}" if p.kind == "binding" else p.kind
        c = counts.setdefault(key, {"probes": 0, "hit": 0, "swap": 0})
        c["probes"] += 1
        c["hit"] += g == p.answer
        c["swap"] += g == p.swap
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-passes", type=int, nargs="+", default=[1, 2],
                        help="train one model per pass count (default 1 2)")
    parser.add_argument("--eval-passes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32, help="episodes per step (default 32)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--episodes", type=int, default=500, help="held-out evaluation episodes")
    parser.add_argument("--layout", default="GG",
                        help="tower blocks, A = window attention, G = Gated DeltaNet (default GG, as shipped)")
    parser.add_argument("--named", type=float, default=0.0,
                        help="share of episodes asked by name, in training and evaluation (default 0)")
    parser.add_argument("--warm-steps", type=int, default=0,
                        help="first train this many steps without named episodes, then --steps with them "
                             "(a model that has settled on kind matching, as the shipped one has)")
    parser.add_argument("--pool", type=int, default=0,
                        help="the --steps after the warm-up cycle through this many distinct episodes "
                             "(default 0: new ones every step)")
    parser.add_argument("--ablate", action="store_true",
                        help="also evaluate with the tower's states emptied before waking (copy memory kept)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if min(args.train_passes + args.eval_passes) < 1:
        parser.error("pass counts must be at least 1")
    if not 0 <= args.named < 1:
        parser.error("--named is a share of episodes: at least 0 and below 1")
    torch.set_num_threads(args.threads)

    backbone = LocalBackbone(64, seed=0)
    results = []
    for n_train in args.train_passes:
        model = new_model(64, backbone, args.seed, args.layout)
        start = time.perf_counter()
        if args.warm_steps:
            train(model, backbone, n_train, args.warm_steps, args.batch, args.lr, args.seed + 1,
                  log_every=max(1, args.warm_steps // 5))
        train(model, backbone, n_train, args.steps, args.batch, args.lr, args.seed,
              log_every=max(1, args.steps // 10), named=args.named, pool=args.pool)
        minutes = (time.perf_counter() - start) / 60
        for n_eval in args.eval_passes:
            for wipe in (False, True) if args.ablate else (False,):
                counts = evaluate(model, backbone, n_eval, args.episodes, seed=999, named=args.named,
                                  wipe_tower=wipe)
                results.append({"train_passes": n_train, "eval_passes": n_eval, "tower_wiped": wipe,
                                "minutes": round(minutes, 2), "counts": counts})

    keys = ["binding, tie first", "binding, fact first", "kinds"] + (["named"] if args.named else [])
    print(f"\nheld-out episodes ({args.episodes}, names and values never trained on), hit / swap "
          f"(binding) or hit (kinds), in % of probes; tower {args.layout}, {args.steps} steps x {args.batch} episodes")
    print("| trained N | eval N | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for r in results:
        cells = []
        for k in keys:
            c = r["counts"].get(k, {"probes": 0})
            n = max(c["probes"], 1)
            cells.append(f"{100 * c.get('hit', 0) / n:.1f}" +
                         (f" / {100 * c.get('swap', 0) / n:.1f}" if k != "kinds" else "") + f" ({c['probes']})")
        wiped = ", tower wiped" if r["tower_wiped"] else ""
        print(f"| {r['train_passes']} | {r['eval_passes']}{wiped} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
