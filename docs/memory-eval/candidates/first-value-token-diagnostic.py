"""Diagnostic of the model card's twenty-fifth session, kept as run, not part of the product.

    python docs/memory-eval/candidates/first-value-token-diagnostic.py WEIGHTS TEST_SET [PASSES]

Teacher-forced, on a held-out feature set (`dreamchat train --build-only test --eval-episodes 100
--data-seed 1`): at every value token of the template replies, is the fused argmax right, is the
summed copy read's best written token right (top 1 / 2 / 3), each head's, head votes, a product
of the heads' softmaxes; how many value tokens were never written (and whether their leading-space
twin was), and what pushing such a twin through its partner's value would give."""
import sys, json, torch
sys.path.insert(0, "/work/main/benchmarks")
from eval_teacher_forced import load
from dreamchat.models import train
from dreamchat.models.train_data import FeatureSet
from dreamchat.models.memory import rms_norm
torch.set_num_threads(2)
fs = FeatureSet(sys.argv[2]); m = load(sys.argv[1], fs.embeddings).eval()
obj = train._objective_class()(m, fs.embeddings)
passes = int(sys.argv[3]) if len(sys.argv) > 3 else 2
c = m.config
stats = {}
from llama_cpp import Llama
from dreamchat.default_model import ensure_default_model
import numpy as np
llm = Llama(str(ensure_default_model()), vocab_only=True, verbose=False)
vocab = [llm.detokenize([i]).decode("utf-8", "replace") for i in range(c.n_vocab)]
index = {}
for i, t in enumerate(vocab):
    index.setdefault(t, i)
twin = torch.full((c.n_vocab,), -1, dtype=torch.long)
for i, t in enumerate(vocab):
    other = t[1:] if t.startswith(" ") else " " + t
    j = index.get(other)
    if j is not None and t.strip():
        twin[i] = j
def add(k, v):
    stats[k] = stats.get(k, 0) + int(v)
