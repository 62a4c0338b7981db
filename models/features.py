"""Backbone features for the memory side: a day's tokens, its hidden states, and a disk cache of them.

The memory tower never sees text, only what the backbone saw: the chat-formatted tokens of a day and
the backbone's final normed hidden state for each of them. Three pieces:

- `render_day`: the day's messages as the tokens the assistant's context holds (one function, used
  by the assistant, the sleep, training and evaluation, so they cannot drift apart);
- `day_chunks`: decode those tokens in context-sized chunks from an empty KV cache and yield
  (hidden, tokens) per chunk, the input of `MemoryModel.consolidate`;
- `FeatureCache`: features of a whole training set, computed once with llama.cpp (the expensive
  part: ~450 tokens/s on 2 CPU cores) and stored as float16 safetensors shards keyed by the
  backbone's fingerprint and a hash of the episode texts, so training restarts cost nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1


def _turns(messages: Sequence[dict], system_prompt: str | None) -> list[dict]:
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for m in messages:
        text = m.get("content", m.get("text"))
        if text is None or "role" not in m:
            raise ValueError(f"a message needs 'role' and 'content' (or 'text'), got keys {sorted(m)}")
        turns.append({"role": m["role"], "content": text})
    return turns


def render_day(backbone, messages: Sequence[dict], system_prompt: str | None,
               add_generation_prompt: bool = False) -> list[int]:
    """The day's tokens exactly as the assistant's context holds them: the system prompt (if any) and
    the messages ({"role", "content" or "text"}) through the backbone's chat template, tokenized with
    special tokens. add_generation_prompt appends the assistant-turn header (to generate a reply)."""
    text = backbone.render_chat(_turns(messages, system_prompt), add_generation_prompt=add_generation_prompt)
    return list(backbone.tokenize(text, special=True))


@dataclass(frozen=True)
class ChatTurns:
    """Where the turns of a ChatML day are: the ids of <|im_start|> and <|im_end|> and of each role's
    name. Taken once from a backbone's tokenizer, so training finds the turns in cached tokens
    without loading one."""

    start: int
    end: int
    roles: tuple[tuple[str, tuple[int, ...]], ...]   # (role, its name's ids): a name may be several

    @classmethod
    def of(cls, backbone) -> "ChatTurns | None":
        """The backbone's turn markers; None when its template is not ChatML."""
        try:
            start_id, = backbone.tokenize("<|im_start|>", special=True)
            end_id, = backbone.tokenize("<|im_end|>", special=True)
        except ValueError:  # not single tokens: not ChatML
            return None
        roles = tuple((role, tuple(backbone.tokenize(role, special=False)))
                      for role in ("system", "user", "assistant"))
        return cls(int(start_id), int(end_id), roles)

    def spans(self, tokens: Sequence[int], role: str) -> list[tuple[int, int]]:
        """[start, end) of every turn of `role`: its header and text, from the turn's <|im_start|>
        up to its <|im_end|>."""
        header = [self.start, *dict(self.roles)[role]]
        tokens = list(tokens)
        spans = []
        for i in range(len(tokens) - len(header) + 1):
            if tokens[i:i + len(header)] == header:
                end = next((j for j in range(i + len(header), len(tokens)) if tokens[j] == self.end), len(tokens))
                spans.append((i, end))
        return spans

    def unwritten(self, tokens: Sequence[int]) -> np.ndarray:
        """`unwritten_positions` of `tokens`."""
        tokens = np.asarray(tokens, dtype=np.int64)
        listed = tokens.tolist()
        in_system = np.zeros(len(tokens), dtype=bool)
        for start, end in self.spans(listed, "system"):
            in_system[start:end] = True
        in_reply = np.zeros(len(tokens), dtype=bool)
        for start, end in self.spans(listed, "assistant"):
            in_reply[start:end] = True
        said = np.isin(np.append(tokens[1:], -1), tokens[~in_system])   # position t writes token t + 1
        return (in_system & ~said) | in_reply


def turn_spans(backbone, tokens: Sequence[int], role: str) -> list[tuple[int, int]]:
    """[start, end) of every turn of `role` ("system", "user", "assistant") in chat-formatted
    tokens: its header and text, from the turn's <|im_start|> up to its <|im_end|>. ChatML only;
    [] for other templates."""
    turns = ChatTurns.of(backbone)
    return turns.spans(tokens, role) if turns is not None else []


