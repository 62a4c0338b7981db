"""Synthetic memory episodes: splits are disjoint, generation is deterministic, probes are answerable."""

from __future__ import annotations

import random
import re
from itertools import chain

import pytest

from dreamchat.models import lexicon as L
from dreamchat.models import phrasings as P
from dreamchat.models.episodes import CATEGORY_SPECS, Episode, make_episodes


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w#'-]+", " ", text.lower()).split())


def _user_texts(ep: Episode, before_day: int) -> list[str]:
    return [m["text"] for day in ep.days[:before_day] for m in day if m["role"] == "user"]


@pytest.fixture(scope="module")
def train():
    return make_episodes(300, split="train", seed=0)


@pytest.fixture(scope="module")
def test():
    return make_episodes(300, split="test", seed=0)


def _template_lists():
    """Every (name, {"train": [...], "test": [...]}) phrasing list."""
    for cat, lists in P.CATEGORIES.items():
        for key, split_lists in lists.items():
            yield f"{cat}.{key}", split_lists
    yield "GENERIC_UPDATES", P.GENERIC_UPDATES
    yield "ACKS", P.ACKS
    yield "JOINERS", P.JOINERS
    yield "SMALL_TALK", P.SMALL_TALK
    yield "GREETINGS", P.GREETINGS
    yield "FACT_WRAPPERS", P.FACT_WRAPPERS
    yield "QUESTION_OPENERS", P.QUESTION_OPENERS
    yield "QUESTION_CLOSERS", P.QUESTION_CLOSERS


def test_phrasings_are_disjoint_between_splits():
    all_train = set(chain.from_iterable(lists["train"] for _, lists in _template_lists()))
    all_test = set(chain.from_iterable(lists["test"] for _, lists in _template_lists()))
    assert all_train.isdisjoint(all_test), all_train & all_test
    for name, lists in _template_lists():
        assert lists["train"] and lists["test"], f"{name} needs templates in both splits"


def test_breadth_of_categories_and_phrasings():
    assert len(P.CATEGORIES) >= 12
    for cat, lists in P.CATEGORIES.items():
        assert len(lists["state"]["train"]) >= 12, cat
        assert len(lists["state"]["test"]) >= 6, cat
        assert len(lists["ask"]["train"]) >= 4 and len(lists["ask"]["test"]) >= 3, cat
    assert len(P.GENERIC_UPDATES["train"]) >= 12 and len(P.GENERIC_UPDATES["test"]) >= 6
    for values in (L.FIRST_NAMES, L.PET_NAMES, L.CITIES):
        assert len(values) >= 200


def test_value_lists_are_split_disjointly():
    for values in (L.FIRST_NAMES, L.PET_NAMES, L.CITIES, L.JOBS, L.HOBBIES, L.CARS):
        train, test = L.pool(values, "train"), L.pool(values, "test")
        assert set(train).isdisjoint(test) and len(train) + len(test) == len(values)


def test_values_never_cross_splits(train, test):
    train_values = {v.lower() for ep in train for v in ep.facts}
    test_values = {v.lower() for ep in test for v in ep.facts}
    assert train_values.isdisjoint(test_values), train_values & test_values
    assert all(L.split_of(v) == "test" for v in test_values)
    # names inside generated values (full names, "Casa Ines") come from their own split as well
    train_names = {n for n in L.pool(L.FIRST_NAMES, "train") if " " not in n}
    for p in (p for ep in test for p in ep.probes if p.category in ("person_name", "venue")):
        assert not train_names & set(re.findall(r"[\w-]+", p.answer)), p.answer


def test_test_messages_use_no_train_template(test):
    """No held-out user message is word-for-word a train template's fixed text."""
    fixed = set()
    for _, lists in _template_lists():
        for t in lists["train"]:
            if isinstance(t, tuple):
                fixed.update(x.strip() for x in t if x.strip())
            elif "{" not in t:
                fixed.add(t.strip())
    for ep in test:
        for day in ep.days:
            for m in day:
                assert m["text"] not in fixed


def test_deterministic_given_seed():
    a = make_episodes(25, split="train", seed=7, nights=3)
    b = make_episodes(25, split="train", seed=7, nights=3)
    c = make_episodes(25, split="train", seed=8, nights=3)
    assert a == b
    assert a != c


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_answer_was_stated_on_an_earlier_day(split, train, test):
    for ep in train if split == "train" else test:
        assert ep.probes
        for probe in ep.probes:
            earlier = _norm(" ".join(_user_texts(ep, probe.day)))
            assert _norm(probe.answer) in earlier, (probe, ep.days)
            # values keep their spelling (case included, bar a sentence-initial capital) even in
            # casually typed messages
            said = " ".join(_user_texts(ep, probe.day))
            assert probe.answer in said or probe.answer[:1].upper() + probe.answer[1:] in said, probe
            assert _norm(probe.answer) not in _norm(probe.question)
            assert _norm(probe.answer) in _norm(probe.reply)
            assert probe.day == len(ep.days) - 1


