"""Finding what the assistant runs on: the GGUF backbone file and the memory tower trained for it."""

from __future__ import annotations

import logging
from pathlib import Path

from dreamchat.errors import ModelError

log = logging.getLogger(__name__)


def resolve_model_path(model: str | None, *, progress: bool = False) -> Path:
    """A --model path as given, or the default model (fetched once into the shared models cache)."""
    if model:
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelError(f"model file not found: {path}; pass --model with the path of a GGUF chat model")
        return path
    from dreamchat.default_model import ensure_default_model

    return ensure_default_model(progress=progress)


def load_memory_model(backbone, weights: str | None):
    """(MemoryModel, its path) for this backbone: an explicit --weights file, or a shipped one.

    Shipped slow weights exist for the default model only; any other backbone runs without a tower
    (sleep then archives days unconsolidated) until one is trained for it with `dreamchat train`.
    """
    from dreamchat.models.memory import MemoryModel, shipped_weights_for

    path = Path(weights).expanduser() if weights else shipped_weights_for(backbone.fingerprint)
    if path is None:
        log.info("no trained memory tower for %s; sleep will archive days without consolidating", backbone.name)
        return None, None
    model = MemoryModel.load(path, backbone.output_embeddings(), backbone.fingerprint)
    import torch
    if torch.cuda.is_available():
        model.to("cuda")  # sleep's passes run there; wake copies one small bias back per token
    else:
        # The tower's per-token ops are tiny: with several threads, hand-offs between them cost more
        # than the work (20x measured on 2 busy cores). llama.cpp keeps its own threads.
        torch.set_num_threads(1)
    return model, path
