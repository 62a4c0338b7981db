"""Backbone: loading and its errors, tokens, chat templates, decode outputs, KV edits, embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

import gguf_factory
from dreamchat.errors import ContextFullError, ModelError
from dreamchat.models.backbone import Backbone, model_params, physical_cores, read_gguf_layout, reference_llama


@pytest.fixture(scope="module")
def bb(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=512, n_threads=1) as backbone:
        yield backbone


@pytest.fixture(autouse=True)
def _empty_cache(request):
    if "bb" in request.fixturenames:
        request.getfixturevalue("bb").clear()


# --- loading ---


def test_loads_tiny_model(bb):
    assert (bb.n_ctx, bb.n_embd, bb.n_ctx_train) == (512, gguf_factory.N_EMBD, gguf_factory.N_CTX_TRAIN)
    assert bb.n_vocab == len(gguf_factory.build_vocab()[0])
    assert bb.n_past == 0 and bb.tokens == []
    assert bb.n_threads == 1 and bb.n_gpu_layers == 0
    assert bb.name == "tiny"
    assert bb.metadata["general.architecture"] == "llama"


def test_n_ctx_is_capped_at_training_length(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=4096, n_threads=1) as big:
        assert big.n_ctx == gguf_factory.N_CTX_TRAIN


def test_longer_training_context(tmp_path):
    path = gguf_factory.write_tiny_gguf(tmp_path / "long.gguf", context_length=2048)
    with Backbone(path, n_ctx=1024, n_threads=1) as b:
        assert (b.n_ctx_train, b.n_ctx) == (2048, 1024)


def test_default_threads_are_physical_cores(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=256) as b:
        assert b.n_threads == physical_cores() >= 1


def test_no_repacked_weight_buffers(tiny_gguf):
    """llama.cpp's AMX kernels, picked through repacked weight buffers on Intel CPUs with AMX,
    segfault in llama_decode with the default model: the backbone and the reference Llama of the
    tests and benchmarks load without them, and llama_cpp's own defaults are left alone."""
    import llama_cpp

    original = llama_cpp.llama_cpp.llama_model_default_params
    assert original().use_extra_bufts and not model_params().use_extra_bufts
    llm = reference_llama(tiny_gguf, n_ctx=64, n_threads=1, verbose=False)
    try:
        assert not llm.model_params.use_extra_bufts
        assert llm.tokenize(b"hello")  # the model loaded
    finally:
        llm.close()
    assert llama_cpp.llama_cpp.llama_model_default_params is original


def test_llama_cpp_prints_nothing(tmp_path, tiny_gguf, capfd):
    """llama.cpp logs a lot at load time; none of it may reach the terminal (it would break the TUI)."""
    with Backbone(tiny_gguf, n_ctx=128, n_threads=1) as b:
        b.decode(b.tokenize("Hello"), hidden=True)
    with pytest.raises(ModelError):
        Backbone(gguf_factory.write_truncated_copy(tiny_gguf, tmp_path / "cut.gguf"))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found.*--model"):
        Backbone(tmp_path / "nope.gguf")


def test_not_a_gguf(tmp_path):
    path = gguf_factory.write_not_gguf(tmp_path / "model.gguf")
    with pytest.raises(ModelError, match="not a GGUF file.*--model"):
        Backbone(path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ModelError, match="not a GGUF file"):
        Backbone(tmp_path / "empty.gguf")


@pytest.mark.parametrize("keep", [0.001, 0.3, 0.6, 0.999])
def test_truncated_file(tmp_path, tiny_gguf, keep):
    path = gguf_factory.write_truncated_copy(tiny_gguf, tmp_path / "cut.gguf", keep_fraction=keep)
    with pytest.raises(ModelError, match="truncated"):
        Backbone(path)


def test_unloadable_file_is_a_model_error(tmp_path):
    # A complete, well-formed GGUF that llama.cpp cannot use (no architecture it knows).
    from gguf import GGUFWriter

    path = tmp_path / "alien.gguf"
    w = GGUFWriter(str(path), "no-such-arch")
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with pytest.raises(ModelError, match="llama.cpp could not load.*unknown model architecture.*--model"):
        Backbone(path)


def test_error_messages_are_one_line(tmp_path, tiny_gguf):
    bad = [tmp_path / "nope.gguf", gguf_factory.write_not_gguf(tmp_path / "x.gguf"),
           gguf_factory.write_truncated_copy(tiny_gguf, tmp_path / "cut.gguf")]
    for path in bad:
        with pytest.raises(ModelError) as err:
            Backbone(path)
        assert "\n" not in str(err.value)


# --- fingerprint and header ---