def user_turn_spans(backbone, tokens: Sequence[int]) -> list[tuple[int, int]]:
    """`turn_spans` of the user's turns."""
    return turn_spans(backbone, tokens, "user")


def unwritten_positions(backbone, tokens: Sequence[int]) -> np.ndarray:
    """bool [T]: the positions of a day whose value the sleep does not write (`MemoryModel.consolidate`
    with `unwritten`): every position of the assistant's turns, and those inside the system turn
    whose next token no other part of the day holds. The tower still reads every turn.

    The system prompt is read every night, so its own words (" helpful", " assistant") were written
    as values night after night, and a question with nothing better in the memory got them back
    ("Your cousin is a helpful assistant."). Left unwritten, they gain held-out recall on every
    sample measured and lose none on synthetic facts (the model card, twenty-eighth session); its
    words that the day also says are written as before.

    The assistant's turns are the small backbone's own replies: sampled, often long, sometimes in
    another language, and full of words the user never said, which the sleep wrote as values next to
    the user's facts. Left unwritten, the next day's recall on days with such replies rose from 67 to
    76 of 119 synthetic probes and from 33 to 41 of 71 natural ones (the model card, twenty-ninth
    session); what the assistant itself said is then not remembered, only what the user said.
    """
    turns = ChatTurns.of(backbone)
    return turns.unwritten(tokens) if turns is not None else np.zeros(len(tokens), dtype=bool)


def echo_hidden(backbone, tokens: Sequence[int], hidden: np.ndarray, mix: float) -> np.ndarray:
    """`hidden` with each user turn's positions moved `mix` of the way to a second reading of it.

    The backbone reads causally, so in "Einstein - that's my tortoise" the state before "Einstein"
    has not seen "tortoise". Decoded again right after itself, the turn's second reading has seen
    all of it. The KV cache must hold exactly `tokens` (as after decoding them from an empty cache)
    and holds them again afterwards.
    """
    tokens = [int(t) for t in tokens]
    if mix == 0 or backbone.tokens != tokens:
        if mix:
            raise ValueError("echo_hidden needs the KV cache to hold exactly the tokens read")
        return hidden
    out = np.array(hidden, dtype=np.float32, copy=True)
    for start, end in user_turn_spans(backbone, tokens):
        if backbone.n_ctx - end < end - start:  # no room to read it again: keep the first reading
            continue
        if backbone.n_past > end:
            backbone.truncate(end)
        elif backbone.n_past < end:
            backbone.decode(tokens[backbone.n_past:end])
        again = np.asarray(backbone.decode(tokens[start:end], hidden=True).hidden, dtype=np.float32)
        out[start:end] = (1 - mix) * out[start:end] + mix * again
        backbone.truncate(end)
    if backbone.n_past < len(tokens):
        backbone.decode(tokens[backbone.n_past:])
    return out.astype(hidden.dtype, copy=False)


