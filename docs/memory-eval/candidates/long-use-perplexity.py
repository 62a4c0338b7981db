"""Measurement of the model card's twenty-fifth session, not part of the product.

    python docs/memory-eval/candidates/long-use-perplexity.py

The perplexity rows of `dreamchat eval memory` (neutral held-out answers, backbone alone and with
the memory's bias) with 7, 30 and 90 nights of synthetic fact days slept in (seed 0)."""
import torch
from dreamchat.models.evaluate import MemoryBenchmark, BenchmarkConfig
from dreamchat.models.backbone import Backbone
from dreamchat.models.memory import MemoryModel, default_weights_path
from dreamchat.default_model import ensure_default_model
bb = Backbone(ensure_default_model(progress=False), n_ctx=4096, n_threads=2)
mem = MemoryModel.load(default_weights_path(), bb.output_embeddings(), bb.fingerprint)
torch.set_num_threads(1)
for n in (7, 30, 90):
    bench = MemoryBenchmark(bb, mem, BenchmarkConfig(ppl_nights=n, default_passes=2))
    a, t = bench.perplexity()
    print(n, round(a, 3), round(t, 3), round(t / a, 4), flush=True)