def test_fingerprint_is_stable_and_sensitive(tmp_path, tiny_gguf, bb):
    again = read_gguf_layout(tiny_gguf).fingerprint
    assert bb.fingerprint == again and len(again) == 64
    other = gguf_factory.write_tiny_gguf(tmp_path / "other.gguf", seed=1)  # same header, new weights
    assert read_gguf_layout(other).fingerprint != again
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(tiny_gguf.read_bytes())
    assert read_gguf_layout(copy).fingerprint == again  # a property of the content, not the path


def test_layout_matches_gguf_reader(tiny_gguf):
    layout = read_gguf_layout(tiny_gguf)
    reader = GGUFReader(tiny_gguf)
    assert set(layout.tensors) == {t.name for t in reader.tensors}
    for t in reader.tensors:
        info = layout.tensors[t.name]
        assert info.offset == t.data_offset and info.nbytes == t.n_bytes
    assert layout.data_end == layout.file_size


# --- tokens and templates ---


def test_tokenize_roundtrip(bb):
    text = "Hello! Ünïcödé, emoji 😀 and CJK 你好 — done.\n\tTabs too."
    ids = bb.tokenize(text)
    assert bb.detokenize(ids).decode("utf-8") == text


def test_special_tokens(bb):
    assert bb.tokenize("<|im_start|>user\n")[0] == gguf_factory.IM_START_ID
    assert bb.tokenize("<|im_start|>", special=False) != [gguf_factory.IM_START_ID]
    assert bb.special_token_id("<|im_end|>") == gguf_factory.IM_END_ID
    assert bb.special_token_id("hello") is None
    assert bb.detokenize([gguf_factory.IM_END_ID]) == b""  # control tokens render as nothing
    assert bb.detokenize([gguf_factory.IM_END_ID], special=True) == b"<|im_end|>"
    assert gguf_factory.IM_END_ID in bb.eos_ids


