"""A tiny random-weight llama GGUF, written from scratch for fast tests.

The fast test suite must not depend on the 98 MB default model, so this module synthesises a
complete chat model file in well under a second:

- architecture `llama`, 2 layers, n_embd 64, 4 heads / 2 KV heads, feed-forward 128, context 512;
- random weights from a fixed seed (the token embedding is stored as Q8_0 like the real model's,
  so dequantisation is exercised; everything else is F32). Tied by default (no `output.weight`,
  as in SmolLM2); `tied=False` writes a separate F16 output matrix;
- a byte-level GPT-2-style BPE tokenizer trained here on a small built-in English text: the 256
  byte-to-unicode tokens plus a few hundred merges, with the ChatML specials
  `<|endoftext|>` = 0, `<|im_start|>` = 1, `<|im_end|>` = 2 as control tokens;
- a ChatML chat template (optional).

The output is random text, but every piece of plumbing (load, tokenize, template, decode, hidden
states, KV edits, embeddings) behaves as with a real model. Helpers also write a truncated copy
and a non-GGUF file for the error paths.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, TokenType
from gguf.quants import quantize

# Shape of the tiny model. Head dim = N_EMBD / N_HEAD = 16 (= rope dimension).
N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
N_CTX_TRAIN = 512
N_MERGES = 300  # BPE merges learned from CORPUS (fewer if the corpus runs out of pairs)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
ENDOFTEXT_ID, IM_START_ID, IM_END_ID = 0, 1, 2

# ChatML, the format SmolLM2 and Qwen use. No default system prompt (SmolLM2 injects one; tests
# should not depend on that quirk).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Training text for the BPE merges: plain chat-like English, so common words become single tokens.
CORPUS = """
Hello! How are you today? I am fine, thank you. What is your name? My name is Ada and I live in
Paris with my dog Rex. The capital of France is Paris. The weather is nice today, the sun is out
and the sky is blue. Do you remember what I told you yesterday? Yes, I remember that you have a
dog called Rex and that you like to read books in the evening. The assistant answers the user.
The user asks a question and the assistant gives a short answer. We talked about the garden, the
trees and the flowers. I have three apples and two pears; how many fruits do I have? You have five
fruits. Tomorrow I will go to the market to buy bread, cheese, milk and coffee. Please remind me to
call my mother on Sunday. Of course, I will remind you. The system prompt says: you are a helpful
assistant. Sleep is when the model goes over the day again and again and keeps what matters.
The numbers are 0 1 2 3 4 5 6 7 8 9 10 100 2024 and the time is 12:30. Thank you very much!
"""

# GPT-2 pre-tokenisation, approximated with the stdlib `re` (no \\p{L}); only used to learn
# merges, llama.cpp does its own splitting when it tokenizes.
_PRETOKENIZE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


def train_bpe(text: str, n_merges: int) -> list[tuple[str, str]]:
    """Learn up to `n_merges` byte-level BPE merges from `text`, deterministically.

    Classic BPE: count adjacent symbol pairs over all pre-tokens (weighted by frequency), merge the
    most frequent pair (ties broken alphabetically), repeat.
    """
    byte_char = bytes_to_unicode()
    words = Counter(
        tuple(byte_char[b] for b in piece.encode("utf-8")) for piece in _PRETOKENIZE.findall(text)
    )
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = best[0] + best[1]
        new_words: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += count
        words = new_words
    return merges


def build_vocab(*, chatml_tokens: bool = True) -> tuple[list[str], list[int], list[str]]:
    """Return (tokens, token types, merges as "a b" strings) of the tiny tokenizer."""
    specials = SPECIALS if chatml_tokens else SPECIALS[:1]
    tokens = list(specials)
    types = [TokenType.CONTROL] * len(specials)
    byte_tokens = [bytes_to_unicode()[b] for b in range(256)]
    tokens += byte_tokens
    types += [TokenType.NORMAL] * 256
    merges = train_bpe(CORPUS, N_MERGES)
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:  # a merge result can repeat an existing token only in odd corpora
            seen.add(a + b)
            tokens.append(a + b)
            types.append(TokenType.NORMAL)
    return tokens, [int(t) for t in types], [f"{a} {b}" for a, b in merges]


def write_tiny_gguf(
    path: str | Path,
    *,
    chat_template: bool = True,
    chatml_tokens: bool = True,
    tied: bool = True,
    seed: int = 0,
    context_length: int = N_CTX_TRAIN,
) -> Path:
    """Write the tiny model to `path` and return it.

    chat_template=False leaves `tokenizer.chat_template` out (the backbone must then fall back to
    ChatML, since the tokens exist); chatml_tokens=False also drops `<|im_start|>`/`<|im_end|>` (then
    there is no way to chat and the backbone must refuse the model). tied=False adds a separate
    `output.weight`. context_length is the training context (the backbone caps n_ctx at it).
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, types, merges = build_vocab(chatml_tokens=chatml_tokens)
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    w = GGUFWriter(str(path), "llama")
    w.add_name("dreamchat tiny test model")
    w.add_block_count(N_LAYER)
    w.add_context_length(context_length)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n_vocab)
    w.add_file_type(7)  # LLAMA_FTYPE_MOSTLY_Q8_0: the largest tensor is Q8_0

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if chatml_tokens:
        w.add_bos_token_id(IM_START_ID)
        w.add_eos_token_id(IM_END_ID)
    else:
        w.add_bos_token_id(ENDOFTEXT_ID)
        w.add_eos_token_id(ENDOFTEXT_ID)
    w.add_unk_token_id(ENDOFTEXT_ID)
    w.add_pad_token_id(ENDOFTEXT_ID)
    w.add_add_bos_token(False)
    if chat_template:
        w.add_chat_template(CHATML_TEMPLATE)

    def normal(*shape: int, std: float) -> np.ndarray:
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    # numpy shapes are (out, in) = ggml ne reversed. The embedding std is large enough that the
    # logits (tied head) are well separated, so greedy decoding has no near-ties.
    embd = normal(n_vocab, N_EMBD, std=0.5)
    w.add_tensor(
        "token_embd.weight", quantize(embd, GGMLQuantizationType.Q8_0),
        raw_dtype=GGMLQuantizationType.Q8_0,
    )
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    if not tied:
        w.add_tensor("output.weight", normal(n_vocab, N_EMBD, std=0.5).astype(np.float16))
    kv_dim = N_HEAD_KV * head_dim
    for il in range(N_LAYER):
        w.add_tensor(f"blk.{il}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{il}.attn_q.weight", normal(N_EMBD, N_EMBD, std=0.2))
        w.add_tensor(f"blk.{il}.attn_k.weight", normal(kv_dim, N_EMBD, std=0.2))
        w.add_tensor(f"blk.{il}.attn_v.weight", normal(kv_dim, N_EMBD, std=0.2))
        w.add_tensor(f"blk.{il}.attn_output.weight", normal(N_EMBD, N_EMBD, std=0.1))
        w.add_tensor(f"blk.{il}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{il}.ffn_gate.weight", normal(N_FF, N_EMBD, std=0.2))
        w.add_tensor(f"blk.{il}.ffn_up.weight", normal(N_FF, N_EMBD, std=0.2))
        w.add_tensor(f"blk.{il}.ffn_down.weight", normal(N_EMBD, N_FF, std=0.1))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_truncated_copy(src: str | Path, dst: str | Path, keep_fraction: float = 0.6) -> Path:
    """Copy the first `keep_fraction` of `src` to `dst`: a GGUF whose tensor data is cut short."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def write_not_gguf(path: str | Path) -> Path:
    """A file that is clearly not a GGUF (wrong magic), e.g. a model in another format."""
    path = Path(path)
    path.write_bytes(b"PK\x03\x04 this is a zip archive, not a GGUF model\n" * 64)
    return path
