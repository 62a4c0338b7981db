"""The cached backbone features of episodes that training reads.

`build_feature_set` renders every day and probe of a set of episodes as the assistant would see
it, decodes it once with llama.cpp and stores the hidden states (plus per-token loss weights and
log-sum-exps) in a `FeatureCache`, with an `index.json` saying which sequences form which episode.
`FeatureSet` loads such a folder and `make_batch` turns episodes of it into padded tensors for the
objective in `models/train.py`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dreamchat.models.openings import corrected_reply

INDEX_FORMAT_VERSION = 1


@dataclass
class ProbeRef:
    name: str                   # sequence name in the feature cache
    day: int                    # asked on this day: memory = the nights of days < day
    kind: str = ""
    combined: bool = False
    answer: str = ""


@dataclass
class EpisodeRef:
    days: list[str]             # sequence names, day by day
    probes: list[ProbeRef] = field(default_factory=list)
    fillers: list[str] = field(default_factory=list)    # the days of unrelated conversation among `days`


def _piece_spans(backbone, tokens: list[int]) -> list[tuple[int, int]]:
    """Byte span of every token in the concatenated detokenized text."""
    spans, pos = [], 0
    for t in tokens:
        n = len(backbone.detokenize([t]))
        spans.append((pos, pos + n))
        pos += n
    return spans


def _message_weights(backbone, messages, system_prompt, tokens, role: str, w: float) -> np.ndarray:
    """Weight w on the content tokens of every `role` message (predicting them from the position before)."""
    from dreamchat.models.features import render_day
    weight = np.zeros(len(tokens), np.float32)
    for i, m in enumerate(messages):
        if m["role"] != role:
            continue
        start = len(render_day(backbone, messages[:i], system_prompt, add_generation_prompt=True))
        end = len(render_day(backbone, messages[: i + 1], system_prompt))
        if start < end <= len(tokens):
            weight[start - 1: end - 2] = w        # predict tokens[start .. end-2] (content + end-of-turn)
    return weight


def _reply_weights(backbone, prefix_len: int, tokens: list[int], answer: str, value_weight: float) -> np.ndarray:
    """1 on the reply tokens (through the end-of-turn token), value_weight where they spell `answer`."""
    weight = np.zeros(len(tokens), np.float32)
    eos = [i for i, t in enumerate(tokens) if t in backbone.eos_ids and i >= prefix_len]
    end = eos[0] if eos else len(tokens) - 1
    weight[prefix_len - 1: end] = 1.0            # position t predicts tokens[t + 1]
    if answer:
        reply = tokens[prefix_len: end]
        spans = _piece_spans(backbone, reply)
        text = b"".join(backbone.detokenize([t]) for t in reply)
        at = text.find(answer.encode("utf-8"))
        if at >= 0:
            for j, (a, b) in enumerate(spans):
                if a < at + len(answer.encode("utf-8")) and b > at:
                    weight[prefix_len + j - 1] = value_weight
    return weight


def build_feature_set(backbone, episodes, system_prompt: str, root: Path, name: str, *,
                      value_weight: float, neutral_weight: float, shard_size: int = 50,
                      progress: bool = True, part: int = 0, parts: int = 1,
                      openings=None, openings_chance: float = 0.0, echo: float = 0.0) -> Path:
    """Render and decode every day and probe of `episodes` once; returns the feature-set folder.

    Writes `index.json` (episode structure, shapes, backbone fingerprint), `embeddings.npy` (the
    backbone's output embeddings) and the feature shards. Resumes an interrupted build.

    Several processes can split a build: with parts > 1, this one builds only the shards s with
    s % parts == part and writes no index; once all have finished, one call with parts=1 finds every
    shard on disk (building any that is missing) and writes the index.

    With `echo`, the days are stored as the sleep reads them with `features.echo_hidden` (each user
    turn also read a second time); the probes keep the day as the context holds it at wake.
    """
    import torch
    from tqdm import tqdm

    from dreamchat.models.features import FeatureCache, CachedSequence, echo_hidden, episode_set_key, render_day

    payload = [[[dict(m) for m in day] for day in ep.days] +
               [[p.day, p.question, p.reply, p.answer, p.kind] for p in ep.probes] for ep in episodes]
    settings = {"system_prompt": system_prompt, "value_weight": value_weight,
                "neutral_weight": neutral_weight, "shard_size": shard_size, "name": name}
    if openings is not None and openings_chance > 0:   # absent otherwise: older sets keep their keys
        settings["openings"] = {"weights": openings.memory.fingerprint, "chance": openings_chance,
                                "passes": openings.passes, "max_tokens": openings.max_tokens}
    if echo:   # absent otherwise: older sets keep their keys
        settings["echo"] = echo
    key = f"{name}-{episode_set_key(backbone.fingerprint, payload, settings)}"
    cache = FeatureCache(root, key)
    index = cache.dir / "index.json"
    if index.is_file():
        built = json.loads(index.read_text())
        if built["settings"].get("complete", True):
            _record_fillers(index, built, episodes)
            return cache.dir
    E = torch.from_numpy(np.asarray(backbone.output_embeddings(), dtype=np.float32))   # (n_vocab, n_embd)

    def sequence(tokens: list[int], weight: np.ndarray, hidden: np.ndarray | None = None) -> CachedSequence:
        if hidden is None:
            hidden = cache.hidden_of(backbone, tokens)                                # (T, n_embd) f16
        lse = np.zeros(len(tokens), np.float32)
        at = np.nonzero(weight)[0]
        if len(at):
            z = torch.from_numpy(hidden[at].astype(np.float32)) @ E.t()               # (n, n_vocab)
            lse[at] = torch.logsumexp(z, dim=-1).numpy()
        return CachedSequence(np.asarray(tokens, np.int64), hidden, weight, lse)

    system_tokens = render_day(backbone, [], system_prompt)
    system_hidden: list[np.ndarray] = []

    def decode_after_prefix(toks: list[int]) -> np.ndarray:
        """Hidden states of `toks` from an empty cache; the system prompt, the same at the start of
        every sequence, is decoded once and kept in the KV cache."""
        P = len(system_tokens)
        if P and toks[:P] == system_tokens and len(toks) > P:
            if not system_hidden or backbone.tokens[:P] != system_tokens:
                system_hidden[:] = [cache.hidden_of(backbone, system_tokens)]
            backbone.truncate(P)
            rest = np.asarray(backbone.decode(toks[P:], hidden=True).hidden, np.float16)
            return np.concatenate([system_hidden[0], rest])
        return cache.hidden_of(backbone, toks)

    def day_and_probes(ep, e: int, ref: EpisodeRef) -> dict[str, CachedSequence]:
        """All sequences of one episode. Probes on day d share that day's messages as a prefix:
        decode it once, then each question + reply on top of it (KV truncated back in between)."""
        out = {}
        for d, day in enumerate(ep.days):
            toks = render_day(backbone, day, system_prompt)
            w = (_message_weights(backbone, list(day), system_prompt, toks, "assistant", neutral_weight)
                 if d > 0 else np.zeros(len(toks), np.float32))
            hidden_day = decode_after_prefix(toks)
            slept_day = echo_hidden(backbone, toks, hidden_day, echo) if echo else hidden_day
            out[ref.days[d]] = sequence(toks, w, slept_day)
            slept = None   # the --openings memory after days[:d], slept once for the day's probes
            for k, p in enumerate(ep.probes):
                if int(p.day) != d:
                    continue
                q = list(day) + [{"role": "user", "content": p.question}]
                prefix = render_day(backbone, q, system_prompt, add_generation_prompt=True)
                reply = p.reply
                if "openings" in settings and random.Random(f"{e}/{k}").random() < openings_chance:
                    if slept is None:
                        slept = openings.sleep([(out[ref.days[j]].hidden, out[ref.days[j]].tokens)
                                                for j in range(d)])
                    own = openings.reply(backbone, slept, toks, hidden_day, prefix)
                    reply = corrected_reply(own, p.answer or "", ep.facts) or p.reply
                full = render_day(backbone, q + [{"role": "assistant", "content": reply}], system_prompt)
                if full[:len(toks)] == toks and backbone.n_past >= len(toks) and backbone.tokens[:len(toks)] == toks:
                    backbone.truncate(len(toks))
                    rest = np.asarray(backbone.decode(full[len(toks):], hidden=True).hidden, np.float16)
                    hidden = np.concatenate([hidden_day, rest])
                else:
                    hidden = None
                w = _reply_weights(backbone, len(prefix), full, p.answer or "", value_weight)
                out[f"e{e}/p{k}"] = sequence(full, w, hidden)
        return out

    refs: list[EpisodeRef] = []
    n_shards = -(-len(episodes) // shard_size)
    mine = [s for s in range(n_shards) if s % parts == part]
    bar = tqdm(total=sum(len(episodes[s * shard_size:(s + 1) * shard_size]) for s in mine),
               desc=f"features ({name})", unit="ep", disable=not progress)
    cache.dir.mkdir(parents=True, exist_ok=True)
    if part == 0:
        tmp = cache.dir / "embeddings.tmp.npy"
        np.save(tmp, E.numpy())
        tmp.replace(cache.dir / "embeddings.npy")
    for s in range(n_shards):
        batch = episodes[s * shard_size:(s + 1) * shard_size]
        build = s in mine and not cache.has_shard(s)
        seqs = {}
        for j, ep in enumerate(batch):
            e = s * shard_size + j
            ref = EpisodeRef(days=[f"e{e}/d{d}" for d in range(len(ep.days))],
                             fillers=[f"e{e}/d{d}" for d in ep.fillers])
            ref.probes = [ProbeRef(f"e{e}/p{k}", int(p.day), str(p.kind), bool(p.combined), str(p.answer or ""))
                          for k, p in enumerate(ep.probes)]
            if build:
                seqs.update(day_and_probes(ep, e, ref))
            refs.append(ref)
            if s in mine:
                bar.update(1)
        if build:
            cache.write_shard(s, seqs)
        if parts == 1:
            # The index covers the finished shards, so a partial set can already be trained on.
            write_index(cache.dir, refs, None, backbone.fingerprint, getattr(backbone, "name", ""),
                        {**settings, "complete": s == n_shards - 1, "n_shards": s + 1}, E.shape)
    bar.close()
    backbone.clear()
    return cache.dir


def write_index(folder: Path, refs: list[EpisodeRef], embeddings: np.ndarray | None, backbone_fingerprint: str,
                backbone_name: str = "", settings: dict | None = None, shape: tuple | None = None) -> None:
    """Write `index.json` (the episodes whose shards are on disk), and `embeddings.npy` (the
    backbone's output embeddings) when given. The index is replaced atomically, after its shards."""
    if embeddings is not None:
        np.save(folder / "embeddings.npy", np.asarray(embeddings, np.float32))
        shape = embeddings.shape
    index = {"format_version": INDEX_FORMAT_VERSION, "backbone_fingerprint": backbone_fingerprint,
             "backbone_name": backbone_name, "n_embd": int(shape[1]), "n_vocab": int(shape[0]),
             "settings": settings or {},
             "episodes": [{"days": r.days, "probes": [vars(p) for p in r.probes], "fillers": r.fillers}
                          for r in refs]}
    _replace_index(folder / "index.json", index)


def _replace_index(path: Path, index: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(index))
    tmp.replace(path)


def _record_fillers(path: Path, index: dict, episodes) -> None:
    """Add the filler days to `index` (read from `path`) of a set built before indexes recorded
    them. The set's cache key matched, so `episodes` are the very episodes it was built from."""
    entries = index["episodes"]
    if all("fillers" in e for e in entries) or len(entries) != len(episodes):
        return
    for entry, ep in zip(entries, episodes):
        if len(entry["days"]) != len(ep.days):
            return
        entry["fillers"] = [entry["days"][d] for d in ep.fillers]
    _replace_index(path, index)


class FeatureSet:
    """Built feature sets in memory: sequences by name, episode structure, embeddings. Several
    folders (of the same backbone) are read as one set; their sequence names get a "k:" prefix."""

    def __init__(self, *folders: str | Path):
        if not folders:
            raise ValueError("FeatureSet needs at least one folder")
        self.folders = [Path(f) for f in folders]
        self._parts: list[tuple | None] = [None] * len(self.folders)   # (index mtime, index, episodes, seqs)
        self.refresh()

    def refresh(self) -> bool:
        """Read the folders whose index changed since the last read (all of them the first time; a
        set still being built grows). Returns whether anything was read."""
        from dreamchat.errors import DreamchatError
        from dreamchat.models.features import FeatureCache
        changed = False
        for k, folder in enumerate(self.folders):
            if not (folder / "index.json").is_file():
                raise DreamchatError(f"{folder} is not a feature set (no index.json); build one with `dreamchat train`")
            mtime = (folder / "index.json").stat().st_mtime
            if self._parts[k] is not None and self._parts[k][0] == mtime:
                continue
            index = json.loads((folder / "index.json").read_text())
            if k and index["backbone_fingerprint"] != self._parts[0][1]["backbone_fingerprint"]:
                raise DreamchatError(f"{folder} was built from another backbone than {self.folders[0]}; "
                                     "train on feature sets of one backbone")
            prefix = f"{k}:" if len(self.folders) > 1 else ""
            seqs = {prefix + name: s for name, s in FeatureCache(folder.parent, folder.name).read_all().items()}
            episodes = [EpisodeRef([prefix + d for d in e["days"]],
                                   [ProbeRef(**{**p, "name": prefix + p["name"]}) for p in e["probes"]],
                                   [prefix + d for d in e.get("fillers", [])])
                        for e in index["episodes"]]
            # a set still being built may hold a shard newer than its index: keep indexed episodes only
            episodes = [e for e in episodes if all(n in seqs for n in e.days)]
            self._parts[k] = (mtime, index, episodes, seqs)
            changed = True
        if changed:
            self.index = self._parts[0][1]
            self.backbone_fingerprint = self.index["backbone_fingerprint"]
            self.episodes = [e for part in self._parts for e in part[2]]
            self.seqs = {name: s for part in self._parts for name, s in part[3].items()}
            self.filler_days = [d for e in self.episodes for d in e.fillers]
            if not hasattr(self, "embeddings"):
                self.embeddings = np.load(self.folders[0] / "embeddings.npy")
        return changed


def wording_vocabulary(fs: FeatureSet, limit: int) -> list[int]:
    """The wording path's ids: the most frequent non-value reply tokens of the training probes."""
    counts: dict[int, int] = {}
    for ep in fs.episodes:
        for p in ep.probes:
            s = fs.seqs[p.name]
            for t in np.nonzero(s.weight == 1.0)[0]:     # plain reply tokens (value tokens weigh more)
                tok = int(s.tokens[t + 1])
                counts[tok] = counts.get(tok, 0) + 1
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


# ------------------------------------------------------------------------------------------ batches

def _pad(arrays: list[np.ndarray], dtype, fill=0) -> np.ndarray:
    T = max((len(a) for a in arrays), default=0)
    out = np.full((len(arrays), max(T, 1)) + arrays[0].shape[1:], fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def with_extra_nights(episode: EpisodeRef, days: list[str]) -> EpisodeRef:
    """The episode with `days` (other episodes' days of unrelated conversation) slept in before
    the day of its first question: the same facts and questions, with more nights of ordinary
    talk between them. Every day is decoded on its own, from an empty context, so a cached day
    is the same wherever it is put."""
    if not days or not episode.probes:
        return episode
    first = min(p.day for p in episode.probes)
    probes = [replace(p, day=p.day + len(days)) if p.day >= first else p for p in episode.probes]
    return EpisodeRef(episode.days[:first] + list(days) + episode.days[first:], probes,
                      episode.fillers + list(days))


def with_history_nights(episode: EpisodeRef, days: list[str]) -> EpisodeRef:
    """The episode with `days` (other episodes' days of unrelated conversation) slept in before its
    first day: the facts are then written into a memory that already holds those nights, as a
    memory in long use does, instead of into an empty one."""
    if not days:
        return episode
    probes = [replace(p, day=p.day + len(days)) for p in episode.probes]
    return EpisodeRef(list(days) + episode.days, probes, list(days) + episode.fillers)


def make_batch(fs: FeatureSet, episodes: list[int | EpisodeRef], device, turns=None) -> dict:
    """Tensors for a batch of episodes (indices into `fs.episodes`, or episodes themselves):
    padded days (day-major) and padded probes. With `turns` (a `features.ChatTurns`), a day's
    sleep writes no value where the app's sleep writes none (`ChatTurns.unwritten`: the
    assistant's turns and the system prompt's own words); without, it writes every position's."""
    import torch
    eps = [fs.episodes[e] if isinstance(e, int) else e for e in episodes]
    n_days = max(len(e.days) for e in eps)
    days = []
    for d in range(n_days):
        seqs = [fs.seqs[e.days[d]] if d < len(e.days) else None for e in eps]
        toks = [s.tokens if s is not None else np.zeros(0, np.int64) for s in seqs]
        hid = [s.hidden if s is not None else np.zeros((0, fs.embeddings.shape[1]), np.float16) for s in seqs]
        wts = [s.weight if s is not None else np.zeros(0, np.float32) for s in seqs]
        lse = [s.lse if s is not None else np.zeros(0, np.float32) for s in seqs]
        tokens = torch.from_numpy(_pad(toks, np.int64))
        valid = torch.from_numpy(_pad([np.ones(len(t), bool) for t in toks], bool))
        nxt = torch.cat([tokens[:, 1:], torch.full((len(eps), 1), -1)], dim=1)
        nxt = torch.where(torch.cat([valid[:, 1:], torch.zeros(len(eps), 1, dtype=torch.bool)], 1), nxt, -1)
        if turns is not None:
            quiet = torch.from_numpy(_pad([turns.unwritten(t) for t in toks], bool))
            nxt = nxt.masked_fill(quiet, -1)
        days.append({"tokens": tokens.to(device), "next": nxt.to(device), "valid": valid.to(device),
                     "hidden": torch.from_numpy(_pad(hid, np.float16)).to(device),
                     "weight": torch.from_numpy(_pad(wts, np.float32)).to(device),
                     "lse": torch.from_numpy(_pad(lse, np.float32)).to(device),
                     "present": torch.tensor([d < len(e.days) for e in eps], device=device)})
    probes = [(b, p) for b, e in enumerate(eps) for p in e.probes]
    batch = {"days": days, "probe_episode": torch.tensor([b for b, _ in probes], dtype=torch.long, device=device),
             "probe_day": torch.tensor([min(p.day, n_days) for _, p in probes], dtype=torch.long, device=device),
             "probe_refs": [p for _, p in probes]}
    if probes:
        seqs = [fs.seqs[p.name] for _, p in probes]
        batch.update({
            "p_tokens": torch.from_numpy(_pad([s.tokens for s in seqs], np.int64)).to(device),
            "p_hidden": torch.from_numpy(_pad([s.hidden for s in seqs], np.float16)).to(device),
            "p_weight": torch.from_numpy(_pad([s.weight for s in seqs], np.float32)).to(device),
            "p_lse": torch.from_numpy(_pad([s.lse for s in seqs], np.float32)).to(device)})
    return batch