def test_render_chat_uses_gguf_template(bb):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert bb.has_chat_template
    assert bb.render_chat(messages, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert bb.render_chat(messages, add_generation_prompt=False).endswith("Hi<|im_end|>\n")


def test_chatml_fallback_without_template(tiny_gguf_no_template, bb):
    messages = [{"role": "user", "content": "Hi"}]
    with Backbone(tiny_gguf_no_template, n_ctx=256, n_threads=1) as b:
        assert not b.has_chat_template
        assert b.render_chat(messages, True) == bb.render_chat(messages, True)


def test_model_without_template_or_chatml_is_refused(tiny_gguf_not_chat):
    with Backbone(tiny_gguf_not_chat, n_ctx=256, n_threads=1) as b:
        with pytest.raises(ModelError, match="no chat template.*pass a chat model"):
            b.render_chat([{"role": "user", "content": "Hi"}], True)


# --- decode ---


def _prompt(bb):
    return bb.tokenize(bb.render_chat([{"role": "user", "content": "Hello there, how are you?"}], True))


def test_decode_shapes_and_n_past(bb):
    ids = _prompt(bb)
    out = bb.decode(ids)
    assert out.logits.shape == (1, bb.n_vocab) and out.logits.dtype == np.float32 and out.hidden is None
    assert bb.n_past == len(ids) and bb.tokens == ids
    out = bb.decode([5], hidden=True, all_logits=True)
    assert out.logits.shape == (1, bb.n_vocab) and out.hidden.shape == (1, bb.n_embd)
    assert bb.n_past == len(ids) + 1


def test_hidden_and_logits_from_one_decode_agree(bb):
    ids = _prompt(bb)
    full = bb.decode(ids, hidden=True, all_logits=True)
    assert full.logits.shape == (len(ids), bb.n_vocab) and full.hidden.shape == (len(ids), bb.n_embd)
    # logits = final hidden @ LM head (tied); llama.cpp quantises activations in the matmul
    approx = full.hidden @ bb.output_embeddings().T
    assert np.abs(approx - full.logits).max() < 0.05 * np.abs(full.logits).max()
    assert (approx.argmax(-1) == full.logits.argmax(-1)).mean() > 0.9
    # asking for hidden states does not change the logits
    bb.clear()
    plain = bb.decode(ids)
    np.testing.assert_array_equal(plain.logits[0], full.logits[-1])


def test_long_inputs_are_fed_in_batches(tiny_gguf):
    with Backbone(tiny_gguf, n_ctx=512, n_threads=1) as b:
        b.n_batch = 7  # force several pieces (the batch buffer is larger, so this is safe)
        ids = (b.tokenize("one two three four five six seven eight nine ten ") * 4)[:40]
        pieces = b.decode(ids, hidden=True, all_logits=True)
        assert b.n_past == 40 and pieces.logits.shape == (40, b.n_vocab) and pieces.hidden.shape == (40, b.n_embd)
        last_only = b.decode([3])
        b.clear()
        b.n_batch = 512
        whole = b.decode(ids, hidden=True, all_logits=True)
        np.testing.assert_allclose(pieces.hidden, whole.hidden, atol=1e-3, rtol=1e-3)
        np.testing.assert_allclose(last_only.logits[0], b.decode([3]).logits[0], atol=1e-2)


def test_decode_is_deterministic(bb):
    ids = _prompt(bb)
    a = bb.decode(ids, all_logits=True).logits
    bb.clear()
    np.testing.assert_array_equal(a, bb.decode(ids, all_logits=True).logits)


def test_context_full(bb):
    bb.decode([10] * (bb.n_ctx - 2))
    with pytest.raises(ContextFullError, match="do not fit"):
        bb.decode([10, 11, 12])
    assert bb.n_past == bb.n_ctx - 2
    bb.decode([10, 11])
    assert bb.n_past == bb.n_ctx


def test_decode_rejects_empty(bb):
    with pytest.raises(ValueError):
        bb.decode([])


# --- KV cache edits ---


def test_truncate_equals_never_decoding_the_tail(bb):
    a, f, q = bb.tokenize("My dog is called Rex."), bb.tokenize(" Forget this part."), bb.tokenize(" What?")
    bb.decode(a)
    bb.decode(f)
    bb.truncate(len(a))
    assert bb.n_past == len(a) and bb.tokens == a
    edited = bb.decode(q, all_logits=True).logits
    bb.clear()
    bb.decode(a)
    np.testing.assert_array_equal(edited, bb.decode(q, all_logits=True).logits)
    with pytest.raises(ValueError):
        bb.truncate(bb.n_past + 1)


def test_evict_prefix_shifts_positions(bb):
    """Attention only sees relative positions (RoPE), so shifting the kept tail to start at 0 must
    predict what the unshifted tail predicts at its old positions."""
    import llama_cpp

    old, keep, q = bb.tokenize("An old morning chat."), bb.tokenize(" The dog is Rex."), bb.tokenize(" Name?")
    bb.decode(old + keep)
    bb.evict_prefix(len(old))
    assert bb.n_past == len(keep) and bb.tokens == keep
    shifted = bb.decode(q).logits[0]
    # Reference: remove the prefix without shifting; q then sits at its original positions.
    bb.clear()
    bb.decode(old + keep)
    llama_cpp.llama_memory_seq_rm(bb._memory, 0, 0, len(old))  # bb._tokens still counts `old`: positions go on
    unshifted = bb.decode(q).logits[0]
    # equal up to the f16 KV cache's rounding of the re-rotated keys
    np.testing.assert_allclose(shifted, unshifted, atol=0.01 * np.abs(unshifted).max())
    assert shifted.argmax() == unshifted.argmax()


def test_evict_everything_and_clear(bb):
    bb.decode(bb.tokenize("Some words here."))
    bb.evict_prefix(bb.n_past)
    assert bb.n_past == 0
    bb.decode([5, 6, 7])
    bb.clear()
    assert bb.n_past == 0 and bb.tokens == []


# --- embedding matrices ---


def test_embeddings_match_gguf_reader(tiny_gguf, bb):
    reader = {t.name: t for t in GGUFReader(tiny_gguf).tensors}
    expected = dequantize(reader["token_embd.weight"].data, reader["token_embd.weight"].tensor_type)
    emb = bb.token_embeddings()
    assert emb.shape == (bb.n_vocab, bb.n_embd) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb, expected)
    assert bb.output_embeddings() is emb  # tied, and cached


def test_untied_output_embeddings(tmp_path):
    path = gguf_factory.write_tiny_gguf(tmp_path / "untied.gguf", tied=False)
    with Backbone(path, n_ctx=128, n_threads=1) as b:
        out, tok = b.output_embeddings(), b.token_embeddings()
        assert out.shape == tok.shape == (b.n_vocab, b.n_embd)
        assert not np.array_equal(out, tok)
        d = b.decode(b.tokenize("Hello there"), hidden=True)
        approx = d.hidden[-1] @ out.T
        assert np.abs(approx - d.logits[0]).max() < 0.05 * np.abs(d.logits[0]).max()


# --- the real default model ---


@pytest.mark.e2e
def test_real_model_chat_template_and_hidden(real_model_path):
    with Backbone(real_model_path, n_ctx=1024, n_threads=1) as b:
        assert b.n_embd == 576 and b.n_vocab == 49152 and b.has_chat_template
        assert {0, 2} <= b.eos_ids  # <|endoftext|>, <|im_end|>
        prompt = b.render_chat([{"role": "user", "content": "What is the capital of France?"}], True)
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
        out = b.decode(b.tokenize(prompt), hidden=True)
        approx = out.hidden[-1] @ b.output_embeddings().T
        assert approx.argmax() == out.logits[0].argmax()
