"""Does the copy read know when it holds no answer? Told versus never-told questions, no replies.

    .venv/bin/python benchmarks/eval_read_signal.py --seeds 5,7 --episodes 24
    .venv/bin/python benchmarks/eval_read_signal.py --weights W --json out.json

`benchmarks/eval_untold.py` showed that asked about something never told, the memory names a value
it holds for something else. A cure at wake, without training, would need a signal that tells the
two kinds of question apart before the reply starts: the copy read being weaker, or less sure of one
value, when no stored key matches the question. For every held-out episode, after one night with N
passes, this decodes the prompt of each question the episode can answer (its own probes) and of up
to `--questions` it cannot (`untold_questions`), runs the memory over it as wake does, and takes,
over the question's tokens and the reply header that follows them, the strongest value of each
signal: the read's norm per copy head and summed over heads, the largest copy logit among the
written tokens, and the gate. It prints, per signal, the area under the ROC curve for telling told
from untold (0.5: no signal; 1.0: a threshold separates them all) and the two means. Then, at the
reply's first position (where the reply's "Your" is pushed or not), the held-out AUC of linear
probes on the gate's own inputs, on the read's norms and on the backbone's hidden state: what a
retrained gate could at best tell apart there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# What the linear probes read: anything the gate could learn to use lies in its inputs' span.
PROBED = ("the gate's inputs (tower features, read norms)", "read norms per head", "backbone hidden state")
PROBE_L2 = 0.01
HEADER_TOKENS = 6  # "<|im_end|>", "\n", "<|im_start|>", "ass", "istant", "\n": SmolLM2's reply header


def wake_pass(memory, hidden, tokens, state):
    """The memory's wake over hidden [T, n_embd], tokens [T] from `state`, as tensors: the tower's
    features f [T, d], the copy read per head [T, H, V] and the gate [T]."""
    import torch

    from dreamchat.models.memory import COPY_STATE, rms_norm

    m, c = memory, memory.config
    with torch.no_grad():
        h = torch.as_tensor(np.asarray(hidden, dtype=np.float32)).reshape(1, -1, c.n_embd)
        tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64)).reshape(1, -1)
        f, _ = m.tower(m.inputs(h, tok), m._tower_state(state))
        q = m.copy.queries(f, rms_norm(h) if c.copy_hidden else None)
        read = torch.einsum("bthk,bhkv->bthv", q, state[COPY_STATE][:1])           # (1, T, H, V)
        gate = torch.sigmoid(m.gate(torch.cat([f, read.norm(dim=-1)], dim=-1)))[0, :, 0]
    return f[0], read[0], gate


def read_signals(memory, state, read, gate) -> dict[str, np.ndarray]:
    """Per position of a wake pass from `state` (its read [T, H, V] and gate [T], from `wake_pass`):
    the copy read's norm per head ("norm", [T, H]) and summed over heads ("read", [T]), the largest
    copy logit among the written tokens ("top_logit", [T]; -inf with nothing written) and the gate
    ("gate", [T])."""
    import torch

    from dreamchat.models.memory import COPY_WRITTEN

    m = memory
    with torch.no_grad():
        written = state[COPY_WRITTEN][0].bool().nonzero().squeeze(1)
        summed = read.sum(1)                                                          # (T, V)
        if len(written):
            top = ((summed @ m.emb_v[written].t()) * m.copy_log_scale.exp()).max(-1).values
        else:
            top = torch.full((read.shape[0],), float("-inf"))
    return {"norm": read.norm(dim=-1).numpy(), "read": summed.norm(dim=-1).numpy(),
            "top_logit": top.numpy(), "gate": gate.numpy()}


def strongest(signals: dict[str, np.ndarray], span: int) -> dict[str, float]:
    """The largest value of each signal over the last `span` positions, heads apart."""
    out = {}
    for name, values in signals.items():
        tail = values[-span:]
        if tail.ndim == 2:
            out.update({f"{name} head {h}": float(tail[:, h].max()) for h in range(tail.shape[1])})
        else:
            out[name] = float(tail.max())
    return out


def auc(positive, negative) -> float:
    """Area under the ROC curve of a score for telling `positive` from `negative` samples: the chance
    that a random positive scores above a random negative, ties counting half (Mann-Whitney)."""
    p, n = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    if p.size == 0 or n.size == 0:
        raise ValueError("auc needs at least one positive and one negative sample")
    return float((p > n).mean() + 0.5 * (p == n).mean())


def probe_auc(X, labels, groups, l2: float = 0.01, folds: int = 5) -> float:
    """Held-out AUC of a logistic-regression probe that reads `labels` (0/1) from the rows of X
    [N, F] (each column standardised), fitted with an L2 penalty on the other folds; `groups` keep
    the questions of one episode in one fold, since they share its memory."""
    import torch
    import torch.nn.functional as F

    X = np.asarray(X, np.float64)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    labels, groups = np.asarray(labels), np.asarray(groups)
    order = np.random.default_rng(0).permutation(np.unique(groups))
    scores = np.zeros(len(labels))
    for k in range(folds):
        test = np.isin(groups, order[k::folds])
        x = torch.tensor(X[~test], dtype=torch.float32)
        y = torch.tensor(labels[~test], dtype=torch.float32)
        w = torch.zeros(X.shape[1], requires_grad=True)
        b = torch.zeros((), requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=200)

        def loss():
            opt.zero_grad()
            value = F.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w ** 2).sum()
            value.backward()
            return value
        opt.step(loss)
        with torch.no_grad():
            scores[test] = (torch.tensor(X[test], dtype=torch.float32) @ w + b).numpy()
    return auc(scores[labels == 1], scores[labels == 0])


def main() -> int:
    import held_out

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=3, help="untold questions per episode (default 3)")
    held_out.add_arguments(parser, json_help="write every question's signals here")
    args = parser.parse_args()

    from dreamchat.models.episodes import make_episodes
    from eval_untold import untold_questions

    weights, backbone, bench = held_out.open_benchmark(args)
    memory, config = bench.memory, bench.config

    inputs = {name: [] for name in PROBED}   # at the reply's first position, for the probes

    def signals_of(state, context, question) -> dict[str, float]:
        prompt = bench._render_day(backbone, context + [{"role": "user", "text": question}],
                                   config.system_prompt, add_generation_prompt=True)
        backbone.clear()
        hidden = np.asarray(backbone.decode(prompt, hidden=True).hidden, dtype=np.float32)
        f, read, gate = wake_pass(memory, hidden, prompt, state)
        norms = read[-1].norm(dim=-1).numpy()
        inputs[PROBED[0]].append(np.concatenate([f[-1].numpy(), norms]))
        inputs[PROBED[1]].append(norms)
        inputs[PROBED[2]].append(hidden[-1])
        span = len(backbone.tokenize(question, special=False)) + HEADER_TOKENS
        return strongest(read_signals(memory, state, read, gate), span)

    started = time.perf_counter()
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        episodes = make_episodes(args.episodes, split="test", seed=seed)
        for i, episode in enumerate(episodes):
            day = min(p.day for p in episode.probes)
            state = bench.sleep_through(episode.days[:day], args.passes)
            asked = [("told", p) for p in episode.probes if p.day == day]
            asked += [("untold", p) for p in untold_questions(episodes, i, args.questions)]
            for label, probe in asked:
                records.append({"seed": seed, "episode": i, "label": label, "kind": probe.kind,
                                "question": probe.question,
                                **signals_of(state, episode.days[day], probe.question)})
    backbone.close()

    told = [r for r in records if r["label"] == "told"]
    untold = [r for r in records if r["label"] == "untold"]
    names = [k for k in records[0] if k not in ("seed", "episode", "label", "kind", "question")]
    print(f"eval_read_signal: {weights.name}, seeds {args.seeds} x {args.episodes} held-out episodes, "
          f"{len(told)} told and {len(untold)} untold questions, N = {args.passes}, strongest over the "
          f"question and reply header; {(time.perf_counter() - started) / 60:.1f} min")
    print(f"{'signal':<16}{'AUC':>7}{'told mean':>12}{'untold mean':>13}")
    for name in names:
        pos, neg = [r[name] for r in told], [r[name] for r in untold]
        print(f"{name:<16}{auc(pos, neg):>7.3f}{np.mean(pos):>12.3f}{np.mean(neg):>13.3f}")
    labels = [r["label"] == "told" for r in records]
    groups = [f"{r['seed']}/{r['episode']}" for r in records]
    print(f"\nlinear probes at the reply's first position (5 folds by episode, L2 {PROBE_L2})")
    for name, rows in inputs.items():
        print(f"{name:<48}{probe_auc(rows, labels, groups, PROBE_L2):>7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
