"""Experiment of the model card's twenty-fourth session (R1, R2), kept as run, not part of the product.

    python docs/memory-eval/candidates/read-loss-experiment.py LAMBDA [dreamchat.models.train arguments]

`dreamchat train`'s objective plus LAMBDA x a loss on the copy read itself, at the position that
predicts a reply's first token: the read's norm summed over heads, as the logit K (norm - C) of
"this question was told", under binary cross-entropy. Told: each probe's reply header. Never told:
the reply header before one of `UNTOLD_REPLIES["train"]` in a day of a feature set built with
`--untold`, found by its tokens. It wraps the objective's `wake_features`, so every read the
objective makes is seen once, and monkeypatches `train._objective_class`."""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))   # the repository root
from dreamchat.models import train as T
from dreamchat.models.episodes import UNTOLD_REPLIES
from dreamchat.default_model import ensure_default_model
from dreamchat.models.backbone import Backbone

LAMBDA, K, C = float(sys.argv[1]), 4.0, 1.15
bb = Backbone(ensure_default_model(progress=False), n_ctx=256, n_threads=1)
HEADER = list(bb.tokenize("<|im_start|>assistant\n", special=True))
REPLIES = [HEADER + list(bb.tokenize(r, special=False))[:2] for r in UNTOLD_REPLIES["train"]]
bb.close()
print("header", HEADER, "patterns", REPLIES, flush=True)

def untold_positions(tokens):
    """(b, t): positions that predict the first token of an untold reply."""
    out_b, out_t = [], []
    tk = tokens.cpu().numpy()
    for b in range(tk.shape[0]):
        row = tk[b]
        for pat in REPLIES:
            n = len(pat)
            for t in np.nonzero(row[: len(row) - n + 1] == pat[0])[0]:
                if list(row[t:t + n]) == pat:
                    out_b.append(b); out_t.append(t + len(HEADER) - 1)
    return torch.tensor(out_b, dtype=torch.long), torch.tensor(out_t, dtype=torch.long)

Base = T._objective_class()

class ReadLoss(Base):
    def forward(self, batch, passes):
        m = self.model
        reads = []   # (score tensor, label)
        orig = m.wake_features
        def hooked(hidden, tokens, state):
            gate, read, wording = orig(hidden, tokens, state)
            reads.append((tokens, read))
            return gate, read, wording
        m.wake_features = hooked
        try:
            loss, stats = super().forward(batch, passes)
        finally:
            m.wake_features = orig
        scores, labels = [], []
        for tokens, read in reads:
            if "p_tokens" in batch and tokens is batch["p_tokens"]:
                first = (batch["p_weight"] > 0).float().argmax(1)              # told header position
                scores.append(read[torch.arange(len(first)), first].norm(dim=-1)); labels.append(torch.ones(len(first)))
            else:
                b, t = untold_positions(tokens)
                if len(b):
                    scores.append(read[b, t].norm(dim=-1)); labels.append(torch.zeros(len(b)))
        if scores and LAMBDA:
            s, y = torch.cat(scores), torch.cat(labels).to(loss.device)
            extra = F.binary_cross_entropy_with_logits(K * (s - C), y)
            loss = loss + LAMBDA * extra
            stats["read_loss"] = float(extra.detach()); stats["untold_n"] = int((y == 0).sum())
            stats["told_read"] = float(s[y == 1].mean().detach()) if (y == 1).any() else 0.0
            stats["untold_read"] = float(s[y == 0].mean().detach()) if (y == 0).any() else 0.0
        return loss, stats

T._objective_class = lambda: ReadLoss
sys.exit(T.main(sys.argv[2:]))
