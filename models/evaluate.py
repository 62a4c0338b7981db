"""`dreamchat eval memory`: does the assistant remember yesterday after its context was cleared?

On held-out scenarios (synthetic episodes with phrasings and values never seen in training, and the
hand-written natural conversations of `natural.py`) every probe question is asked on its day with
only that day's messages in the context, and the greedy reply (at most `max_tokens` tokens) counts
as recalled when it contains the answer (case-insensitive, punctuation and spacing normalised).
`--sampling app` draws the replies with the app's default sampling settings instead (temperature,
top-k/p, min-p, repeat penalty), one seed per probe, so every condition answers a probe from the
same random stream: what a user of the default settings gets. One draw per probe is noisy (a
draw that takes another first word can end at another fact), so `--samples K` draws K replies per
probe and condition, each from its own seed, and counts every draw: recall is then the mean over
draws, and the counts in the table are draws, not probes.
One table, one row per condition:

- no memory: the context was cleared and there is no tower (the backbone alone);
- dreamchat after one night with N = 1, 2, 4 sleep passes: every earlier day was consolidated
  (Algorithm 1, as `Assistant.sleep` does it) and the tower biases the reply;
- full context: nothing cleared, the earlier days' messages are in the context (an upper bound
  from the same backbone, no tower);
- retention after 1, 3 and 7 nights: unrelated days of small talk are slept between the facts and
  the questions (N = the app's default passes);
- with `--history H`: one night's facts over H nights of earlier memory: the same unrelated days
  (small talk, facts about other people) are slept *before* the facts, as a memory of a month of
  use holds them, and the questions come the next day (N = the app's default passes);
- perplexity of neutral held-out text (short general-knowledge answers): backbone alone versus
  backbone + tower with a full memory (a week of facts slept in), to check the tower stays out of
  the way when it has nothing to say.

Columns: synthetic recall %, natural recall %, combined-facts recall % (the probes of either set
that need two separately stated facts). The day's features are decoded once and reused across
conditions; each probe's prompt is decoded once and replayed from the KV cache per condition.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from dreamchat.errors import ModelError
from dreamchat.models.episodes import Episode, Probe, make_episodes, natural_conversations, unrelated_days

log = logging.getLogger(__name__)

SLEEP_CHUNK_TOKENS = 1024  # as the assistant's sleep: chunks of at most this many tokens (and n_ctx)

# Neutral held-out text for the perplexity rows: (user question, assistant answer), no personal facts.
NEUTRAL_TEXTS: list[tuple[str, str]] = [
    ("Why does the sea have tides?",
     "Tides come mostly from the Moon's gravity. It pulls a little harder on the side of the Earth "
     "facing it than on the far side, so the oceans bulge on both sides. As the Earth turns, most "
     "coasts pass through two bulges a day, which gives two high tides and two low tides."),
    ("How does sourdough rise without yeast from a packet?",
     "A sourdough starter is a culture of wild yeasts and lactic acid bacteria living in flour and "
     "water. The yeasts make carbon dioxide that inflates the dough, while the bacteria make acids "
     "that give the bread its tang and help it keep longer."),
    ("What is the difference between weather and climate?",
     "Weather is what the atmosphere does over hours and days: rain this afternoon, wind tomorrow. "
     "Climate is the long-term pattern of weather in a place, usually averaged over thirty years "
     "or more, such as how warm its summers tend to be."),
    ("Can you explain what a leap year is?",
     "The Earth takes about 365.25 days to go around the Sun. To keep the calendar in step, an extra "
     "day is added to February every four years, except in century years that are not divisible "
     "by 400. That is why 2000 was a leap year but 1900 was not."),
    ("How do bicycles stay upright?",
     "A moving bicycle stays up mostly because the rider steers. When it starts to lean, the front "
     "wheel turns toward the lean and brings the wheels back under the rider. The geometry of the "
     "fork also helps the wheel steer itself a little."),
    ("Why do onions make people cry?",
     "Cutting an onion breaks its cells and releases enzymes that turn sulphur compounds into a "
     "volatile gas. When the gas reaches the eyes it irritates them, and tears wash it away. Chilling "
     "the onion or using a sharp knife reduces the effect."),
    ("What does a composer do?",
     "A composer writes music. Some write for orchestras or choirs, others for films, games or "
     "advertising. The work ranges from sketching melodies at a piano to arranging parts for every "
     "instrument and preparing scores that musicians can read."),
    ("How do vaccines work?",
     "A vaccine shows the immune system a harmless piece or version of a germ. The body learns to "
     "recognise it and keeps memory cells ready, so that a later infection is met quickly, often "
     "before it can cause serious illness."),
]


@dataclass
class BenchmarkConfig:
    episodes: int = 40                      # synthetic held-out episodes (1-6 probes each)
    natural: int | None = None              # natural conversations used (None = all of them)
    seed: int = 0                           # seed of the synthetic episodes and unrelated days
    passes: tuple[int, ...] = (1, 2, 4)     # sleep passes N compared after one night
    default_passes: int = 2                 # N for retention and the full memory (the app's default)
    nights: tuple[int, ...] = (1, 3, 7)     # retention: nights between the facts and the questions
    history: tuple[int, ...] = ()           # nights of earlier memory slept before the facts (rows)
    max_tokens: int = 32                    # greedy reply length per probe
    sampling: str = "greedy"                # or "app": the app's default sampling, a seed per probe
    samples: int = 1                        # replies drawn per probe and condition ("app" only)
    ppl_nights: int = 7                     # days of facts slept into the "full memory" for perplexity
    neutral: int | None = None              # neutral texts scored for perplexity (None = all)
    system_prompt: str = "You are a helpful assistant."  # as the app's default config

    @classmethod
    def quick(cls, **overrides) -> "BenchmarkConfig":
        """A few minutes on two CPU cores: fewer scenarios, same rows."""
        base = dict(episodes=8, natural=8, ppl_nights=3, neutral=3)
        base.update(overrides)
        return cls(**base)


# --------------------------------------------------------------------------------------- scoring

def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: 'Mr. Whiskers!' -> 'mr whiskers'."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def recalled(answer: str, reply: str) -> bool:
    """Whether the reply contains the answer (both `normalise`d): 'Kiwis!' recalls 'kiwi'."""
    a = normalise(answer)
    return bool(a) and a in normalise(reply)


@dataclass
class Tally:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += int(hit)
        self.total += 1

    @property
    def percent(self) -> float | None:
        return 100.0 * self.hits / self.total if self.total else None


@dataclass
class Row:
    name: str
    synthetic: Tally = field(default_factory=Tally)
    natural: Tally = field(default_factory=Tally)
    combined: Tally = field(default_factory=Tally)
    perplexity: float | None = None

    def add(self, source: str, probe: Probe, hit: bool) -> None:
        (self.synthetic if source == "synthetic" else self.natural).add(hit)
        if probe.combined:
            self.combined.add(hit)


def format_table(rows: Sequence[Row], title: str = "") -> str:
    """The one table: recall % (hits/total) per set, perplexity where measured, '-' elsewhere."""
    def cell(t: Tally) -> str:
        return "-" if t.percent is None else f"{t.percent:5.1f} ({t.hits}/{t.total})"

    header = ["condition", "synthetic recall %", "natural recall %", "combined recall %", "perplexity"]
    body = [[r.name, cell(r.synthetic), cell(r.natural), cell(r.combined),
             "-" if r.perplexity is None else f"{r.perplexity:.2f}"] for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    fmt = lambda line: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                 for i, (c, w) in enumerate(zip(line, widths)))
    rule = "-" * len(fmt(header))
    lines = ([title] if title else []) + [fmt(header), rule] + [fmt(line) for line in body]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- runner

@dataclass
class Scenario:
    source: str        # "synthetic" or "natural"
    episode: Episode


class MemoryBenchmark:
    """Runs the conditions on one backbone + memory model; see the module docstring.

    `backbone` and `memory` honour the contracts of `models/backbone.py` and `models/memory.py`
    (tests pass small stand-ins); `generate`, `render_day` and `day_chunks` default to the real ones.
    """

    def __init__(self, backbone, memory, config: BenchmarkConfig, *, generate=None, render_day=None,
                 day_chunks=None, sampler=None):
        """`sampler`: one sampler for every reply (default greedy); with `config.sampling` "app",
        each probe gets a fresh sampler of the app's default settings instead."""
        if config.samples < 1 or (config.samples > 1 and config.sampling != "app"):
            raise ValueError(f"samples must be 1, or more with sampling 'app' (greedy replies are all "
                             f"the same), got {config.samples} with {config.sampling!r}")
        from dreamchat.models import features
        from dreamchat.models.generation import generate as real_generate
        from dreamchat.models.sampler import Sampler

        self.backbone, self.memory, self.config = backbone, memory, config
        self._generate = generate or real_generate
        self._render_day = render_day or features.render_day
        self._day_chunks = day_chunks or features.day_chunks
        self._sampler = sampler or Sampler.greedy()
        self._features: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.records: list[dict] = []   # one per (probe, condition, draw): the reply and whether it hit

    # The pieces of one condition.

    def day_features(self, messages: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The day's (hidden, tokens) chunks as the assistant's sleep reads them; decoded once."""
        key = json.dumps(messages, sort_keys=True)
        if key not in self._features:
            tokens = self._render_day(self.backbone, messages, self.config.system_prompt)
            chunk = min(SLEEP_CHUNK_TOKENS, self.backbone.n_ctx)
            self._features[key] = [(np.array(h), np.array(t))
                                   for h, t in self._day_chunks(self.backbone, tokens, chunk)]
        return self._features[key]

    def sleep_through(self, days: Sequence[list[dict]], passes: int, start=None):
        """The memory state after sleeping each day in turn (one night per day), from `start`
        (default: an empty memory), as the assistant's sleep does it."""
        from dreamchat.models import features

        state = self.memory.empty_state() if start is None else start
        for messages in days:
            if messages:
                chunks = self.day_features(messages)
                tokens = np.concatenate([t for _, t in chunks])
                state = self.memory.consolidate(chunks, state, passes,
                                                unwritten=features.unwritten_positions(self.backbone, tokens))
        return state

    def ask(self, context: list[dict], question: str, states: dict[str, object],
            answer: str = "", opening: str = "") -> dict[str, list[str]]:
        """The replies to `question` after `context` (`config.samples` of them), per condition
        (state None = no tower).

        With `opening`, every reply is made to start with those words and the replies returned are
        what follows them (a diagnostic: how much recall the reply's own first words cost;
        benchmarks/eval_openings.py).

        The prompt is decoded once; each reply truncates the cache back to it, replays the prompt's
        hidden states into a fresh wake session and generates. With `answer`, a reply stops as soon
        as it contains it (the rest cannot change the score; it saves most of the generation time
        on hits).
        """
        from dreamchat.models.wake import ReplyHook  # the app's own hook, loop guard included

        bb = self.backbone
        prompt = self._render_day(bb, context + [{"role": "user", "text": question}],
                                  self.config.system_prompt, add_generation_prompt=True)
        if opening:
            prompt = prompt + list(bb.tokenize(opening, special=False))
        bb.clear()
        head = prompt[:-1]
        hidden = bb.decode(head, hidden=True).hidden if head else None
        replies: dict[str, list[str]] = {}
        by_state: dict[int, list[str]] = {}   # conditions sharing one state object share the replies
        # Draw k of every condition uses one seed, so conditions differ by the memory alone (draw 0
        # keeps the seed of one-draw runs, so they reproduce).
        seeds = [zlib.crc32((f"{self.config.seed}:" + (f"{k}:" if k else "") + question).encode())
                 for k in range(self.config.samples)]
        for name, state in states.items():
            if state is not None and id(state) in by_state:
                replies[name] = by_state[id(state)]
                continue
            replies[name] = []
            for seed in seeds:
                bb.truncate(len(head))
                hook = None
                if state is not None:
                    wake = self.memory.wake(state)
                    if head:
                        wake.feed(hidden, np.asarray(head, dtype=np.int64))
                    hook = ReplyHook(wake, repeatable=bb.digit_tokens())
                replies[name].append(self._reply(prompt[-1:], hook, answer, self._sampler_for(seed)))
            if state is not None:
                by_state[id(state)] = replies[name]
        return replies

    def _sampler_for(self, seed: int):
        """The sampler of one reply: the shared one, or (sampling "app") the app's defaults drawing
        from `seed`, the same for every condition of a probe."""
        if self.config.sampling != "app":
            return self._sampler
        from dreamchat.config import SamplingSettings
        from dreamchat.models.sampler import Sampler

        return Sampler.from_settings(replace(SamplingSettings(), seed=seed))

    def _reply(self, last_token: list[int], hook, answer: str = "", sampler=None) -> str:
        from dreamchat.models.generation import Done, Piece

        events = self._generate(self.backbone, last_token, sampler or self._sampler,
                                max_tokens=self.config.max_tokens, hook=hook, want_hidden=hook is not None)
        pieces: list[str] = []
        try:
            for event in events:
                if isinstance(event, Done):
                    return event.text.strip()
                if isinstance(event, Piece):
                    pieces.append(event.text)
                    if answer and recalled(answer, "".join(pieces)):
                        return "".join(pieces).strip()
        finally:
            events.close()
        raise RuntimeError("generate() ended without a Done event")

    def _score(self, rows: dict[str, Row], scenario: Scenario, probe: Probe,
               replies: dict[str, list[str]]) -> None:
        for name, draws in replies.items():
            for draw, reply in enumerate(draws):
                hit = recalled(probe.answer, reply)
                rows[name].add(scenario.source, probe, hit)
                self.records.append({"condition": name, "source": scenario.source, "kind": probe.kind,
                                     "combined": probe.combined, "question": probe.question,
                                     "answer": probe.answer, "draw": draw, "reply": reply, "recalled": hit})

    # The table.

    def scenarios(self, nights: int = 1) -> list[Scenario]:
        c = self.config
        synthetic = make_episodes(c.episodes, split="test", seed=c.seed, nights=nights)
        natural = natural_conversations()[:c.natural] if c.natural is not None else natural_conversations()
        if nights > 1:
            natural = [with_unrelated_days(ep, nights - 1, seed=c.seed + i) for i, ep in enumerate(natural)]
        return [Scenario("synthetic", e) for e in synthetic] + [Scenario("natural", e) for e in natural]

    def run(self, on_progress: Callable[[str, int, int], None] | None = None) -> list[Row]:
        c = self.config
        one_night = {"no memory (context cleared, no tower)": None}
        for n in c.passes:
            one_night[f"dreamchat, 1 night, N={n}"] = n
        full = "full context (nothing cleared, no tower)"
        rows = {name: Row(name) for name in [*one_night, full]}
        retention = {k: f"retention after {k} night{'s' if k > 1 else ''} (N={c.default_passes})"
                     for k in c.nights}
        rows.update({name: Row(name) for name in retention.values()})
        history = {k: f"after {k} night{'s' if k > 1 else ''} of earlier memory (N={c.default_passes})"
                   for k in c.history}
        rows.update({name: Row(name) for name in history.values()})

        questions_next_day = self.scenarios(1)   # the history rows ask these too
        for i, sc in enumerate(questions_next_day):
            for d in sorted({p.day for p in sc.episode.probes}):
                earlier = sc.episode.days[:d]
                states = {name: (None if n is None else self.sleep_through(earlier, n))
                          for name, n in one_night.items()}
                if 1 in c.nights:  # retention after one night is the default-passes condition
                    states[retention[1]] = (states[f"dreamchat, 1 night, N={c.default_passes}"]
                                            if c.default_passes in c.passes
                                            else self.sleep_through(earlier, c.default_passes))
                everything = [m for day in sc.episode.days[:d + 1] for m in day]
                for probe in (p for p in sc.episode.probes if p.day == d):
                    q, a = probe.question, probe.answer
                    self._score(rows, sc, probe, self.ask(sc.episode.days[d], q, states, a))
                    self._score(rows, sc, probe, self.ask(everything, q, {full: None}, a))
            if on_progress:
                on_progress("one night", i + 1, len(questions_next_day))

        for k in (k for k in c.nights if k > 1):
            scenarios = self.scenarios(k)
            for i, sc in enumerate(scenarios):
                for d in sorted({p.day for p in sc.episode.probes}):
                    state = self.sleep_through(sc.episode.days[:d], c.default_passes)
                    for probe in (p for p in sc.episode.probes if p.day == d):
                        self._score(rows, sc, probe,
                                    self.ask(sc.episode.days[d], probe.question, {retention[k]: state},
                                             probe.answer))
                if on_progress:
                    on_progress(f"{k} nights", i + 1, len(scenarios))

        if c.history:
            asked = [p.answer for sc in questions_next_day for p in sc.episode.probes]
            for k, name in history.items():
                earlier = self.sleep_through(unrelated_days(k, split="test", seed=c.seed, avoid=asked),
                                             c.default_passes)
                for i, sc in enumerate(questions_next_day):
                    for d in sorted({p.day for p in sc.episode.probes}):
                        state = self.sleep_through(sc.episode.days[:d], c.default_passes, start=earlier)
                        for probe in (p for p in sc.episode.probes if p.day == d):
                            self._score(rows, sc, probe,
                                        self.ask(sc.episode.days[d], probe.question, {name: state}, probe.answer))
                    if on_progress:
                        on_progress(f"{k} nights of history", i + 1, len(questions_next_day))

        alone, tower = self.perplexity()
        out = list(rows.values())
        out.append(Row("perplexity, backbone alone (neutral text)", perplexity=alone))
        out.append(Row(f"perplexity, backbone + tower ({c.ppl_nights} nights of memory)", perplexity=tower))
        return out

    def perplexity(self) -> tuple[float, float]:
        """Perplexity of the neutral answers: backbone alone, and with the tower's bias from a memory
        that slept `ppl_nights` days of synthetic facts. Only the answer tokens are scored."""
        c = self.config
        facts = [ep.days[0] for ep in make_episodes(c.ppl_nights, split="test", seed=c.seed + 1)]
        state = self.sleep_through(facts, c.default_passes)
        texts = NEUTRAL_TEXTS[:c.neutral] if c.neutral is not None else NEUTRAL_TEXTS
        nll_alone = nll_tower = 0.0
        n = 0
        bb = self.backbone
        for question, answer in texts:
            user = [{"role": "user", "text": question}]
            start = len(self._render_day(bb, user, c.system_prompt, add_generation_prompt=True))
            tokens = self._render_day(bb, user + [{"role": "assistant", "text": answer}], c.system_prompt)
            bb.clear()
            decoded = bb.decode(tokens, hidden=True, all_logits=True)
            wake = self.memory.wake(state)
            for t in range(len(tokens) - 1):
                bias = wake.feed(decoded.hidden[t:t + 1], np.asarray(tokens[t:t + 1], dtype=np.int64))
                if t + 1 < start:
                    continue
                logits = np.asarray(decoded.logits[t], dtype=np.float64)
                target = tokens[t + 1]
                nll_alone += _nll(logits, target)
                biased = logits.copy()
                biased[bias.ids] += bias.values
                nll_tower += _nll(biased, target)
                n += 1
        if n == 0:
            raise ValueError("no neutral tokens were scored; check the neutral texts and the chat template")
        return math.exp(nll_alone / n), math.exp(nll_tower / n)


def _nll(logits: np.ndarray, target: int) -> float:
    m = logits.max()
    return float(m + np.log(np.exp(logits - m).sum()) - logits[target])


def with_unrelated_days(episode: Episode, extra: int, seed: int = 0) -> Episode:
    """The episode with `extra` days of unrelated held-out small talk before its question day(s)."""
    first_q = min(p.day for p in episode.probes)
    filler = unrelated_days(extra, split="test", seed=seed, avoid=[p.answer for p in episode.probes])
    days = episode.days[:first_q] + filler + episode.days[first_q:]
    probes = [Probe(**{**asdict(p), "day": p.day + extra}) for p in episode.probes]
    return Episode(days, probes, episode.split, list(episode.facts))


# --------------------------------------------------------------------------------------- command

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `dreamchat eval memory` (--model and --weights come from the common options)."""
    parser.add_argument("--episodes", type=int, default=None, metavar="N",
                        help="synthetic held-out episodes (default 40, 8 with --quick)")
    parser.add_argument("--natural", type=int, default=None, metavar="N",
                        help="natural conversations to use (default all, 8 with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic episodes (default 0)")
    parser.add_argument("--nights", default=None, metavar="LIST",
                        help="retention rows: nights between the facts and the questions, comma-separated "
                             "(default 1,3,7; e.g. 1,7,30 for a month)")
    parser.add_argument("--history", default=None, metavar="LIST",
                        help="also rows of one night's facts over this many nights of earlier memory "
                             "(unrelated days slept before the facts), comma-separated, e.g. 30 for a month "
                             "of use (default: none)")
    parser.add_argument("--max-tokens", type=int, default=32, metavar="N", help="reply length per probe")
    parser.add_argument("--sampling", choices=["greedy", "app"], default="greedy",
                        help="greedy replies (default), or the app's default sampling with one seed per probe")
    parser.add_argument("--samples", type=int, default=1, metavar="K",
                        help="with --sampling app: draw K replies per probe and condition, each from its "
                             "own seed, and count every draw (default 1)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="llama.cpp threads (default: physical cores; 1 is faster on a busy machine)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the rows and every reply as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="a small run (a few minutes on a laptop)")


def parse_nights(text: str, option: str = "--nights") -> tuple[int, ...]:
    """'1,7,30' -> (1, 7, 30): sorted, without repeats, each at least 1."""
    from dreamchat.errors import DreamchatError

    try:
        nights = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise DreamchatError(f"{option} takes whole numbers separated by commas, such as 1,7,30; "
                             f"got {text!r}") from None
    if not nights or nights[0] < 1:
        raise DreamchatError(f"{option} must be at least 1, such as 1,7,30; got {text!r}")
    return nights


def run(args: argparse.Namespace) -> int:
    """Load the backbone and memory weights, run the benchmark, print the table on stdout.

    Settings are the app's defaults (system prompt, sleep passes), not the user's config.toml, so
    numbers are comparable between machines and homes.
    """
    import torch

    from dreamchat.config import Config
    from dreamchat.errors import DreamchatError
    from dreamchat.models.backbone import Backbone
    from dreamchat.models.memory import MemoryModel, default_weights_path

    samples, sampling = getattr(args, "samples", 1), getattr(args, "sampling", "greedy")
    for option, value, low in (("--episodes", args.episodes, 1), ("--natural", args.natural, 0),
                               ("--max-tokens", args.max_tokens, 1), ("--threads", args.threads, 1),
                               ("--samples", samples, 1)):
        if value is not None and value < low:
            raise DreamchatError(f"{option} must be at least {low}, got {value}")
    if samples > 1 and sampling != "app":
        raise DreamchatError("--samples needs --sampling app: greedy replies are the same every time")
    defaults = Config()
    overrides = dict(seed=args.seed, max_tokens=args.max_tokens, system_prompt=defaults.system_prompt,
                     default_passes=defaults.sleep.passes, sampling=sampling, samples=samples)
    if args.episodes is not None:
        overrides["episodes"] = args.episodes
    if args.natural is not None:
        overrides["natural"] = args.natural
    if getattr(args, "nights", None) is not None:
        overrides["nights"] = parse_nights(args.nights)
    if getattr(args, "history", None) is not None:
        overrides["history"] = parse_nights(args.history, option="--history")
    config = BenchmarkConfig.quick(**overrides) if args.quick else BenchmarkConfig(**overrides)

    if getattr(args, "model", None):
        model_path = Path(args.model).expanduser()
    else:
        from dreamchat.default_model import ensure_default_model
        model_path = ensure_default_model(progress=False)
    weights = Path(getattr(args, "weights", None) or default_weights_path()).expanduser()
    if not weights.is_file():
        raise ModelError(f"no memory weights at {weights}; pass --weights PATH or train them with "
                         f"`dreamchat train`")
    backbone = Backbone(model_path, n_ctx=4096, n_threads=args.threads)
    torch_threads = torch.get_num_threads()
    try:
        memory = MemoryModel.load(weights, backbone.output_embeddings(), backbone.fingerprint)
        if torch.cuda.is_available():
            memory.to("cuda")
        else:
            # The tower's per-token ops are tiny: one thread avoids thread hand-offs that dominate
            # them on a busy CPU (20x measured on 2 shared cores); llama.cpp keeps its own threads.
            torch.set_num_threads(1)
        bench = MemoryBenchmark(backbone, memory, config)
        started = time.perf_counter()
        rows = bench.run(on_progress=lambda stage, i, n: log.info("%s: %d/%d scenarios (%.0f s)", stage, i, n,
                                                                  time.perf_counter() - started))
        elapsed = time.perf_counter() - started
    finally:
        backbone.close()
        torch.set_num_threads(torch_threads)

    n_natural = len(natural_conversations()[:config.natural] if config.natural is not None
                    else natural_conversations())
    how = ("greedy" if config.sampling == "greedy" else "sampled (the app's default settings, a seed per "
           f"probe{' and draw' if config.samples > 1 else ''})")
    draws = (f"; {config.samples} draws per probe and condition, every draw counted in the table"
             if config.samples > 1 else "")
    title = (f"dreamchat eval memory: {backbone.name} + {weights.name}\n"
             f"{config.episodes} synthetic held-out episodes ({rows[0].synthetic.total // config.samples} probes), "
             f"{n_natural} natural conversations ({rows[0].natural.total // config.samples} probes); {how} "
             f"replies of at most {config.max_tokens} tokens{draws}; {elapsed / 60:.1f} min")
    print(format_table(rows, title))
    if args.json:
        payload = {"config": asdict(config), "model": str(model_path), "weights": str(weights),
                   "seconds": round(elapsed, 1),
                   "rows": [{"name": r.name, "perplexity": r.perplexity,
                             **{k: asdict(getattr(r, k)) for k in ("synthetic", "natural", "combined")}}
                            for r in rows],
                   "by_kind": by_kind(bench.records),
                   "replies": bench.records}
        Path(args.json).write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    return 0


def by_kind(records: list[dict]) -> dict[str, dict[str, list[int]]]:
    """condition -> probe kind -> [hits, total], from `MemoryBenchmark.records`."""
    out: dict[str, dict[str, list[int]]] = {}
    for r in records:
        cell = out.setdefault(r["condition"], {}).setdefault(r["kind"], [0, 0])
        cell[0] += int(r["recalled"])
        cell[1] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamchat.models.evaluate",
                                     description="multi-day recall benchmark of dreamchat's sleep memory")
    parser.add_argument("--model", metavar="PATH", help="GGUF chat model (default: the default model)")
    parser.add_argument("--weights", metavar="PATH", help="memory slow weights (default: the shipped ones)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