class DayChunks:
    """(hidden [T, n_embd] float32, tokens [T] int64) per chunk, decoded lazily from an empty cache.

    Sized (len = number of chunks) so progress bars know the total before decoding starts. Each chunk
    is decoded on its own from a cleared KV cache (hard eviction, as in the paper's Algorithm 1);
    the backbone's cache is left holding the last chunk, so callers clear or rebuild it after.
    """

    def __init__(self, backbone, tokens: Sequence[int], chunk_tokens: int, echo: float = 0.0):
        if chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
        if chunk_tokens > backbone.n_ctx:
            raise ValueError(f"chunk_tokens ({chunk_tokens}) exceeds the backbone's context ({backbone.n_ctx})")
        self.backbone = backbone
        self.tokens = [int(t) for t in tokens]
        self.chunk_tokens = chunk_tokens
        self.echo = echo  # see `echo_hidden`

    def __len__(self) -> int:
        return -(-len(self.tokens) // self.chunk_tokens)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.tokens), self.chunk_tokens):
            chunk = self.tokens[start:start + self.chunk_tokens]
            self.backbone.clear()
            hidden = np.asarray(self.backbone.decode(chunk, hidden=True).hidden, dtype=np.float32)
            if self.echo:
                hidden = echo_hidden(self.backbone, chunk, hidden, self.echo)
            yield hidden, np.asarray(chunk, dtype=np.int64)


def day_chunks(backbone, tokens: Sequence[int], chunk_tokens: int, echo: float = 0.0) -> DayChunks:
    """Clear the KV cache and decode each chunk of `tokens` with hidden states; see `DayChunks`."""
    return DayChunks(backbone, tokens, chunk_tokens, echo)


# ------------------------------------------------------------------------------------------- cache

@dataclass
class CachedSequence:
    """One cached token sequence: its tokens, hidden states and an optional per-token target weight."""
    tokens: np.ndarray          # (T,) int64
    hidden: np.ndarray          # (T, n_embd) float16
    weight: np.ndarray          # (T,) float32; weight[t] > 0 = predict tokens[t + 1] from position t
    lse: np.ndarray             # (T,) float32; logsumexp of the backbone logits h_t E^T where weight > 0


def episode_set_key(backbone_fingerprint: str, payload: object, settings: dict) -> str:
    """The cache key: backbone fingerprint + a hash of the sequences' text + how they were rendered."""
    h = hashlib.sha256()
    h.update(f"v{CACHE_FORMAT_VERSION}:{backbone_fingerprint}:".encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


class FeatureCache:
    """Named token sequences with backbone hidden states, on disk under `root/<key>/`.

    Sequences are written in shards (`shard-00000.safetensors`, ...) as they are computed, so an
    interrupted build resumes at the first missing shard. Each shard holds, for its sequences
    concatenated, `tokens` (int64), `hidden` (float16, half the disk and RAM of float32 at no
    measurable cost to the tower) and `weight` and `lse` (float32), plus `offsets`; the sequence names are in
    the shard metadata.
    """

    def __init__(self, root: str | Path, key: str):
        self.dir = Path(root) / key
        self.key = key

    def shard_path(self, index: int) -> Path:
        return self.dir / f"shard-{index:05d}.safetensors"

    def has_shard(self, index: int) -> bool:
        return self.shard_path(index).is_file()

    def write_shard(self, index: int, sequences: dict[str, CachedSequence]) -> None:
        from safetensors.numpy import save_file
        self.dir.mkdir(parents=True, exist_ok=True)
        names = list(sequences)
        lengths = [len(sequences[n].tokens) for n in names]
        arrays = {
            "tokens": np.concatenate([sequences[n].tokens for n in names]).astype(np.int64),
            "hidden": np.concatenate([sequences[n].hidden for n in names]).astype(np.float16),
            "weight": np.concatenate([sequences[n].weight for n in names]).astype(np.float32),
            "lse": np.concatenate([sequences[n].lse for n in names]).astype(np.float32),
            "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        }
        tmp = self.shard_path(index).with_suffix(".tmp")
        save_file(arrays, str(tmp), metadata={"names": json.dumps(names),
                                              "format_version": str(CACHE_FORMAT_VERSION)})
        tmp.replace(self.shard_path(index))

    def read_shard(self, index: int) -> dict[str, CachedSequence]:
        from safetensors import safe_open
        with safe_open(str(self.shard_path(index)), framework="numpy") as fh:
            names = json.loads(fh.metadata()["names"])
            arrays = {k: fh.get_tensor(k) for k in ("tokens", "hidden", "weight", "lse", "offsets")}
        off = arrays["offsets"]
        return {name: CachedSequence(*(arrays[k][off[i]:off[i + 1]] for k in ("tokens", "hidden", "weight", "lse")))
                for i, name in enumerate(names)}

    def read_all(self) -> dict[str, CachedSequence]:
        out: dict[str, CachedSequence] = {}
        index = 0
        while self.has_shard(index):
            out.update(self.read_shard(index))
            index += 1
        return out

    def hidden_of(self, backbone, tokens: Sequence[int]) -> np.ndarray:
        """Decode one sequence from an empty cache; its hidden states as float16 [T, n_embd]."""
        backbone.clear()
        return np.asarray(backbone.decode(list(tokens), hidden=True).hidden, dtype=np.float16)
