"""The backbone: a GGUF chat model run in-process by llama.cpp (the attention side of the hybrid).

One llama.cpp model and one context, driven through llama-cpp-python's low-level API so that a
single `llama_decode` yields both the next-token logits and the final (post-norm) hidden states.
The KV cache is the day's short-term memory; `clear`, `truncate` and `evict_prefix` edit it, and
the backbone mirrors the token ids it holds so callers (sampler, memory hook) can see them.

Everything the user can get wrong is checked before llama.cpp sees the file (llama.cpp aborts or
crashes on some damaged files): missing file, wrong magic, truncated header or tensor data. The
file's header is parsed here with a few lines of `struct`, which also gives the tensor offsets used
to dequantize the embedding matrices with `gguf` (GGUFReader would spend seconds parsing the
vocabulary) and the data for a cheap, stable fingerprint.

llama.cpp's own log lines are routed to the `dreamchat.llama_cpp` logger at DEBUG level: nothing is
printed to stderr (it would corrupt the TUI); its last error lines end up in our ModelError messages.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import logging
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import llama_cpp
import numpy as np

from dreamchat.errors import ContextFullError, ModelError

log = logging.getLogger(__name__)

FIX = "point --model at a GGUF chat model file"
MAX_BATCH = 512  # tokens per llama_decode call; longer inputs are fed in pieces

# ChatML, used only for models that have no template of their own but do have ChatML's tokens.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# --- llama.cpp logging ----------------------------------------------------------------------------

_llama_log = logging.getLogger("dreamchat.llama_cpp")
_recent_errors: collections.deque[str] = collections.deque(maxlen=4)  # for ModelError messages
_GGML_LOG_WARN, _GGML_LOG_ERROR, _GGML_LOG_CONT = 3, 4, 5  # enum ggml_log_level
_last_level = 0


@llama_cpp.llama_log_callback
def _llama_log_callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    global _last_level
    if level == _GGML_LOG_CONT:
        level = _last_level
    _last_level = level
    if level == _GGML_LOG_ERROR:
        line = text.decode("utf-8", "replace").strip()
        if line:  # "llama_model_load: error loading model: unknown model architecture: 'x'" -> the reason
            _recent_errors.append(re.sub(r"^\w+: (error loading model: )?", "", line))
    if _llama_log.isEnabledFor(logging.DEBUG):
        _llama_log.debug("%s", text.decode("utf-8", "replace").rstrip())


_llama_ready = False


def _init_llama() -> None:
    """Once per process: initialise llama.cpp and take over its logging (llama-cpp-python's
    default callback prints everything to stderr)."""
    global _llama_ready
    if not _llama_ready:
        llama_cpp.llama_backend_init()
        llama_cpp.llama_log_set(_llama_log_callback, ctypes.c_void_p(0))
        _llama_ready = True


_llama_default_model_params = llama_cpp.llama_model_default_params


def model_params() -> llama_cpp.llama_model_params:
    """llama.cpp's default model parameters, without repacked weight buffers.

    With them, llama.cpp picks its AMX kernels on Intel CPUs that have AMX (Sapphire Rapids and
    later), and those crash in llama_decode with the default model (a segfault, seen on such a
    machine with llama-cpp-python 0.3.36). Without them every CPU runs the same plain kernels, so
    backbone features, and the memory trained on them, are the same on every machine.
    """
    params = _llama_default_model_params()
    params.use_extra_bufts = False
    return params


def reference_llama(path: str | Path, **kwargs):
    """llama-cpp-python's own `Llama` on the kernels `Backbone` uses, for tests and benchmarks that
    compare against it (`Llama` builds its model parameters itself and has no argument for this)."""
    from unittest import mock

    # `Llama` calls the function of the low-level module, not of the package
    with mock.patch.object(llama_cpp.llama_cpp, "llama_model_default_params", model_params):
        return llama_cpp.Llama(model_path=str(path), **kwargs)


def physical_cores() -> int:
    """CPU cores (not hyper-threads) this process may run on: llama.cpp gains nothing from SMT
    siblings. Reads Linux's topology files; falls back to the logical CPU count elsewhere."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


# --- GGUF header ----------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_FINGERPRINT_SAMPLES = 16  # data blocks hashed into the fingerprint, spread evenly over the tensor data
_FINGERPRINT_BLOCK = 1 << 16


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy order (rows last-dimension-major): ggml's ne reversed
    ggml_type: int
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class GGUFLayout:
    """What the header of a GGUF file says: metadata scalars (arrays are skipped), tensors, sizes."""

    metadata: dict[str, object]
    tensors: dict[str, TensorInfo]
    data_offset: int  # where tensor data starts (header, metadata and tensor infos end before it)
    data_end: int  # where the last tensor's data ends: the least size an intact file has
    file_size: int
    fingerprint: str


