"""Synthetic multi-day episodes for training and evaluating dreamchat's sleep memory.

An episode is a few "days" of chat. On the first day(s) the user mentions facts about their life,
mixed with small talk; the assistant answers briefly. Each day ends with a night of sleep (the
context is cleared). On the last day the user asks about those facts; the memory has to supply the
answers. Episodes cover many categories (pets, people, places, jobs, dates, codes, preferences,
plans, ...), updates of an earlier fact (the newest value must win), two facts that must be
combined ("my sister is Ana" + "Ana lives in Porto" -> where does my sister live?), and distractor
facts about other people ("my colleague's dog is Rex" when the question is about my dog).
With `chat > 0`, later days also carry general-knowledge exchanges with long answers
(`general_chat.py`): ordinary text on which the memory must leave the backbone alone.

Train and test splits share nothing a model could memorise: the phrasings come from disjoint
template lists (`phrasings.py`) and the values from disjoint halves of the value lists
(`lexicon.split_of`). Generation is deterministic given (n, split, seed, nights, facts_per_day).

How to read an episode: `days[d]` is the conversation of day d. A probe with `day == d` is asked at
the end of day d, after `days[d]`'s messages (which may be empty or a greeting); every probe is
asked on its own, from the same state, never after another probe.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from dreamchat.models import lexicon as L
from dreamchat.models.general_chat import GENERAL_CHAT
from dreamchat.models.phrasings import (ACKS, CATEGORIES, FACT_WRAPPERS, GENERIC_UPDATES, GREETINGS,
                                        JOINERS, QUESTION_CLOSERS, QUESTION_OPENERS, SMALL_TALK,
                                        TOPICS)

SPLITS = ("train", "test")
MAX_EXCHANGES = 6  # small talk is only added while a fact day has fewer user/assistant exchanges


@dataclass
class Probe:
    day: int          # index of the day on which the question is asked (facts are on earlier days)
    question: str     # the user's question, e.g. "What's my cat called again?"
    answer: str       # the value that must appear in the reply, e.g. "Pickle"
    reply: str        # a full natural target reply, e.g. "Your cat is called Pickle."
    kind: str         # category: pet_name, person_name, city, ..., update, combined
    combined: bool    # needs two separately stated facts
    category: str = ""  # the fact category underneath (for update/combined probes: the value's category)
    stale: str = ""     # for updates: the superseded value, which must NOT be the answer
    opening: str = ""   # a training-split reply up to the value ("Your cousin works at"), or "" if the
                        #   bank has none: benchmarks/eval_openings.py makes replies start with it
    distractor: str = ""  # for binding probes: the other relative's value of the same kind, which
                          #   must NOT be the answer (`make_binding_episodes`)
    fact_first: bool = False  # for binding probes: the fact about the name came before the name
                              #   was tied to the relative, so one causal reading cannot join them


@dataclass
class Episode:
    days: list[list[dict]]                    # per day, chat messages {"role", "text"}
    probes: list[Probe]
    split: str = "train"
    facts: list[str] = field(default_factory=list)  # the values stated, in order (for inspection)
    fillers: list[int] = field(default_factory=list)  # indices of the days of unrelated conversation


# --- categories ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Category:
    """How to pick a slot and a value for one fact category."""
    name: str
    slots: tuple[str, ...]                                  # slot keys ("" when the category has none)
    slot_noun: Callable[[str], str]                         # slot key -> noun phrase used in text
    value: Callable[[random.Random, str, str], str]         # (rng, split, slot) -> value


def _from(values: list[str]) -> Callable[[random.Random, str, str], str]:
    pools = {split: L.pool(values, split) for split in SPLITS}
    return lambda rng, split, slot: rng.choice(pools[split])


def _generated(make: Callable[[random.Random, str, str], str]) -> Callable[[random.Random, str, str], str]:
    """Draw generated values (make(rng, split, slot)) until one lands in the split."""
    def value(rng: random.Random, split: str, slot: str) -> str:
        while True:
            v = make(rng, split, slot)
            if L.split_of(v) == split:
                return v
    return value


_NAMES = {split: L.pool(L.FIRST_NAMES, split) for split in SPLITS}


def _person(rng: random.Random, split: str, slot: str = "") -> str:
    if rng.random() < 0.2:  # multi-token names now and then
        return _generated(lambda r, sp, s: L.make_full_name(r, sp))(rng, split, slot)
    return rng.choice(_NAMES[split])


_PREF_POOLS = {slot: {split: L.pool(values, split) for split in SPLITS}
               for slot, (_, values) in L.PREFERENCES.items()}
_same = lambda slot: slot  # noqa: E731
_none = lambda slot: ""    # noqa: E731

CATEGORY_SPECS: dict[str, Category] = {c.name: c for c in [
    Category("pet_name", tuple(L.PET_KINDS), _same, _from(L.PET_NAMES)),
    Category("person_name", tuple(L.RELATIONS), _same, _person),
    Category("city", ("",), _none, _from(L.CITIES)),
    Category("hometown", ("",), _none, _from(L.CITIES)),
    Category("job", ("",), _none, _from(L.JOBS)),
    Category("workplace", ("",), _none, _generated(lambda r, sp, s: L.make_company(r, sp))),
    Category("date", tuple(L.EVENTS), lambda s: L.EVENTS[s], _generated(lambda r, sp, s: L.make_date(r))),
    Category("code", tuple(L.CODE_SLOTS), lambda s: L.CODE_SLOTS[s][0],
             _generated(lambda r, sp, s: L.make_code(L.CODE_SLOTS[s][1], r))),
    Category("preference", tuple(L.PREFERENCES), lambda s: L.PREFERENCES[s][0],
             lambda rng, split, slot: rng.choice(_PREF_POOLS[slot][split])),
    Category("plan", ("",), _none, _from(L.PLACES + L.CITIES)),
    Category("vehicle", ("",), _none, _from(L.CARS)),
    Category("allergy", ("",), _none, _from(L.ALLERGENS)),
    Category("hobby", ("",), _none, _from(L.HOBBIES)),
    Category("language", ("",), _none, _from(L.LANGUAGES)),
    Category("study", ("",), _none, _from(L.SUBJECTS)),
    Category("team", ("",), _none, _from(L.TEAMS)),
    Category("venue", tuple(L.VENUES), lambda s: L.VENUES[s],
             _generated(lambda r, sp, s: L.make_venue(s, r, sp))),
]}
assert set(CATEGORY_SPECS) == set(CATEGORIES), "every category needs both a spec and phrasings"

# Categories whose values are proper names, and the kind of made-up name that can stand in for one
# (`make_episodes(invented=...)`).
INVENTABLE = {"pet_name": "name", "person_name": "name", "city": "place", "hometown": "place", "plan": "place",
              "workplace": "company", "venue": "place"}
_INVENTED_VALUE = {cat: _generated(lambda r, sp, s, kind=kind: L.make_invented(kind, r))
                   for cat, kind in INVENTABLE.items()}

UPDATABLE = [c for c in CATEGORIES if "update" in CATEGORIES[c] or c in TOPICS]
COMBINABLE = [c for c in CATEGORIES if "ask_of" in CATEGORIES[c]]


# --- rendering ----------------------------------------------------------------------------------

def _article(value: str) -> str:
    return "an" if value[:1].lower() in "aeiou" and not value.startswith(("UX", "Uni", "Eu")) else "a"


def render(template: str, *, v: str = "", s: str = "", old: str = "", who: str = "", r: str = "",
           topic: str = "") -> str:
    """Fill a phrasing template; upper-cases the first letter of the result."""
    av = f"{_article(v)} {v}" if v else ""
    text = template.format(v=v, av=av, Av=_cap(av), s=s, S=_cap(s), old=old, who=who, Who=_cap(who),
                           r=r, topic=topic)
    return _cap(text)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(first: str, second: str, joiner: str, values: Iterable[str] = ()) -> str:
    """Two statements as one message; lower-case the second's opening unless it starts a sentence,
    is 'I' or is one of `values` (names keep their capital)."""
    head = second.split(" ", 1)[0]
    keep = (head in ("I", "I'm", "I've", "I'd", "I'll") or joiner.rstrip()[-1:] in (".", "!", "?")
            or any(v and second.startswith(_cap(v)) for v in values))
    return first + joiner + (second if keep else second[:1].lower() + second[1:])


def _casual(text: str, keep: Iterable[str]) -> str:
    """Typed-on-a-phone style: lower case and no final full stop, except inside the values in `keep`
    (a value must read the same wherever it appears, or the memory could not copy it back)."""
    spans = sorted((m.start(), m.end()) for v in keep if v
                   for m in re.finditer(re.escape(v), text, flags=re.IGNORECASE))
    out, at = [], 0
    for start, end in spans:
        if start >= at:
            out += [text[at:start].lower(), text[start:end]]
            at = end
    out.append(text[at:].lower())
    return "".join(out).removesuffix(".")


# --- building one episode -----------------------------------------------------------------------

@dataclass
class _Line:
    """One fact statement placed on a day; `order` sorts the statements of a day."""
    day: int
    text: str
    value: str
    order: float


class _Builder:
    def __init__(self, rng: random.Random, split: str, invented: float = 0.0,
                 invent_rng: random.Random | None = None):
        self.rng, self.split = rng, split
        self.invented, self.invent_rng = invented, invent_rng
        self.used_values: set[str] = set()
        self.used_slots: set[tuple[str, str]] = set()
        self.lines: list[_Line] = []

    def pick(self, templates: dict[str, list[str]]) -> str:
        return self.rng.choice(templates[self.split])

    def question(self, templates: dict[str, list[str]], **fields: str) -> str:
        """A question from `templates`; now and then with an opener ("Quick question: ...") or a
        closer ("... I totally forgot.")."""
        text = render(self.pick(templates), **fields)
        roll = self.rng.random()
        if roll < 0.25:
            text = _join("", text, self.pick(QUESTION_OPENERS))
        elif roll < 0.4:
            text += self.pick(QUESTION_CLOSERS)
        return text

    def new_value(self, cat: str, slot: str) -> str:
        """A value not yet used in this episode, and not a substring of (or containing) one."""
        for _ in range(200):
            v = CATEGORY_SPECS[cat].value(self.rng, self.split, slot)
            if self.invented and cat in INVENTABLE and self.invent_rng.random() < self.invented:
                # drawn after the listed value, so the episode is otherwise the same as without
                v = _INVENTED_VALUE[cat](self.invent_rng, self.split, slot)
            if not any(v.lower() in u.lower() or u.lower() in v.lower() for u in self.used_values):
                self.used_values.add(v)
                return v
        raise RuntimeError(f"value list for {cat!r} is too small for this episode")

    def free_slot(self, cat: str) -> str | None:
        slots = [s for s in CATEGORY_SPECS[cat].slots if (cat, s) not in self.used_slots]
        if not slots:
            return None
        slot = self.rng.choice(slots)
        self.used_slots.add((cat, slot))
        return slot

    def say(self, day: int, text: str, value: str, order: float | None = None) -> float:
        """Place a user statement on `day`; now and then wrapped in chatter or typed casually."""
        roll = self.rng.random()
        if roll < 0.2:
            before, after = self.pick(FACT_WRAPPERS)
            text = _join("", text, before, self.used_values) + after if before else text + after
        elif roll < 0.3:
            text = _casual(text, self.used_values)
        order = self.rng.random() if order is None else order
        self.lines.append(_Line(day, text, value, order))
        return order

    # Each plan states its fact(s) and returns the probe (without its day, set at the end).

    def simple(self, cat: str, day: int) -> Probe | None:
        slot = self.free_slot(cat)
        if slot is None:
            return None
        noun = CATEGORY_SPECS[cat].slot_noun(slot)
        v = self.new_value(cat, slot)
        phr = CATEGORIES[cat]
        self.say(day, render(self.pick(phr["state"]), v=v, s=noun), v)
        if "other" in phr and self.rng.random() < 0.35:  # the same kind of fact about someone else
            dv = self.new_value(cat, slot)
            who = self.rng.choice(L.OTHER_PEOPLE)
            self.say(day, render(self.pick(phr["other"]), v=dv, s=noun, who=who), dv)
        return Probe(-1, self.question(phr["ask"], s=noun), v,
                     render(self.pick(phr["reply"]), v=v, s=noun), cat, False, cat,
                     opening=_opening(phr["reply"], s=noun))

    def update(self, cat: str, day: int, last_day: int) -> Probe | None:
        slot = self.free_slot(cat)
        if slot is None:
            return None
        noun = CATEGORY_SPECS[cat].slot_noun(slot)
        old, new = self.new_value(cat, slot), self.new_value(cat, slot)
        phr = CATEGORIES[cat]
        first = self.say(day, render(self.pick(phr["state"]), v=old, s=noun), old)
        specific = phr.get("update", {"train": [], "test": []})[self.split]
        generic = GENERIC_UPDATES[self.split] if cat in TOPICS else []
        template = self.rng.choice(specific + generic)
        topic = TOPICS.get(cat, "").format(s=noun)  # "my cat's name", "where I live"
        text = render(template, v=new, old=old, s=noun, topic=topic)
        if last_day > day:
            self.say(last_day, text, new)
        else:
            self.say(day, text, new, first + (1 - first) * self.rng.random() + 1e-9)
        return Probe(-1, self.question(phr["ask"], s=noun), new,
                     render(self.pick(phr["reply"]), v=new, s=noun), "update", False, cat, stale=old,
                     opening=_opening(phr["reply"], s=noun))

    def combined(self, cat: str, day: int, last_day: int) -> Probe | None:
        rel = self.free_slot("person_name")
        slot = self.free_slot(cat)
        if rel is None or slot is None:
            return None
        name = self.new_value("person_name", rel)
        noun = CATEGORY_SPECS[cat].slot_noun(slot)
        v = self.new_value(cat, slot)
        person, phr = CATEGORIES["person_name"], CATEGORIES[cat]
        self.say(day, render(self.pick(person["state"]), v=name, s=rel), name)
        second_day = last_day if self.rng.random() < 0.5 else day
        self.say(second_day, render(self.pick(phr["other"]), v=v, s=noun, who=name), v)
        return Probe(-1, self.question(phr["ask_of"], r=rel, s=noun), v,
                     render(self.pick(phr["reply_of"]), v=v, r=rel, s=noun), "combined", True, cat,
                     opening=_opening(phr["reply_of"], r=rel, s=noun))

    # Days.

    def fact_day(self, day: int) -> list[dict]:
        lines = sorted((x for x in self.lines if x.day == day), key=lambda x: x.order)
        turns: list[tuple[str, str]] = []
        i = 0
        while i < len(lines):
            if i + 1 < len(lines) and self.rng.random() < 0.25:  # two facts in one message
                text = _join(lines[i].text, lines[i + 1].text, self.pick(JOINERS), self.used_values)
                ack = self.rng.choice([a for a in ACKS[self.split] if "{v}" not in a])
                i += 2
            else:
                text, ack = lines[i].text, render(self.pick(ACKS), v=lines[i].value)
                i += 1
            turns.append((text, ack))
        n_talk = min(self.rng.choice((0, 1, 1, 2, 2)), max(0, MAX_EXCHANGES - len(turns)))
        for talk in self.rng.sample(SMALL_TALK[self.split], n_talk):
            turns.insert(self.rng.randrange(len(turns) + 1), talk)
        return _messages(turns)

    def filler_day(self) -> list[dict]:
        """A day of unrelated conversation (between the facts and the questions)."""
        turns = self.rng.sample(SMALL_TALK[self.split], self.rng.choice((2, 3)))
        if self.rng.random() < 0.5:  # an unrelated fact about someone else, for interference
            cat = self.rng.choice([c for c in CATEGORIES if "other" in CATEGORIES[c]])
            slot = self.rng.choice(CATEGORY_SPECS[cat].slots)
            v = self.new_value(cat, slot)
            text = render(self.pick(CATEGORIES[cat]["other"]), v=v,
                          s=CATEGORY_SPECS[cat].slot_noun(slot), who=self.rng.choice(L.OTHER_PEOPLE))
            turns.insert(self.rng.randrange(len(turns) + 1), (text, render(self.pick(ACKS), v=v)))
        return _messages(turns)

    def question_day(self) -> list[dict]:
        return _messages([self.rng.choice(GREETINGS[self.split])]) if self.rng.random() < 0.5 else []


def _opening(bank: dict, **slots) -> str:
    """The first training-split reply of `bank` that ends with the value, rendered up to it ("Your
    {r} works at {v}." -> "Your sister works at"); "" if none does. Always the same one and no draw
    from the builder's generator, so the episodes do not change."""
    for template in bank["train"]:
        t = template.rstrip(".!")
        if t.endswith("{v}") and not t.startswith("{") and "{av}" not in t.lower():
            return render(t[:-len("{v}")].rstrip(), **slots)
    return ""


def _messages(turns: list[tuple[str, str]]) -> list[dict]:
    return [m for user, assistant in turns
            for m in ({"role": "user", "text": user}, {"role": "assistant", "text": assistant})]


def make_episode(rng: random.Random, split: str, nights: int = 1,
                 facts_per_day: tuple[int, int] = (1, 3), invented: float = 0.0,
                 invent_rng: random.Random | None = None) -> Episode:
    """One episode: 1-2 fact days, `nights - 1` unrelated days, then the question day. With
    `invented` > 0, each proper-name value is replaced by a made-up one with that chance."""
    b = _Builder(rng, split, invented, invent_rng)
    n_fact_days = 2 if rng.random() < 0.3 else 1
    last_fact_day = n_fact_days - 1
    probes: list[Probe] = []
    for day in range(n_fact_days):
        for _ in range(rng.randint(*facts_per_day)):
            roll = rng.random()
            probe = None
            if roll < 0.2:
                probe = b.update(rng.choice(UPDATABLE), day, last_fact_day)
            elif roll < 0.4:
                probe = b.combined(rng.choice(COMBINABLE), day, last_fact_day)
            if probe is None:  # a simple fact (also the fallback when slots run out)
                for _ in range(10):
                    probe = b.simple(rng.choice(list(CATEGORIES)), day)
                    if probe is not None:
                        break
            if probe is not None:
                probes.append(probe)
    days = [b.fact_day(d) for d in range(n_fact_days)]
    days += [b.filler_day() for _ in range(nights - 1)]
    days.append(b.question_day())
    for probe in probes:
        probe.day = len(days) - 1
    return Episode(days, probes, split, [x.value for x in sorted(b.lines, key=lambda x: (x.day, x.order))],
                   list(range(n_fact_days, n_fact_days + nights - 1)))


def add_general_chat(episode: Episode, rng: random.Random, chance: float) -> Episode:
    """Put a general-knowledge exchange (a question, a long answer) at a random place in each later
    day with probability `chance` (a second one with chance**2). Facts are never put there, so the
    memory has nothing to add to these answers: they teach it to stay out of ordinary chat."""
    pool = GENERAL_CHAT[episode.split]
    days = [list(day) for day in episode.days]
    for d in range(1, len(days)):
        for _ in range(2 if rng.random() < chance ** 2 else 1 if rng.random() < chance else 0):
            question, answer = rng.choice(pool)
            at = 2 * rng.randrange(len(days[d]) // 2 + 1)  # between exchanges, never inside one
            days[d][at:at] = _messages([(question, answer)])
    return Episode(days, episode.probes, episode.split, episode.facts, episode.fillers)


# Replies to a question about something the user never said. Their words matter little: in training
# they are neutral text on a later day, where the loss keeps the memory's push near nothing.
UNTOLD_REPLIES = {
    "train": ["I don't think you've told me that yet.", "You haven't mentioned that to me, I'm afraid.",
              "I'm not sure: you haven't told me.", "I don't know that one; you never said.",
              "You haven't shared that with me yet. What is it?"],
    "test": ["I don't believe you've told me.", "That's something you haven't mentioned to me.",
             "I can't say: you never told me."],
}


def add_untold_questions(episodes: list[Episode], rng: random.Random, chance: float) -> list[Episode]:
    """With probability `chance`, the question day of an episode gets an exchange about something the
    episode never stated (another episode's question, of a kind this one never asks about), answered
    by saying it was not told. A memory trained only on questions it can answer learns to answer
    every question with a value it holds ("What's my dog called?" -> the cat's name); on these it
    learns to leave the reply to the backbone."""
    out = []
    for i, episode in enumerate(episodes):
        others = [p for j, e in enumerate(episodes) if j != i for p in e.probes]
        stated = {p.kind for p in episode.probes} | {p.category for p in episode.probes if p.category}
        questions = [p.question for p in others
                     if not p.combined and p.kind != "update" and p.kind not in stated and p.category not in stated]
        if not episode.probes or not questions or rng.random() >= chance:
            out.append(episode)
            continue
        q_day = min(p.day for p in episode.probes)
        days = [list(day) for day in episode.days]
        at = 2 * rng.randrange(len(days[q_day]) // 2 + 1)  # between exchanges, never inside one
        days[q_day][at:at] = _messages([(rng.choice(questions), rng.choice(UNTOLD_REPLIES[episode.split]))])
        out.append(Episode(days, episode.probes, episode.split, episode.facts, episode.fillers))
    return out


def make_episodes(n: int, *, split: str = "train", seed: int = 0, nights: int = 1,
                  facts_per_day: tuple[int, int] = (1, 3), chat: float = 0.0,
                  invented: float = 0.0, untold: float = 0.0) -> list[Episode]:
    """`n` episodes of the given split; the same arguments always give the same episodes. `chat`
    is the chance of general chat on each later day (`add_general_chat`); `invented` the chance
    that a proper-name value (`INVENTABLE`) is a made-up word instead of one from the lists, so the
    memory cannot learn the values by heart; `untold` the chance of a question about something never
    stated on the question day (`add_untold_questions`). Either way the episodes are otherwise the
    same as with all three at 0."""
    for name, p in (("chat", chat), ("invented", invented), ("untold", untold)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability between 0 and 1, not {p}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if nights < 1:
        raise ValueError(f"nights must be at least 1, not {nights}")
    lo, hi = facts_per_day
    if not 1 <= lo <= hi:
        raise ValueError(f"facts_per_day must be (low, high) with 1 <= low <= high, not {facts_per_day}")
    episodes = []
    for i in range(n):
        rng = random.Random(f"dreamchat-episodes/{split}/{seed}/{nights}/{lo}-{hi}/{i}")
        episode = make_episode(rng, split, nights, (lo, hi), invented,
                               random.Random(f"dreamchat-invented/{split}/{seed}/{nights}/{i}"))
        if chat:
            episode = add_general_chat(episode, random.Random(f"dreamchat-chat/{split}/{seed}/{nights}/{i}"), chat)
        episodes.append(episode)
    if untold:
        episodes = add_untold_questions(episodes, random.Random(f"dreamchat-untold/{split}/{seed}/{nights}"), untold)
    return episodes


def _by_name(bank: dict[str, list[str]]) -> dict[str, list[str]]:
    """An "ask_of" / "reply_of" bank about a relative turned into one about a person named {r}: "What's
    my {r}'s cat called?" -> "What's {r}'s cat called?", "Your {r} works at {v}." -> "{r} works at {v}."
    (every {r} in the banks follows "my" or "your")."""
    return {split: [re.sub(r"\b[MmYy](?:y|our) \{r\}", "{r}", t) for t in templates]
            for split, templates in bank.items()}


def make_binding_episodes(n: int, *, split: str = "test", seed: int = 0, invented: float = 0.0,
                          by_name: float = 0.0) -> list[Episode]:
    """`n` episodes that need two facts joined and cannot be answered without it.

    The combined probes of `make_episodes` state one fact of their kind per episode, so "Who employs
    my cousin?" can be answered by the only employer the day mentions, without knowing who Ugo is.
    Here two relatives are named and each gets a fact of the same kind ("my cousin is Ugo", "my aunt
    is Rosa", "Ugo works at Juniper Press", "Rosa works at Harbor Consulting"); each is then asked
    about, with the other's value as the probe's `distractor`. A memory that finds the fact by its
    kind alone answers half of them with the distractor. The four statements come in a random order:
    where a fact comes before its name is tied to the relative (`fact_first`), one causal reading of
    the day cannot join them, and a second sleep pass, which reads the day again from what the first
    one stored, can. `invented` is the chance that a name or other proper-name value is made up (as in
    `make_episodes`), so a model cannot learn which name goes with which value by heart.

    `by_name` is the chance that a probe asks by the person's name instead ("Where does Ugo work?"),
    which needs no joining but has the same distractor: a memory that learns to answer those keys
    its facts by the name, and the toy of `benchmarks/toy_binding.py` learns to join only once its
    training asks by name too. Those probes are not `combined` and have no `fact_first`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    for name, p in (("invented", invented), ("by_name", by_name)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability between 0 and 1, not {p}")
    episodes = []
    for i in range(n):
        rng = random.Random(f"dreamchat-binding/{split}/{seed}/{i}")
        b = _Builder(rng, split, invented, random.Random(f"dreamchat-binding-invented/{split}/{seed}/{i}"))
        cat = rng.choice(COMBINABLE)
        slot = b.free_slot(cat)
        noun = CATEGORY_SPECS[cat].slot_noun(slot)
        relatives = [b.free_slot("person_name") for _ in range(2)]
        names = [b.new_value("person_name", r) for r in relatives]
        values = [b.new_value(cat, slot) for _ in relatives]
        person, phr = CATEGORIES["person_name"], CATEGORIES[cat]
        tied = [b.say(0, render(b.pick(person["state"]), v=name, s=rel), name) for rel, name in zip(relatives, names)]
        told = [b.say(0, render(b.pick(phr["other"]), v=v, s=noun, who=name), v) for name, v in zip(names, values)]
        # its own generator, so that by_name = 0 leaves the episodes exactly as they were
        named = random.Random(f"dreamchat-binding-by-name/{split}/{seed}/{i}")
        probes = []
        for j, (rel, name, v) in enumerate(zip(relatives, names, values)):
            if named.random() < by_name:
                ask, reply, who = _by_name(phr["ask_of"]), _by_name(phr["reply_of"]), name
            else:
                ask, reply, who = phr["ask_of"], phr["reply_of"], rel
            probes.append(Probe(1, b.question(ask, r=who, s=noun), v, render(b.pick(reply), v=v, r=who, s=noun),
                                "combined" if who == rel else cat, who == rel, cat,
                                opening=_opening(reply, r=who, s=noun), distractor=values[1 - j],
                                fact_first=who == rel and told[j] < tied[j]))
        days = [b.fact_day(0), b.question_day()]
        episodes.append(Episode(days, probes, split, [x.value for x in sorted(b.lines, key=lambda x: x.order)]))
    return episodes


def unrelated_days(n: int, *, split: str = "test", seed: int = 0, avoid: Iterable[str] = ()) -> list[list[dict]]:
    """`n` days of unrelated conversation (small talk, facts about other people), e.g. to put
    nights between the facts and the questions of a hand-written conversation. Values in `avoid`
    (and anything containing them) are never used."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    b = _Builder(random.Random(f"dreamchat-unrelated/{split}/{seed}/{n}"), split)
    b.used_values.update(avoid)
    return [b.filler_day() for _ in range(n)]


def natural_conversations() -> list[Episode]:
    """The held-out set of hand-written natural conversations (never used in training)."""
    from dreamchat.models.natural import natural_conversations as load
    return load()
