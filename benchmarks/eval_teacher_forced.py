"""Teacher-forced held-out recall of memory weights on a built feature set, for N = 1, 2 and 4.

    python benchmarks/eval_teacher_forced.py WEIGHTS TEST_SET [--passes 1,2,4] [--threads 1]

WEIGHTS is a memory.safetensors (or a training checkpoint, `*.ckpt`); TEST_SET a held-out feature set
built by `dreamchat train --build-only test --eval-episodes 100 --data-seed 1`. For each N it prints
one JSON line from `train.evaluate`: recall (every answer token the argmax, given the reply so far),
the same with the memory off and wiped, recall by kind, and the perplexity ratio on ordinary text of
later days. No backbone is needed: everything comes from the cached features.
"""

from __future__ import annotations

import argparse
import json
import time


def load(path: str, embeddings):
    import torch

    from dreamchat.models.memory import MemoryConfig, MemoryModel
    if path.endswith(".ckpt"):
        saved = torch.load(path, map_location="cpu", weights_only=False)
        model = MemoryModel(MemoryConfig.from_json(saved["config"]), embeddings,
                            wording_ids=saved["model"]["wording_ids"].tolist())
        model.load_state_dict(saved["model"])
        return model
    return MemoryModel.load(path, embeddings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights")
    parser.add_argument("test_set")
    parser.add_argument("--passes", default="1,2,4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from dreamchat.models import train
    from dreamchat.models.train_data import FeatureSet
    torch.set_num_threads(args.threads)
    fs = FeatureSet(args.test_set)
    model = load(args.weights, fs.embeddings).eval()
    objective = train._objective_class()(model, fs.embeddings)
    for n in (int(p) for p in args.passes.split(",")):
        started = time.perf_counter()
        with torch.no_grad():
            result = train.evaluate(objective, fs, n, torch.device("cpu"))
        print(json.dumps({"passes": n, **result, "seconds": round(time.perf_counter() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