def read_gguf_layout(path: Path) -> GGUFLayout:
    """Parse and sanity-check a GGUF header; ModelError if the file is not a complete GGUF.

    The fingerprint is sha256 over the file size, every header byte (metadata, vocabulary,
    tensor names/shapes/types/offsets) and 16 blocks of 64 KiB spread evenly over the tensor
    data: it changes with any re-quantization, re-conversion or edit of the metadata, and costs a
    few milliseconds instead of hashing the whole file on every start.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise ModelError(f"{path} is not a GGUF file (wrong magic); {FIX}")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise ModelError(f"cannot read the model file {path} ({e.strerror or e}); {FIX}") from None

    truncated = ModelError(f"{path} is truncated or damaged (incomplete download?); download it again or {FIX}")
    with buf:
        unpack = struct.unpack_from
        pos = 4

        def scalar(fmt: str):
            nonlocal pos
            (value,) = unpack(fmt, buf, pos)
            pos += struct.calcsize(fmt)
            return value

        def string() -> str:
            nonlocal pos
            n = scalar("<Q")
            if pos + n > size:
                raise struct.error("string runs past the end of the file")
            pos += n
            return buf[pos - n : pos].decode("utf-8", "replace")

        def skip_array(item_type: int, count: int) -> None:
            nonlocal pos
            if item_type == _STRING:
                for _ in range(count):  # the vocabulary: ~50k short strings
                    (n,) = unpack("<Q", buf, pos)
                    pos += 8 + n
            elif item_type == _ARRAY:
                for _ in range(count):
                    skip_array(scalar("<I"), scalar("<Q"))
            else:
                pos += struct.calcsize(_SCALARS[item_type]) * count

        try:
            version = scalar("<I")
            if version not in (2, 3):
                raise ModelError(f"{path} is GGUF version {version}, which this llama.cpp cannot read; {FIX}")
            n_tensors, n_kv = scalar("<Q"), scalar("<Q")
            metadata: dict[str, object] = {}
            for _ in range(n_kv):
                key, vtype = string(), scalar("<I")
                if vtype == _STRING:
                    metadata[key] = string()
                elif vtype == _ARRAY:
                    item_type, count = scalar("<I"), scalar("<Q")
                    skip_array(item_type, count)
                    metadata[key] = f"<array of {count}>"
                else:
                    metadata[key] = scalar(_SCALARS[vtype])
            infos = []
            for _ in range(n_tensors):
                name, n_dims = string(), scalar("<I")
                ne = [scalar("<Q") for _ in range(n_dims)]
                infos.append((name, ne, scalar("<I"), scalar("<Q")))
        except (struct.error, KeyError, IndexError):
            raise truncated from None
        alignment = int(metadata.get("general.alignment", 32))
        data_offset = -(-pos // alignment) * alignment
        if pos > size:
            raise truncated

        tensors, data_end = {}, data_offset
        for name, ne, ggml_type, rel in infos:
            try:
                block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
            except ValueError:  # a type newer than our gguf package: llama.cpp will judge
                block, type_size = 1, 0
            nbytes = int(np.prod(ne[1:], dtype=np.int64)) * (ne[0] // block) * type_size if ne else 0
            info = TensorInfo(name, tuple(reversed(ne)), ggml_type, data_offset + rel, nbytes)
            tensors[name] = info
            data_end = max(data_end, info.offset + nbytes)
        if data_end > size:
            raise truncated

        h = hashlib.sha256(b"dreamchat-gguf-fingerprint-v1")
        h.update(size.to_bytes(8, "little"))
        h.update(buf[:data_offset])
        span = max(0, size - data_offset - _FINGERPRINT_BLOCK)
        for i in range(_FINGERPRINT_SAMPLES):
            start = data_offset + span * i // (_FINGERPRINT_SAMPLES - 1)
            h.update(buf[start : start + _FINGERPRINT_BLOCK])
    return GGUFLayout(metadata, tensors, data_offset, data_end, size, h.hexdigest())


# --- the backbone ---------------------------------------------------------------------------------


def _copy_rows(dst: np.ndarray, src) -> None:
    """Fill the C-contiguous float32 array `dst` from the float pointer `src`."""
    ctypes.memmove(dst.ctypes.data, src, dst.nbytes)


@dataclass
class Decoded:
    """What one `Backbone.decode` call returns."""

    logits: np.ndarray  # float32 [n_out, n_vocab]: every token's with all_logits, else the last one's
    hidden: np.ndarray | None  # float32 [n_tokens, n_embd]: final normed hidden states, or None


class Backbone:
    """A llama.cpp model plus one context (one KV sequence): tokenize, template, decode, edit the KV."""

    def __init__(self, path: str | Path, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int | None = None):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}; {FIX} (or leave --model out for the default model)")
        self.layout = read_gguf_layout(self.path)
        self.fingerprint = self.layout.fingerprint
        self.name = self.path.stem
        self.n_threads = n_threads or physical_cores()
        # None or -1: every layer on the GPU when llama.cpp was built with a GPU backend (CUDA, Metal).
        gpu = llama_cpp.llama_supports_gpu_offload()
        wanted_gpu_layers = 0 if not gpu else 999 if n_gpu_layers is None or n_gpu_layers < 0 else n_gpu_layers

        _init_llama()
        self._model = self._ctx = self._batch = None
        mparams = model_params()
        mparams.n_gpu_layers = wanted_gpu_layers
        _recent_errors.clear()
        self._model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self._model:
            why = f" ({_recent_errors[0]})" if _recent_errors else ""
            raise ModelError(f"llama.cpp could not load {self.path}{why}; {FIX} that llama.cpp supports")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._digit_tokens: frozenset[int] | None = None
        self.n_embd = llama_cpp.llama_model_n_embd(self._model)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self._model)
        # llama.cpp offloads at most the n_layer blocks plus the output layer
        self.n_gpu_layers = min(wanted_gpu_layers, llama_cpp.llama_model_n_layer(self._model) + 1)

        cparams = llama_cpp.llama_context_default_params()
        # A window longer than the model was trained for only produces garbage: cap it.
        cparams.n_ctx = min(n_ctx, self.n_ctx_train) if self.n_ctx_train > 0 else n_ctx
        cparams.n_batch = cparams.n_ubatch = min(MAX_BATCH, cparams.n_ctx)
        cparams.n_threads = cparams.n_threads_batch = self.n_threads
        cparams.no_perf = True
        # As llama-cpp-python's Llama does: greedy output then matches it token for token.
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            self.close()
            raise ModelError(f"llama.cpp could not create a {n_ctx}-token context for {self.path} "
                             f"(out of memory?); lower model.n_ctx in config.toml")
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.n_batch = cparams.n_batch
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._embeddings_on = False
        self._tokens: list[int] = []  # the ids in the KV cache, position by position

        # One batch, allocated once and refilled through numpy views (no per-token allocation).
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        b = self._batch
        self._b_token = np.ctypeslib.as_array(b.token, shape=(self.n_batch,))
        self._b_pos = np.ctypeslib.as_array(b.pos, shape=(self.n_batch,))
        self._b_logits = np.ctypeslib.as_array(b.logits, shape=(self.n_batch,))
        np.ctypeslib.as_array(b.n_seq_id, shape=(self.n_batch,))[:] = 1
        for i in range(self.n_batch):
            b.seq_id[i][0] = 0

        # Tokens and templates.
        self.eos_token_id = llama_cpp.llama_vocab_eos(self._vocab)
        self.bos_token_id = llama_cpp.llama_vocab_bos(self._vocab)
        eos = {self.eos_token_id, llama_cpp.llama_vocab_eot(self._vocab), self.special_token_id("<|im_end|>")}
        self.eos_ids: frozenset[int] = frozenset(t for t in eos if t is not None and t >= 0)
        template = llama_cpp.llama_model_chat_template(self._model, None)
        self.chat_template: str | None = template.decode("utf-8") if template else None
        self.has_chat_template = self.chat_template is not None
        chatml = (self.special_token_id("<|im_start|>"), self.special_token_id("<|im_end|>"))
        if self.chat_template is None and None not in chatml:
            self.chat_template = CHATML_TEMPLATE
            log.info("%s has no chat template; using ChatML (it has ChatML's tokens)", self.path.name)
        self._formatters: dict[bool, object] = {}
        self._embeddings: dict[str, np.ndarray] = {}
        log.info("loaded %s: n_ctx %d, n_embd %d, vocab %d, %d threads, %d GPU layers",
                 self.path.name, self.n_ctx, self.n_embd, self.n_vocab, self.n_threads, self.n_gpu_layers)

    # --- lifetime ---

    def close(self) -> None:
        """Free the context and the model (idempotent). The object is unusable afterwards."""
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Backbone:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_model", None) is not None:
            self.close()

    @property
    def metadata(self) -> dict[str, object]:
        """GGUF metadata scalars and strings (array values are summarised as "<array of N>")."""
        return self.layout.metadata

    # --- tokens and text ---

    def tokenize(self, text: str, special: bool = True, add_bos: bool = False) -> list[int]:
        """Token ids of `text`; special=True parses markers like `<|im_start|>` as single tokens.
        Never adds BOS unless asked: chat templates write it themselves."""
        data = text.encode("utf-8")
        n_max = len(data) + 2
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, n_max, add_bos, special)
        if n < 0:  # cannot happen for byte-level vocabularies, but SPM may insert extra tokens
            buf = (llama_cpp.llama_token * -n)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, -n, add_bos, special)
        return list(buf[:n])

    def token_bytes(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token; special tokens render as b"" unless `special`."""
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def digit_tokens(self) -> frozenset[int]:
        """Ids of the tokens whose text is digits only ("7", " 42"), computed once per model.
        Numbers repeat tokens back to back ("1000"), words almost never do: `ReplyHook` needs
        to tell the two apart."""
        if self._digit_tokens is None:
            self._digit_tokens = frozenset(i for i in range(self.n_vocab)
                                           if self.token_bytes(i).strip().isdigit())
        return self._digit_tokens

    def detokenize(self, ids: Sequence[int], special: bool = False) -> bytes:
        """The bytes of a token sequence (may end inside a UTF-8 character)."""
        return b"".join(self.token_bytes(int(t), special) for t in ids)

    def special_token_id(self, text: str) -> int | None:
        """The id of a special token written `text` (e.g. "<|im_end|>"), or None if the vocabulary
        has no such single token."""
        ids = self.tokenize(text, special=True)
        if len(ids) == 1 and llama_cpp.llama_vocab_get_text(self._vocab, ids[0]).decode("utf-8", "replace") == text:
            return ids[0]
        return None

    def render_chat(self, messages: list[dict], add_generation_prompt: bool) -> str:
        """Messages ([{"role": ..., "content": ...}]) as the prompt text the model was trained on."""
        if self.chat_template is None:
            raise ModelError(f"{self.path.name} has no chat template and no ChatML tokens (a base model?); "
                             f"pass a chat model (--model PATH to an instruct GGUF)")
        formatter = self._formatters.get(add_generation_prompt)
        if formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token: int) -> str:
                return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", "replace") if token >= 0 else ""

            formatter = Jinja2ChatFormatter(template=self.chat_template, eos_token=text(self.eos_token_id),
                                            bos_token=text(self.bos_token_id),
                                            add_generation_prompt=add_generation_prompt)
            self._formatters[add_generation_prompt] = formatter
        try:
            return formatter(messages=messages).prompt
        except Exception as e:  # a template bug or a template that rejects these roles
            raise ModelError(f"the chat template of {self.path.name} failed ({e}); {FIX} with a working template") from None

    # --- decoding and the KV cache ---

    @property
    def n_past(self) -> int:
        """Tokens now in the KV cache (they sit at positions 0 .. n_past-1)."""
        return len(self._tokens)

    @property
    def tokens(self) -> list[int]:
        """The token ids in the KV cache, in order (a copy)."""
        return list(self._tokens)

    def decode(self, tokens: Sequence[int], *, hidden: bool = False, all_logits: bool = False) -> Decoded:
        """Append `tokens` to the KV cache (at n_past) and return their outputs.

        logits: float32 [len(tokens) if all_logits else 1, n_vocab]; hidden (if asked): float32
        [len(tokens), n_embd], the final RMS-normed hidden state of every token. Long inputs are
        fed in n_batch pieces (llama.cpp's logits depend slightly on how a sequence is split into
        decode calls; the same split is bit-reproducible). Raises ContextFullError if they do not fit.
        """
        n = len(tokens)
        if n == 0:
            raise ValueError("decode needs at least one token")
        if self._ctx is None:
            raise RuntimeError("decode on a closed Backbone")
        if self.n_past + n > self.n_ctx:
            raise ContextFullError(f"{self.n_past + n} tokens do not fit the {self.n_ctx}-token context; "
                                   f"sleep to consolidate the day or raise model.n_ctx in config.toml")
        if hidden != self._embeddings_on:  # embeddings make llama.cpp output every row: only when asked
            llama_cpp.llama_set_embeddings(self._ctx, hidden)
            self._embeddings_on = hidden
        every_row = hidden or all_logits
        logits = np.empty((n if all_logits else 1, self.n_vocab), np.float32)
        states = np.empty((n, self.n_embd), np.float32) if hidden else None
        tokens = np.asarray(tokens, dtype=np.int32)
        for start in range(0, n, self.n_batch):
            piece = tokens[start : start + self.n_batch]
            m = len(piece)
            self._feed(piece, last_piece=start + m == n, every_row=every_row)
            # One copy out of llama.cpp's buffers (memmove: cheaper than wrapping them in numpy views).
            if all_logits:
                _copy_rows(logits[start : start + m], llama_cpp.llama_get_logits(self._ctx))
            elif start + m == n:
                _copy_rows(logits, llama_cpp.llama_get_logits_ith(self._ctx, -1))
            if hidden:
                _copy_rows(states[start : start + m], llama_cpp.llama_get_embeddings(self._ctx))
        return Decoded(logits, states)

    def _feed(self, piece: np.ndarray, *, last_piece: bool, every_row: bool) -> None:
        m, pos0 = len(piece), self.n_past
        self._b_token[:m] = piece
        self._b_pos[:m] = np.arange(pos0, pos0 + m, dtype=np.int32)
        self._b_logits[:m] = 1 if every_row else 0
        if last_piece:
            self._b_logits[m - 1] = 1
        self._batch.n_tokens = m
        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc != 0:
            # The KV cache may hold part of the ubatches: drop them so n_past stays the truth.
            llama_cpp.llama_memory_seq_rm(self._memory, 0, pos0, -1)
            raise ModelError(f"llama.cpp failed to decode {m} tokens (status {rc}); "
                             f"sleep to free the context or restart dreamchat")
        self._tokens.extend(piece.tolist())

    def clear(self) -> None:
        """Empty the KV cache."""
        llama_cpp.llama_memory_clear(self._memory, True)
        self._tokens.clear()

    def truncate(self, n_keep: int) -> None:
        """Drop positions [n_keep, n_past): the cache then holds its first n_keep tokens."""
        if not 0 <= n_keep <= self.n_past:
            raise ValueError(f"n_keep must be in [0, {self.n_past}], got {n_keep}")
        if n_keep < self.n_past:
            llama_cpp.llama_memory_seq_rm(self._memory, 0, n_keep, -1)
            del self._tokens[n_keep:]

    def evict_prefix(self, n: int) -> None:
        """Drop positions [0, n) and shift the rest left (RoPE re-rotation) to start at 0."""
        if not 0 <= n <= self.n_past:
            raise ValueError(f"n must be in [0, {self.n_past}], got {n}")
        if n == 0:
            return
        if n == self.n_past or not llama_cpp.llama_memory_can_shift(self._memory):
            tail = self._tokens[n:]  # a cache that cannot shift (no RoPE) is rebuilt instead
            self.clear()
            if tail:
                self.decode(tail)
            return
        llama_cpp.llama_memory_seq_rm(self._memory, 0, 0, n)
        llama_cpp.llama_memory_seq_add(self._memory, 0, n, -1, -n)
        del self._tokens[:n]

    # --- embedding matrices ---

    def output_embeddings(self) -> np.ndarray:
        """The LM head, float32 [n_vocab, n_embd] (logits ≈ hidden @ E.T); the token embedding
        itself for tied models. Dequantized with `gguf` from the file, cached."""
        name = "output.weight" if "output.weight" in self.layout.tensors else "token_embd.weight"
        return self._dequantized(name)

    def token_embeddings(self) -> np.ndarray:
        """The input token embedding, float32 [n_vocab, n_embd] (the same array when tied)."""
        return self._dequantized("token_embd.weight")

    def _dequantized(self, name: str) -> np.ndarray:
        if name not in self._embeddings:
            from gguf.constants import GGMLQuantizationType
            from gguf.quants import dequantize

            info = self.layout.tensors.get(name)
            if info is None:
                raise ModelError(f"{self.path.name} has no tensor {name}; {FIX}")
            raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=info.offset, shape=(info.nbytes,))
            rows = int(np.prod(info.shape[:-1]))
            weights = dequantize(raw.reshape(rows, -1), GGMLQuantizationType(info.ggml_type))
            weights = np.asarray(weights, np.float32).reshape(info.shape)
            if np.may_share_memory(weights, raw):  # F32 tensors come back as a view of the file
                weights = weights.copy()
            self._embeddings[name] = weights
        return self._embeddings[name]
