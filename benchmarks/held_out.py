"""What the held-out benchmarks share: their command line and the backbone, memory and benchmark
they run on (`eval_untold.py`, `eval_read_signal.py`, `eval_openings.py`, `eval_recall_sources.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser, json_help: str) -> None:
    """The options every held-out benchmark takes: the weights and backbone, the held-out episodes,
    the sleep passes, llama.cpp's threads and where to write its records."""
    parser.add_argument("--weights", default=None, help="memory weights (default: the shipped ones)")
    parser.add_argument("--model", default=None, help="GGUF backbone (default: the default model)")
    parser.add_argument("--seeds", default="5,7", help="held-out episode seeds (default 5,7)")
    parser.add_argument("--episodes", type=int, default=24, help="episodes per seed (default 24)")
    parser.add_argument("--passes", type=int, default=2, help="sleep passes (default 2, the app's)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument("--json", default=None, help=json_help)


def open_benchmark(args: argparse.Namespace):
    """(weights path, backbone, `MemoryBenchmark`) for parsed `add_arguments` options, the benchmark
    using the app's system prompt. The caller closes the backbone."""
    import torch

    from dreamchat.config import Config
    from dreamchat.default_model import ensure_default_model
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.evaluate import BenchmarkConfig, MemoryBenchmark
    from dreamchat.models.memory import MemoryModel, default_weights_path

    weights = Path(args.weights or default_weights_path())
    torch.set_num_threads(1)   # the tower's per-token ops are tiny (as in `dreamchat eval memory`)
    backbone = Backbone(args.model or ensure_default_model(progress=False), n_ctx=4096, n_threads=args.threads)
    memory = MemoryModel.load(weights, backbone.output_embeddings(), backbone.fingerprint)
    return weights, backbone, MemoryBenchmark(backbone, memory, BenchmarkConfig(system_prompt=Config().system_prompt))