def test_updates_answer_with_the_newest_value(train, test):
    n = 0
    for ep in train + test:
        for probe in ep.probes:
            if probe.kind != "update":
                continue
            n += 1
            assert probe.stale and probe.stale != probe.answer
            texts = [_norm(t) for t in _user_texts(ep, probe.day)]
            first_old = next(i for i, t in enumerate(texts) if _norm(probe.stale) in t)
            first_new = next(i for i, t in enumerate(texts) if _norm(probe.answer) in t)
            assert first_old <= first_new
            # the newest mention is the new value
            last_new = max(i for i, t in enumerate(texts) if _norm(probe.answer) in t)
            assert all(i <= last_new for i, t in enumerate(texts) if _norm(probe.stale) in t)
    assert n > 20


def test_combined_facts_need_two_statements(train):
    n = 0
    for ep in train:
        for probe in ep.probes:
            if not probe.combined:
                continue
            n += 1
            assert probe.kind == "combined"
            texts = _user_texts(ep, probe.day)
            # the value is stated about a person named elsewhere, and the question names only the relation
            holder = [t for t in texts if _norm(probe.answer) in _norm(t)]
            assert holder
    assert n > 20


def test_coverage(train):
    kinds = {p.kind for ep in train for p in ep.probes}
    categories = {p.category for ep in train for p in ep.probes}
    assert {"update", "combined"} <= kinds
    assert categories == set(CATEGORY_SPECS)
    answers = [p.answer for ep in train for p in ep.probes]
    assert any(" " in a for a in answers) and any("-" in a for a in answers)
    assert any(len(ep.facts) >= 4 for ep in train)  # several facts, distractors included


@pytest.mark.parametrize("nights", [1, 3, 7])
def test_nights_add_unrelated_days(nights):
    for ep in make_episodes(30, split="test", seed=1, nights=nights):
        fact_days = len(ep.days) - nights
        assert fact_days in (1, 2)
        assert ep.fillers == list(range(fact_days, len(ep.days) - 1))   # recorded, for training
        for probe in ep.probes:
            for day in ep.days[fact_days:]:
                for m in day:
                    assert _norm(probe.answer) not in _norm(m["text"])


def test_days_are_short(train):
    for ep in train:
        for day in ep.days:
            assert len(day) <= 16
            assert sum(len(m["text"].split()) for m in day) <= 200


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_episodes(1, split="dev")
    with pytest.raises(ValueError):
        make_episodes(1, nights=0)
    with pytest.raises(ValueError):
        make_episodes(1, facts_per_day=(3, 1))


# ------------------------------------------------------------------------ natural held-out set

def _template_regex(template: str) -> re.Pattern:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("^" + "(.+)".join(re.escape(p) for p in parts) + "$", re.IGNORECASE)