with torch.no_grad():
    for start in range(0, len(fs.episodes), 16):
        ids = list(range(start, min(start + 16, len(fs.episodes))))
        b = train.make_batch(fs, ids, torch.device("cpu"))
        states = obj.nights(b, passes)
        stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
        st = {k: v[b["probe_day"], b["probe_episode"]] for k, v in stacked.items()}
        at = (b["p_weight"][:, :-1] > 1.0).nonzero(as_tuple=True)
        h = b["p_hidden"].float(); tok = b["p_tokens"]
        f, _ = m.tower(m.inputs(h, tok), m._tower_state(st))
        q = m.copy.queries(f, rms_norm(h) if c.copy_hidden else None)
        read_h = torch.einsum("bthk,bhkv->bthv", q, st["copy.S"])            # (P,T,H,V)
        gate = torch.sigmoid(m.gate(torch.cat([f, read_h.norm(dim=-1)], -1))).squeeze(-1)
        wording = m.wording(f)
        tgt = tok[:, 1:][at]
        written = st["copy.written"][at[0]].bool()                            # (n, vocab)
        z = h[at] @ obj.E_raw.t()
        bias = m.dense_bias(gate[at], read_h.sum(2)[at], wording[at], st["copy.written"][at[0]])
        fused_ok = (z + bias).argmax(-1) == tgt
        first = torch.ones(len(tgt), dtype=torch.bool)
        first[1:] = (at[0][1:] != at[0][:-1]) | (at[1][1:] != at[1][:-1] + 1)

        per_head = read_h[at] @ m.emb_v.t()                                    # (n,H,vocab)
        per_head = per_head.masked_fill(~written[:, None, :], -1e9)
        summed = per_head.sum(1) if False else (read_h[at].sum(1) @ m.emb_v.t()).masked_fill(~written, -1e9)
        tgt_written = written.gather(1, tgt[:, None]).squeeze(1)
        add("positions", len(tgt)); add("tgt_written", tgt_written.sum())
        add("fused_top1", fused_ok.sum())
        add("sum_top1", (summed.argmax(-1) == tgt).sum())
        rank = (summed > summed.gather(1, tgt[:, None])).sum(-1)
        add("sum_top2", (rank < 2).sum()); add("sum_top3", (rank < 3).sum())
        for hh in range(c.copy_heads):
            add(f"head{hh}_top1", (per_head[:, hh].argmax(-1) == tgt).sum())
        # combinations: product of per-head softmaxes at temperature T (log-sum), majority
        for T in (0.05, 0.1, 0.2):
            lp = torch.log_softmax(per_head / T, -1).sum(1)
            add(f"poe_T{T}_top1", (lp.argmax(-1) == tgt).sum())
        # head votes: argmax counts
        votes = torch.zeros_like(summed)
        votes.scatter_add_(1, per_head.argmax(-1), torch.ones(per_head.shape[:2]))
        add("vote_top1", ((votes + 1e-3 * torch.softmax(summed, -1)).argmax(-1) == tgt).sum())
        # where fused fails: is target top-1 of summed read? (backbone overrode) / top-2?
        add("fused_fail", (~fused_ok).sum())
        # twin push: an unwritten id whose space twin is written reads the memory through the twin
        wr = written
        has_tw = twin >= 0
        tw_all = twin.clamp(min=0)
        tw_written = wr[:, tw_all] & has_tw[None, :] & ~wr                     # (n, vocab)
        copy = (read_h[at].sum(1) @ m.emb_v.t()) * m.copy_log_scale.exp()
        copy_tw = copy[:, tw_all]
        extra = gate[at][:, None] * torch.where(tw_written, copy_tw, torch.zeros(()))
        fused_tw = z + bias + extra
        ok_tw = fused_tw.argmax(-1) == tgt
        add("twin_fused_top1", ok_tw.sum())
        add("first_twin_fused_top1", (ok_tw & first).sum())
        # probe-level (every value token right)
        for label, ok in (("probe_fused", fused_ok), ("probe_twin", ok_tw)):
            bad = torch.zeros(tok.shape[0], dtype=torch.bool); bad[at[0][~ok]] = True
            has = torch.zeros(tok.shape[0], dtype=torch.bool); has[at[0]] = True
            add(label, (has & ~bad).sum())
        add("probes", torch.unique(at[0]).numel())
        add("fused_fail_sum_top1", ((~fused_ok) & (summed.argmax(-1) == tgt)).sum())
        add("fused_fail_sum_top2", ((~fused_ok) & (rank < 2)).sum())
        add("fused_fail_fused_top2", ((~fused_ok) & (((z + bias) > (z + bias).gather(1, tgt[:, None])).sum(-1) < 2)).sum())
        # first value token only
        add("first_positions", first.sum()); add("first_fused_top1", (fused_ok & first).sum())
        add("first_sum_top1", ((summed.argmax(-1) == tgt) & first).sum())
        add("first_sum_top2", ((rank < 2) & first).sum())
        add("first_tgt_written", (tgt_written & first).sum())
        tw = twin[tgt]
        twin_written = (tw >= 0) & written.gather(1, tw.clamp(min=0)[:, None]).squeeze(1)
        add("unwritten_twin_written", ((~tgt_written) & twin_written).sum())
        add("first_unwritten_twin_written", ((~tgt_written) & twin_written & first).sum())
        add("first_unwritten", ((~tgt_written) & first).sum())
        for i in ((~tgt_written) & first).nonzero().flatten().tolist()[:6]:
            print("unwritten first:", repr(vocab[int(tgt[i])]), "twin", repr(vocab[int(tw[i])]) if tw[i] >= 0 else None, file=sys.stderr)
        elig = (~tgt_written) & twin_written & first
        for i in elig.nonzero().flatten().tolist():
            p, t = int(at[0][i]), int(at[1][i])
            ctx = "".join(vocab[int(x)] for x in tok[p, max(0, t - 8):t + 1])
            print("ELIG", repr(ctx), "->", repr(vocab[int(tgt[i])]), "| fused:", repr(vocab[int((z + bias)[i].argmax())]), "| twin:", repr(vocab[int(fused_tw[i].argmax())]), "| sum read top:", repr(vocab[int(summed[i].argmax())]), "gate %.2f" % float(gate[at][i]), file=sys.stderr)
print(json.dumps({"passes": passes, **stats}, indent=0))
