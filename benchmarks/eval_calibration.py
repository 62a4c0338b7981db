"""Read and write constants of one memory-weights file, varied side by side on the same probes.

    .venv/bin/python benchmarks/eval_calibration.py --seeds 5,7 --episodes 24 \
        --variant base --variant copy_scale=1.3 --variant gate=1 --variant sharpen=4,skip_system=1

v12 is v11 with one constant changed after training (the copy read 1.6 times stronger,
`models/calibrate.py`), and that gained 5 of 71 natural probes. This script checks any weights for
such a gain: each variant is applied to the loaded model in place (no file is written), sleeps
and answers the same held-out probes (greedy, N passes, the app's reply guards), and one table
compares them. Compare variants only within one run, and confirm a gain on seeds and
conversations it was not found on: between variants that change little, 166 probes move by
six either way (the model card, eighteenth session).

Knobs, `key=value` joined by commas within one variant (`base` is no change):

  copy_scale=F    multiply the copy read (read side; what `models/calibrate.py` writes)
  gate=B          add B to the memory gate's logit (read side: the copy read and the wording path)
  wording=F       multiply the wording path (read side)
  sharpen=P       raise each remembered token's copy score to the power P relative to the
                  strongest one (read side; P > 1 favours the best-matching value)
  write=B         add B to the copy memory's write-strength logit (sleep side)
  forget=F        multiply the copy memory's per-token forgetting (sleep side)
  centre=G        take G times the mean key direction out of every key and query (both sides; the
                  direction is measured on training-split days)
  skip_system=1   the sleep writes no value inside the system turn (sleep side)
  skip_control=1  nor at the chat template's control tokens and the role names after them
  spread=L        each position also writes L times the embeddings of the content words among the
                  `span` tokens up to it in the same turn (sleep side): in "Einstein - that's my
                  tortoise", the positions around "tortoise", whose keys a question about the
                  tortoise matches, then hold "Einstein" too
  span=D          how far back `spread` reaches (default 6)
  spread_gap=1    spread only at positions where neither this token nor the next is a content word
                  (not inside a value being copied, where it garbles the value's later pieces)
  spread_digits=0 do not spread tokens that hold a digit (codes, dates)
  spread_anchor=1 spread only at a category word (the wording path's "tortoise", "cousin", "code")
                  and the position before it, whose keys a question about that category matches
  spread_starts=1 spread only the first piece of a run of content words ("Ein" of "Einstein"; the
                  copy chain of the statement itself supplies the rest)
  skip_punct=1    the sleep writes no value that is punctuation or space only (sleep side: fewer
                  writes, so less of the day's stored associations is overwritten by ones no
                  question asks for)
  skip_function=1 nor a value that is a stop word ("the", "is", "my")
  skip_assistant=1 nor any value inside the assistant's turns (sleep side: in the app those are
                  the backbone's own replies, which may name things the user never said)
  invented=1      nor a value inside the assistant's turns that no other turn of the day holds
                  (its echoes of the user's words are written, its inventions are not)

Every variant, `base` included, sleeps as the app does: since the twenty-eighth session without
the system prompt's own words, and since the twenty-ninth without any value from the assistant's
turns (`features.unwritten_positions`), so `skip_assistant=1` and `invented=1` now change nothing.

`--app-replies FILE` replaces every assistant turn of every day with the backbone's own greedy
reply to the day so far (as the app's days hold them: the small model's words, not the templates'
or the hand-written ones), built once and kept in FILE for later runs. With `--app-sampling` they
are drawn as the app draws them (its sampling settings, a fixed seed per reply, up to its
max_tokens) instead of greedily and cut at 64 tokens; they are stored whole, and `--loop-stop` cuts
each where the app's loop stop would have ended it (`generation.LoopGuard`), so both are measured
on the same draws.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dreamchat.models import wake as wake_module  # noqa: E402
from dreamchat.models.memory import MemoryModel, shifted  # noqa: E402
from dreamchat.recall import STOPWORDS  # noqa: E402  (the app's words that carry no fact)

KNOBS = {"copy_scale": 1.0, "gate": 0.0, "wording": 1.0, "sharpen": 1.0, "write": 0.0, "forget": 1.0,
         "centre": 0.0, "skip_system": 0.0, "skip_control": 0.0, "spread": 0.0, "span": 6.0,
         "spread_gap": 0.0, "spread_digits": 1.0, "skip_punct": 0.0, "skip_function": 0.0,
         "spread_anchor": 0.0, "spread_starts": 0.0, "skip_assistant": 0.0,
         "invented": 0.0}


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    """"copy_scale=1.3,gate=1" -> (the text, {knob: value}); "base" -> ("base", {})."""
    knobs: dict[str, float] = {}
    if text.strip() != "base":
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in KNOBS:
                raise SystemExit(f"eval_calibration: unknown variant part {part!r}; use "
                                 f"{', '.join(k + '=' for k in KNOBS)} or base")
            try:
                knobs[key] = float(value)
            except ValueError:
                raise SystemExit(f"eval_calibration: {part!r} needs a number after '='") from None
    return text, knobs


@torch.no_grad()
def mean_key_direction(memory: MemoryModel, days) -> torch.Tensor:
    """The unit mean of the copy keys [H, K] that `days` ((hidden, tokens) chunks, each as the sleep
    reads them) write on passes 1 and 2, before `lift`: the direction every key shares."""
    unit_keys = []
    lift = memory.copy.lift
    memory.copy.lift = lambda k: unit_keys.append(k[0]) or lift(k)   # keys() lifts every pass's keys
    try:
        for hidden, tokens in days:
            h = torch.as_tensor(hidden)[None].float()
            t = torch.as_tensor(tokens)[None]
            for _ in memory.sleep_passes(h, t, torch.full_like(t, -1), torch.ones_like(t, dtype=torch.bool),
                                         memory.empty_state(), passes=2):
                pass
    finally:
        del memory.copy.lift
    return F.normalize(torch.cat(unit_keys).mean(0), dim=-1)


def unwritable(tokens: torch.Tensor, control: torch.Tensor, roles: set[int],
               skip_control: bool) -> torch.Tensor:
    """tokens [T] -> bool [T]: positions the sleep must not write from. For each role token in
    `roles` (the system's, the assistant's), every position from a control token followed by that
    role up to the next control token (that turn); with `skip_control`, control tokens, the
    positions just before them (their value would be the control token) and the role name just
    after them."""
    is_control = torch.isin(tokens, control)
    skip = torch.zeros_like(is_control)
    if skip_control:
        skip |= is_control | torch.cat([is_control[1:], is_control.new_zeros(1)])
        skip |= torch.cat([is_control.new_zeros(1), is_control[:-1]])
    if roles:
        inside = False
        for i, t in enumerate(tokens.tolist()):
            if is_control[i]:
                inside = i + 1 < len(tokens) and int(tokens[i + 1]) in roles
            skip[i] |= inside
    return skip


@contextlib.contextmanager
def applied(memory: MemoryModel, knobs: dict[str, float], *, key_direction: torch.Tensor | None = None,
            control: torch.Tensor | None = None, system_role: int | None = None,
            assistant_role: int | None = None,
            content: torch.Tensor | None = None, digits: torch.Tensor | None = None,
            punctuation: torch.Tensor | None = None, function: torch.Tensor | None = None,
            category: torch.Tensor | None = None):
    """The model with `knobs` applied (see the module docstring); restored exactly on exit."""
    k = {**KNOBS, **knobs}
    if k["centre"] and key_direction is None:
        raise ValueError("centre needs key_direction")
    if (k["skip_system"] or k["skip_control"]) and control is None:
        raise ValueError("skip_system / skip_control need the control token ids")
    if k["spread"] and (content is None or control is None):
        raise ValueError("spread needs the content-word mask and the control token ids")
    if k["spread_anchor"] and category is None:
        raise ValueError("spread_anchor needs the category-word mask")
    saved = {name: p.detach().clone() for name, p in memory.named_parameters()}
    read_memory = wake_module.read_memory
    with torch.no_grad():
        memory.copy_log_scale += math.log(k["copy_scale"])
        memory.gate.bias += k["gate"]
        memory.wording.weight *= k["wording"]
        memory.copy.beta_proj.bias += k["write"]
        # the forgetting is softplus(decay_proj(f)), ~1e-4 a token: a shifted bias scales it
        memory.copy.decay_proj.bias += math.log(k["forget"])
    if k["sharpen"] != 1.0:
        wake_module.read_memory = _sharpened(read_memory, k["sharpen"])
    if k["centre"]:
        lift, u, g = memory.copy.lift, key_direction, k["centre"]
        memory.copy.lift = lambda x: lift(F.normalize(x - g * (x * u).sum(-1, keepdim=True) * u, dim=-1, eps=1e-6))
    if (k["skip_punct"] or k["skip_function"]) and (punctuation is None or function is None):
        raise ValueError("skip_punct / skip_function need the punctuation and stop-word masks")
    if k["skip_system"] or k["skip_control"] or k["skip_punct"] or k["skip_function"] or k["skip_assistant"] \
            or k["invented"]:
        roles = ({system_role} if k["skip_system"] else set()) | ({assistant_role} if k["skip_assistant"] else set())
        sleep_passes = memory.sleep_passes
        quiet = torch.zeros(memory.config.n_vocab, dtype=torch.bool)   # values never written
        if k["skip_punct"]:
            quiet |= punctuation
        if k["skip_function"]:
            quiet |= function

        def masked(hidden, tokens, next_tokens, valid, state, passes):
            skip = torch.stack([unwritable(row, control, roles, bool(k["skip_control"])) for row in tokens]) \
                if roles or k["skip_control"] else torch.zeros_like(tokens, dtype=torch.bool)
            skip |= quiet[next_tokens.clamp(min=0)] & (next_tokens >= 0)
            if k["invented"]:   # the replies' values that no other turn holds
                turns = torch.stack([unwritable(row, control, {assistant_role}, False) for row in tokens])
                for b in range(tokens.shape[0]):
                    skip[b] |= turns[b] & ~torch.isin(next_tokens[b], tokens[b][~turns[b]])
            return sleep_passes(hidden, tokens, next_tokens.masked_fill(skip, -1), valid, state, passes)
        memory.sleep_passes = masked
    if k["spread"]:
        words = content if k["spread_digits"] else content & ~digits
        memory.copy_values = _spread_values(memory, k["spread"], int(k["span"]), words, control,
                                            gap_only=bool(k["spread_gap"]), gap_words=content,
                                            anchors=category if k["spread_anchor"] else None,
                                            starts_only=bool(k["spread_starts"]))
    memory.__dict__.update(_wake_step=None, _wake_trace_failed=False)  # trace again with the knobs
    try:
        yield memory
    finally:
        wake_module.read_memory = read_memory
        memory.copy.__dict__.pop("lift", None)
        memory.__dict__.pop("sleep_passes", None)
        memory.__dict__.pop("copy_values", None)
        with torch.no_grad():
            for name, p in memory.named_parameters():
                p.copy_(saved[name])
        memory.__dict__.update(_wake_step=None, _wake_trace_failed=False)


def spread_sources(tokens: torch.Tensor, content: torch.Tensor, control: torch.Tensor, span: int
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """tokens [B, T] -> for j = 0 .. span - 1, (the token j back [B, T], whether it spreads there
    [B, T]): a content word (`content` [n_vocab] bool) of the same turn (no control token between)."""
    turn = torch.cumsum(torch.isin(tokens, control).long(), dim=1)
    out = []
    for j in range(span):
        back = shifted(tokens, j)
        same = F.pad(turn, (j, 0), value=-1)[:, :tokens.shape[1]] == turn
        out.append((back, same & content[back]))
    return out


def _spread_values(memory: MemoryModel, weight: float, span: int, content: torch.Tensor, control: torch.Tensor,
                   gap_only: bool = False, gap_words: torch.Tensor | None = None,
                   anchors: torch.Tensor | None = None, starts_only: bool = False):
    """`MemoryModel.copy_values` that adds `weight` x the content words up to each position."""
    def copy_values(tokens, next_tokens, writes):
        values = MemoryModel.copy_values(memory, tokens, next_tokens, writes)
        where = writes
        if gap_only:
            where = where & ~gap_words[tokens] & ~gap_words[next_tokens]
        if anchors is not None:
            where = where & (anchors[tokens] | anchors[next_tokens])
        for j, (back, spreads) in enumerate(spread_sources(tokens, content, control, span)):
            if starts_only:   # the piece before `back` is not a content word (or there is none)
                spreads = spreads & ~content[shifted(tokens, j + 1)]
            values = values + weight * memory.emb_v[back] * (spreads & where)[..., None]
        return values
    return copy_values


def _sharpened(read_memory, power: float):
    """`wake.read_memory` with the copy part of the bias sharpened: a remembered token's push c
    becomes top * (c / top) ** power (top: the strongest push; pushes <= 0 kept)."""
    def read(m, f, h, qbuf, S_copy, copy_rows, word_rows, word_at):
        copy, new_qbuf = read_memory(m, f, h, qbuf, S_copy, copy_rows, torch.zeros_like(word_rows), word_at)
        words, _ = read_memory(m, f, h, qbuf, S_copy, torch.zeros_like(copy_rows), word_rows, word_at)
        top = copy.max().clamp(min=1e-6)
        copy = torch.where(copy > 0, top * (copy.clamp(min=0) / top) ** power, copy)
        return copy + words, new_qbuf
    return read


def content_words(backbone, memory: MemoryModel, control: torch.Tensor) -> dict[str, torch.Tensor]:
    """[n_vocab] bool masks by name: "content", tokens worth spreading (not a control token, not
    punctuation or space, not a stop word, not one of the wording path's category words such as
    "tortoise"); "digits", those of them that hold a digit; "punctuation", tokens with no letter or
    digit (control tokens excluded); "function", the stop words."""
    wording = {int(t) for t in memory.wording_ids}
    keep = torch.zeros(memory.config.n_vocab, dtype=torch.bool)
    digits = torch.zeros_like(keep)
    punctuation = torch.zeros_like(keep)
    function = torch.zeros_like(keep)
    category = torch.zeros_like(keep)
    for t in range(memory.config.n_vocab):
        text = backbone.token_bytes(t).decode("utf-8", "replace").strip().lower()
        if not any(ch.isalnum() for ch in text):
            punctuation[t] = True
            continue
        if text in STOPWORDS:
            function[t] = True
            continue
        if t in wording and text.isalpha() and len(text) >= 3:
            category[t] = True
            continue
        keep[t] = True
        if any(ch.isdigit() for ch in text):
            digits[t] = True
    for mask in (keep, punctuation, function):
        mask[control] = False
    return {"content": keep, "digits": digits, "punctuation": punctuation, "function": function,
            "category": category}


APP_REPLY_TOKENS = 64  # a reply of the app's is usually shorter; longer ones are cut here


def with_app_replies(backbone, scenarios: list, system_prompt: str, cache: Path, sampled: bool = False,
                     loop_stop: bool = False) -> list:
    """The scenarios with every assistant turn replaced by the backbone's reply to the day so far
    (the system prompt, then the day's turns), read from `cache` when it has them: greedy and at
    most APP_REPLY_TOKENS, or with `sampled` drawn with the app's settings (and with `loop_stop`
    cut where the app's loop stop would end it)."""
    import dataclasses
    import zlib

    from dreamchat.config import SamplingSettings
    from dreamchat.models.features import render_day
    from dreamchat.models.generation import Done, LoopGuard, generate
    from dreamchat.models.sampler import Sampler

    stored = json.loads(cache.read_text()) if cache.is_file() else {}
    settings = SamplingSettings()

    def draw(key: str, target: list[int]) -> str | dict:
        if not sampled:
            done = [e for e in generate(backbone, target[-1:], Sampler.greedy(), max_tokens=APP_REPLY_TOKENS)
                    if isinstance(e, Done)][-1]
            return done.text.strip() or "Okay."
        sampler = Sampler.from_settings(dataclasses.replace(settings, seed=zlib.crc32(key.encode())))
        done = [e for e in generate(backbone, target[-1:], sampler, max_tokens=settings.max_tokens)
                if isinstance(e, Done)][-1]
        stop = LoopGuard.stop_at(done.tokens)
        cut = backbone.detokenize(done.tokens[:stop]).decode("utf-8", "replace") if stop else done.text
        return {"text": done.text.strip() or "Okay.", "loop_stop": cut.strip() or "Okay.", "tokens": done.n_tokens}

    def reply(day: list[dict], upto: int) -> str:
        target = render_day(backbone, day[:upto], system_prompt, add_generation_prompt=True)
        key = json.dumps([[m["role"], m["text"]] for m in day[:upto]])
        if key not in stored:
            keep = next((i for i, (a, b) in enumerate(zip(backbone.tokens, target)) if a != b),
                        min(len(backbone.tokens), len(target)))
            keep = min(keep, len(target) - 1)
            backbone.truncate(keep)
            if target[keep:-1]:
                backbone.decode(target[keep:-1])
            stored[key] = draw(key, target)
        kept = stored[key]
        return kept if isinstance(kept, str) else kept["loop_stop" if loop_stop else "text"]

    started, out = time.perf_counter(), []
    for source, episode in scenarios:
        days = []
        for day in episode.days:
            new_day: list[dict] = []
            for m in day:
                new_day.append({**m, "text": reply(new_day, len(new_day))} if m["role"] == "assistant" else dict(m))
            days.append(new_day)
        out.append((source, dataclasses.replace(episode, days=days)))
    backbone.clear()
    cache.write_text(json.dumps(stored, indent=0, ensure_ascii=False))
    print(f"eval_calibration: app replies for {len(out)} scenarios ({len(stored)} in {cache}, "
          f"{time.perf_counter() - started:.0f} s)", flush=True)
    return out


def natural_range(text: str) -> slice:
    """"N" -> the first N natural conversations; "A:B" -> those from A to B."""
    lo, sep, hi = text.partition(":")
    try:
        return slice(int(lo), int(hi)) if sep else slice(0, int(lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or A:B (whole numbers)") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="memory weights (default: the shipped ones)")
    parser.add_argument("--model", default=None, help="GGUF backbone (default: the default model)")
    parser.add_argument("--seeds", default="5,7", help="held-out episode seeds, or '' for none (default 5,7)")
    parser.add_argument("--episodes", type=int, default=24, help="episodes per seed (default 24)")
    parser.add_argument("--natural", default="0", metavar="N or A:B", type=natural_range,
                        help="natural conversations: the first N, or those from A to B (default 0)")
    parser.add_argument("--passes", type=int, default=2, help="sleep passes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--variant", action="append", default=None, metavar="KNOBS",
                        help="a variant to measure (repeatable; default: base)")
    parser.add_argument("--json", default=None, help="write every reply here")
    parser.add_argument("--app-replies", default=None, metavar="FILE",
                        help="days with the backbone's own replies, built once into FILE (module docstring)")
    parser.add_argument("--app-sampling", action="store_true",
                        help="with --app-replies: draw them with the app's sampling, up to its max_tokens")
    parser.add_argument("--loop-stop", action="store_true",
                        help="with --app-sampling: cut each reply where the app's loop stop would end it")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in (args.variant or ["base"])]

    from dreamchat.config import Config
    from dreamchat.default_model import ensure_default_model
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.episodes import make_episodes, natural_conversations
    from dreamchat.models.evaluate import BenchmarkConfig, MemoryBenchmark, recalled
    from dreamchat.models.memory import default_weights_path

    torch.set_num_threads(1)   # the tower's per-token ops are tiny (as in `dreamchat eval memory`)
    weights = Path(args.weights or default_weights_path())
    backbone = Backbone(args.model or ensure_default_model(progress=False), n_ctx=4096, n_threads=args.threads)
    memory = MemoryModel.load(weights, backbone.output_embeddings(), backbone.fingerprint)
    bench = MemoryBenchmark(backbone, memory, BenchmarkConfig(system_prompt=Config().system_prompt))

    scenarios = [("synthetic", e) for s in args.seeds.split(",") if s.strip()
                 for e in make_episodes(args.episodes, split="test", seed=int(s))]
    scenarios += [("natural", e) for e in natural_conversations()[args.natural]]

    if args.app_replies:
        scenarios = with_app_replies(backbone, scenarios, Config().system_prompt, Path(args.app_replies),
                                     sampled=args.app_sampling, loop_stop=args.loop_stop)

    extras = {}
    if any("centre" in k for _, k in variants):
        days = [chunk for e in make_episodes(40, split="train", seed=123) for chunk in bench.day_features(e.days[0])]
        extras["key_direction"] = mean_key_direction(memory, days)
    if any(key.startswith(("skip_", "spread", "invented")) for _, k in variants for key in k):
        control = [t for t in range(memory.config.n_vocab)
                   if backbone.token_bytes(t, special=True) != backbone.token_bytes(t)]
        extras["control"] = torch.tensor(control)
        system_turn = backbone.tokenize(backbone.render_chat([{"role": "system", "content": "x"}], False))
        is_control = set(control)
        extras["system_role"] = next((role for t, role in zip(system_turn, system_turn[1:]) if t in is_control), None)
        # The role name's first token after a control token ("ass" of SmolLM2's "ass" "istant"); not
        # read off a rendered assistant turn, which the template opens with a default system turn.
        extras["assistant_role"] = backbone.tokenize("assistant", special=False)[0]
    if any(key.startswith(("skip_punct", "skip_function", "spread")) for _, k in variants for key in k):
        extras.update(content_words(backbone, memory, extras["control"]))

    print(f"eval_calibration: {weights.name}, seeds {args.seeds or '-'} x {args.episodes}, natural "
          f"{args.natural.start}:{args.natural.stop}, N = {args.passes}, greedy")
    width = max(len("variant"), *(len(name) for name, _ in variants)) + 2
    print(f"{'variant':<{width}}{'synthetic':>11}{'natural':>9}{'simple':>9}{'updates':>9}{'combined':>10}{'min':>6}")
    records = []
    for name, knobs in variants:
        started = time.perf_counter()
        counts = collections.Counter()
        with applied(memory, knobs, **extras):
            for source, episode in scenarios:
                states = {}
                for probe in episode.probes:
                    if probe.day not in states:
                        states[probe.day] = bench.sleep_through(episode.days[:probe.day], args.passes)
                    reply = bench.ask(episode.days[probe.day], probe.question, {"m": states[probe.day]},
                                      probe.answer)["m"][0]
                    hit = recalled(probe.answer, reply)
                    kind = "combined" if probe.combined else "update" if probe.kind == "update" else "simple"
                    counts.update({(source, "hit"): hit, (source, "n"): 1})
                    if source == "synthetic":
                        counts.update({(kind, "hit"): hit, (kind, "n"): 1})
                    records.append({"variant": name, "source": source, "kind": kind, "question": probe.question,
                                    "answer": probe.answer, "reply": reply, "recalled": hit})

        def cell(key):
            return f"{counts[(key, 'hit')]}/{counts[(key, 'n')]}"
        print(f"{name:<{width}}{cell('synthetic'):>11}{cell('natural'):>9}{cell('simple'):>9}{cell('update'):>9}"
              f"{cell('combined'):>10}{(time.perf_counter() - started) / 60:>6.1f}", flush=True)
    backbone.close()
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    from dreamchat.errors import DreamchatError
    try:
        sys.exit(main())
    except DreamchatError as exc:  # a missing or foreign weights file, no model: one line, no traceback
        sys.exit(f"eval_calibration: {exc}")