def test_natural_set_is_large_answerable_and_well_formed():
    from dreamchat.models.episodes import natural_conversations

    episodes = natural_conversations()
    assert len(episodes) >= 40
    assert sum(p.combined for ep in episodes for p in ep.probes) >= 5
    assert sum(p.kind == "update" for ep in episodes for p in ep.probes) >= 3
    for ep in episodes:
        assert len(ep.days) >= 2 and ep.probes
        for day in ep.days:
            assert [m["role"] for m in day] == ["user", "assistant"] * (len(day) // 2)
        for probe in ep.probes:
            assert _norm(probe.answer) in _norm(" ".join(_user_texts(ep, probe.day))), probe
            assert _norm(probe.answer) in _norm(probe.reply)


def test_natural_set_shares_no_values_or_phrasings_with_training():
    from dreamchat.models.episodes import natural_conversations

    train_values = {v.lower() for values in (L.FIRST_NAMES, L.PET_NAMES, L.CITIES, L.JOBS, L.HOBBIES,
                                             L.FOODS, L.PLACES, L.CARS, L.ALLERGENS, L.LANGUAGES,
                                             L.SUBJECTS, L.TEAMS, L.DRINKS, L.BANDS, L.BOOKS, L.FILMS)
                    for v in L.pool(values, "train")}
    templates = [_template_regex(t) for cat in P.CATEGORIES.values() for key in ("state", "ask")
                 for split in ("train", "test") for t in cat[key][split]]
    for ep in natural_conversations():
        for probe in ep.probes:
            assert probe.answer.lower() not in train_values, probe.answer
        for day in ep.days:
            for m in day:
                if m["role"] == "user":
                    assert not any(t.match(m["text"]) for t in templates), m["text"]
        for probe in ep.probes:
            assert not any(t.match(probe.question) for t in templates), probe.question


def test_general_chat_goes_on_later_days_only_between_exchanges():
    from dreamchat.models.general_chat import GENERAL_CHAT
    plain = make_episodes(40, split="train", seed=4, nights=3)
    chat = make_episodes(40, split="train", seed=4, nights=3, chat=0.8)
    answers = {a for _, a in GENERAL_CHAT["train"]}
    added = 0
    for a, b in zip(plain, chat):
        assert a.probes == b.probes and b.days[0] == a.days[0]       # facts untouched
        assert a.fillers == b.fillers == [len(a.days) - 3, len(a.days) - 2]
        for d, (day_a, day_b) in enumerate(zip(a.days, b.days)):
            extra = [m for m in day_b if m["text"] in answers]
            added += len(extra)
            # the same messages in the same order once the inserted exchanges are taken out
            inserted = {i for i, m in enumerate(day_b) if m["text"] in answers}
            inserted |= {i - 1 for i in inserted}
            assert [m for i, m in enumerate(day_b) if i not in inserted] == day_a
            assert [m["role"] for m in day_b] == ["user", "assistant"] * (len(day_b) // 2)
    assert added >= 40                                                # 2 later days x 40 x 0.8 ~ 64
    test_answers = {a for _, a in GENERAL_CHAT["test"]}
    assert not answers & test_answers
    for ep in make_episodes(20, split="test", seed=4, nights=2, chat=1.0):
        assert any(m["text"] in test_answers for m in ep.days[1])
    assert make_episodes(5, split="train", seed=4, chat=0.0) == make_episodes(5, split="train", seed=4)
    with pytest.raises(ValueError, match="probability"):
        make_episodes(1, chat=1.5)


def test_general_chat_stays_clear_of_the_benchmark_texts():
    """The perplexity benchmark's neutral texts are held out: no shared question or answer sentence."""
    from dreamchat.models.evaluate import NEUTRAL_TEXTS
    from dreamchat.models.general_chat import GENERAL_CHAT
    held_out = {s.strip().lower() for q, a in NEUTRAL_TEXTS for s in re.split(r"[.?!]", q + ". " + a) if len(s) > 20}
    for split in ("train", "test"):
        for q, a in GENERAL_CHAT[split]:
            sentences = {s.strip().lower() for s in re.split(r"[.?!]", q + ". " + a) if len(s) > 20}
            assert not sentences & held_out, q
    for _, a in GENERAL_CHAT["train"] + GENERAL_CHAT["test"]:
        assert 25 <= len(a.split()) <= 130 and "\n" not in a


def test_invented_values_replace_proper_names_only_and_stay_in_the_split():
    from dreamchat.models.episodes import INVENTABLE
    listed = set(chain(L.PET_NAMES, L.FIRST_NAMES, L.CITIES, L.PLACES, L.SURNAMES))
    plain = make_episodes(60, split="train", seed=6)
    invented = make_episodes(60, split="train", seed=6, invented=1.0)
    assert make_episodes(60, split="train", seed=6, invented=0.0) == plain
    made_up = 0
    for a, b in zip(plain, invented):
        assert len(a.probes) == len(b.probes) and len(a.days) == len(b.days)
        for pa, pb in zip(a.probes, b.probes):
            assert pa.kind == pb.kind
            if pa.kind in INVENTABLE and not pa.combined:
                assert pb.answer not in listed and L.split_of(pb.answer) == "train", pb.answer
                assert any(pb.answer in m["text"] for day in b.days[:-1] for m in day), pb.answer
                made_up += 1
            elif pa.kind not in INVENTABLE and pa.kind not in ("update", "combined") and not pa.combined:
                assert pa.answer == pb.answer                    # other values untouched
    assert made_up >= 20
    for kind in ("name", "place", "company"):
        words = {L.make_invented(kind, random.Random(i)) for i in range(200)}
        assert len(words) > 150 and all(w[:1].isupper() for w in words)
    with pytest.raises(ValueError, match="invented must be a probability"):
        make_episodes(1, invented=-0.1)


def test_probes_carry_a_training_style_opening_that_stops_before_the_value():
    """Probe.opening (for benchmarks/eval_openings.py): a training-split reply up to its value, the
    same for every probe of a category and slot, never holding the answer; "" where no training
    reply ends with the value."""
    from dreamchat.models.phrasings import CATEGORIES

    probes = [p for ep in make_episodes(40, split="test", seed=3) for p in ep.probes]
    with_opening = [p for p in probes if p.opening]
    assert len(with_opening) > 0.6 * len(probes)
    assert {p.kind for p in with_opening} >= {"update", "combined"}
    for p in with_opening:
        assert p.answer.lower() not in p.opening.lower()
        bank = CATEGORIES[p.category]["reply_of" if p.combined else "reply"]["train"]
        stems = [t.split("{")[0] for t in bank if t.rstrip(".!").endswith("{v}")]
        assert any(p.opening.lower().startswith(stem.lower().strip()) for stem in stems), p.opening


def test_binding_episodes_tie_two_relatives_to_facts_of_one_kind():
    """Each binding episode names two relatives and gives each a fact of the same kind; a probe's
    answer and distractor are the two facts, both stated by name, never by relative."""
    from dreamchat.models.episodes import make_binding_episodes

    episodes = make_binding_episodes(60, split="test", seed=3)
    assert [e.probes[0].question for e in episodes] == \
        [e.probes[0].question for e in make_binding_episodes(60, split="test", seed=3)]
    orders = set()
    for e in episodes:
        assert len(e.days) == 2 and len(e.probes) == 2
        said = " ".join(_norm(t) for t in _user_texts(e, 1))
        a, b = e.probes
        assert (a.answer, a.distractor) == (b.distractor, b.answer) and a.answer != b.answer
        assert a.category == b.category and a.combined and b.combined
        for p in e.probes:
            assert _norm(p.answer) in said and p.day == 1
            orders.add(p.fact_first)
        # the facts are the two names and the two values; each value is said in a message that
        # names a person
        names = [v for v in e.facts if v not in (a.answer, b.answer)]
        assert len(e.facts) == 4 and len(names) == 2
        for p in e.probes:
            assert any(_norm(p.answer) in _norm(t) and any(_norm(n) in _norm(t) for n in names)
                       for t in _user_texts(e, 1))
    assert orders == {True, False}
    test_values = set(chain.from_iterable((p.answer, p.distractor) for e in episodes for p in e.probes))
    train_values = set(chain.from_iterable((p.answer, p.distractor) for e in make_binding_episodes(60, split="train")
                                           for p in e.probes))
    assert not test_values & train_values
    with pytest.raises(ValueError, match="split"):
        make_binding_episodes(1, split="dev")
    # invented names: the same episodes, but no relative's name from the lists
    listed, made_up = make_binding_episodes(20, seed=4), make_binding_episodes(20, seed=4, invented=1.0)
    assert [p.question for e in listed for p in e.probes] == [p.question for e in made_up for p in e.probes]
    names = {v for e in listed for v in e.facts} - {v for e in listed for p in e.probes for v in (p.answer,)}
    made_up_names = {v for e in made_up for v in e.facts} - {p.answer for e in made_up for p in e.probes}
    assert names and not names & made_up_names
    with pytest.raises(ValueError, match="invented"):
        make_binding_episodes(1, invented=2.0)


def test_binding_probes_can_ask_by_the_name():
    """`by_name`: a probe asks about the person by name instead of by relative, with the same answer
    and distractor; by_name = 0 leaves the episodes as they were."""
    from dreamchat.models.episodes import make_binding_episodes

    plain = make_binding_episodes(40, split="train", seed=5)
    assert [(p.question, p.reply) for e in plain for p in e.probes] == \
        [(p.question, p.reply) for e in make_binding_episodes(40, split="train", seed=5, by_name=0.0)
         for p in e.probes]
    named = make_binding_episodes(40, split="train", seed=5, by_name=1.0)
    for before, after in zip(plain, named):
        assert before.days == after.days and before.facts == after.facts
        for b, p in zip(before.probes, after.probes):
            assert (p.answer, p.distractor, p.category) == (b.answer, b.distractor, b.category)
            assert not p.combined and not p.fact_first and p.kind == p.category
    # each by-name question names the person whose value is the answer, and only that person
    for e in named:
        said = _user_texts(e, 1)
        for p in e.probes:
            told = next(t for t in said if _norm(p.answer) in _norm(t))
            asked = [n for n in e.facts if n not in (p.answer, p.distractor) and _norm(n) in _norm(p.question)]
            assert len(asked) == 1 and _norm(asked[0]) in _norm(told)
    mixed = make_binding_episodes(200, split="train", seed=5, by_name=0.3)
    share = sum(not p.combined for e in mixed for p in e.probes) / 400
    assert 0.2 < share < 0.4
    with pytest.raises(ValueError, match="by_name"):
        make_binding_episodes(1, by_name=-0.1)
