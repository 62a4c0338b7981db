"""What the memory supplied to a reply, and where the user said it (`dreamchat/recall.py`): the
tokens `ReplyHook` marks as the memory's, the phrases made of them, their sources in the journal,
and the line under a reply in the assistant's `ReplyDone`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dreamchat.events import Recollection, ReplyDone
from dreamchat.models.memory import SparseBias
from dreamchat.models.wake import ReplyHook
from dreamchat.recall import MAX_RECOLLECTIONS, recalled_phrases, recollections
from dreamchat.storage.journal import Journal

# -- which words -----------------------------------------------------------------------------------


def test_a_phrase_is_the_whole_words_around_the_memorys_tokens():
    pieces = [b"Your", b" cat", b" is", b" Pick", b"le", b" and", b" your", b" dog", b" Rex", b"."]
    assert recalled_phrases(pieces, [0, 0, 0, 1, 0, 0, 0, 0, 1, 0]) == ["Pickle", "Rex"]
    # two chosen words side by side are one phrase; a stop word between them stays in
    assert recalled_phrases([b"On", b" Wed", b"nesday", b" the", b" 1", b"4", b"th"],
                            [0, 1, 0, 0, 1, 0, 0]) == ["Wednesday the 14th"]
    assert recalled_phrases([b" Juniper", b" Press", b"."], [1, 1, 0]) == ["Juniper Press"]


def test_stop_words_alone_are_wording_not_a_recollection():
    assert recalled_phrases([b"You", b" said", b" the", b" is", b"."], [0, 0, 1, 1, 0]) == []
    assert recalled_phrases([b"It", b" is", b" Kiwi"], [0, 1, 1]) == ["Kiwi"]   # "is" trimmed off


def test_a_phrase_comes_once_and_words_split_inside_a_character_count():
    assert recalled_phrases([b" Kiwi", b",", b" Kiwi"], [1, 0, 1]) == ["Kiwi"]
    # "é" is split over two tokens; the memory chose only its first byte
    assert recalled_phrases([b" Caf", b"\xc3", b"\xa9", b" ol", b"\xc3\xa9"], [0, 1, 0, 0, 0]) == ["Café"]
    with pytest.raises(ValueError, match="pieces"):
        recalled_phrases([b"a"], [1, 0])


# -- where they were said --------------------------------------------------------------------------


def _sleep(journal: Journal) -> None:
    sleep = journal.begin_sleep(2)
    journal.finish_sleep(sleep, [m.id for m in journal.unslept_messages()], 10, 1.0, "night-0001")


def test_the_latest_slept_message_of_the_users_own_is_the_source(tmp_path):
    with Journal(tmp_path / "journal.db") as journal:
        journal.append_exchange("My cat is called Pickle.", "Okay, Pickle it is.", 8, 6)
        journal.append_exchange("Actually my cat is called Pickle Junior now.", "Noted.", 9, 3)
        _sleep(journal)
        journal.append_exchange("Pickle ate my homework.", "Oh no.", 6, 3)   # today's: not slept
        (found,) = recollections(["Pickle"], journal.search_slept)
        assert found.source_role == "user" and "[Pickle] Junior" in found.source_snippet
        assert found.source_time == journal.messages()[2].created
        # only the assistant said it: the assistant is the source
        journal.append_exchange("Guess.", "Is it Nutmeg?", 2, 4)
        _sleep(journal)
        (found,) = recollections(["Nutmeg"], journal.search_slept)
        assert found.source_role == "assistant" and found.describe("2026-11-27 21:03").startswith(
            "“Nutmeg”: I, 2026-11-27 21:03: “Is it [Nutmeg]")


def test_words_of_two_facts_are_traced_one_by_one_and_unknown_words_have_no_source(tmp_path):
    with Journal(tmp_path / "journal.db") as journal:
        journal.append_exchange("My favourite food is pelmeni.", "Yum.", 6, 2)
        journal.append_exchange("I joined a paragliding club.", "Brave!", 6, 2)
        _sleep(journal)
        food, club, garbled = recollections(["pelmeni paragliding", "Hilacassac"], journal.search_slept)
        assert (food.text, club.text) == ("pelmeni", "paragliding")
        assert "[pelmeni]" in food.source_snippet and "[paragliding]" in club.source_snippet
        assert garbled == Recollection("Hilacassac")
        assert garbled.describe() == "“Hilacassac”: in nothing slept so far (the memory may have garbled it)"
        # a phrase whose words are in no message at all stays whole
        assert recollections(["orange decorating"], journal.search_slept) == (Recollection("orange decorating"),)
        many = recollections([f"word{i}" for i in range(MAX_RECOLLECTIONS + 2)], journal.search_slept)
        assert len(many) == MAX_RECOLLECTIONS


# -- which tokens the memory chose -----------------------------------------------------------------


class FixedSession:
    """A wake session that pushes the same ids by the same amounts, with a model's wording ids."""

    def __init__(self, push: dict[int, float], wording=()):
        self.ids = np.array(sorted(push), dtype=np.int64)
        self.values = np.array([push[i] for i in self.ids], dtype=np.float32)
        self.model = type("Model", (), {"wording_ids": np.array(list(wording), dtype=np.int64)})()

    def feed(self, hidden, tokens):
        return SparseBias(self.ids, self.values.copy())


def _reply(hook, backbone_logits: list[np.ndarray], chosen: list[int]) -> None:
    history = [40]                                      # the prompt's last token comes first
    for logits, token in zip(backbone_logits, chosen):
        hook(logits.copy(), np.zeros(8, np.float32), history)
        history.append(token)
    hook(np.zeros(50, np.float32), np.zeros(8, np.float32), history)


def test_a_token_is_the_memorys_when_its_push_beat_the_backbones_choice():
    prefers_5 = np.zeros(50, np.float32)
    prefers_5[5] = 3.0
    prefers_3 = np.zeros(50, np.float32)
    prefers_3[3] = 3.0
    hook = ReplyHook(FixedSession({3: 5.0, 7: 1.0, 9: 4.0}, wording=[9]))
    # 3: pushed 5 over the backbone's 5; 3 again: the backbone's own choice; 7: a push of 1 only;
    # 9: a wording word; 5: not pushed at all
    _reply(hook, [prefers_5, prefers_3, prefers_5, prefers_5, prefers_5], [3, 3, 7, 9, 5])
    assert hook.reply == [3, 3, 7, 9, 5]
    assert hook.decided == [True, False, False, False, False]


def test_a_push_withheld_by_the_loop_guard_chose_nothing():
    flat = np.zeros(50, np.float32)
    flat[1] = 1.0
    hook = ReplyHook(FixedSession({4: 5.0}))
    _reply(hook, [flat, flat], [4, 4])                  # the second 4: the word just said, not pushed
    assert hook.decided == [True, False]


# -- the line under a reply ------------------------------------------------------------------------


def test_a_reply_says_what_the_memory_supplied_and_where_it_was_said(tmp_path, tiny_gguf, tiny_weights):
    """The tiny model's replies are noise, so a stand-in memory spells " Pickle" token by token
    with a push no backbone logit can beat (it can push only ids a sleep wrote): the reply is the
    memory's, and its line names the slept message that said it. The untrained tiny memory's own
    push decides nothing."""
    from dreamchat.assistant import Assistant
    from dreamchat.config import Config

    config = Config()
    config = dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, temperature=0.0, seed=1,
                                                                      max_tokens=8),
                                 model=dataclasses.replace(config.model, n_ctx=512, threads=2))
    with Assistant.open(home=str(tmp_path / "home"), model=str(tiny_gguf), weights=str(tiny_weights),
                        config=config) as assistant:
        value = assistant.backbone.tokenize(" Pickle")
        real_wake = assistant.memory.wake

        class Spelling:                                  # the real session, plus the next piece pushed hard
            def __init__(self, state):
                self.session, self.model = real_wake(state), assistant.memory

            def feed(self, hidden, tokens):
                bias = self.session.feed(hidden, tokens)
                last = int(tokens[-1])                   # value's pieces are distinct: the next one
                after = value.index(last) + 1 if last in value else 0
                values = bias.values.copy()
                if after < len(value):
                    values[bias.ids == value[after]] += 80.0
                return type(bias)(bias.ids, values)

        def ask(question: str) -> ReplyDone:
            assistant.config = dataclasses.replace(
                assistant.config, sampling=dataclasses.replace(assistant.config.sampling, max_tokens=len(value)))
            assistant.memory.wake = Spelling
            assistant._restart_wake()
            return list(assistant.send(question))[-1]

        told = list(assistant.send("My cat is called Pickle."))[-1]
        assert isinstance(told, ReplyDone) and told.recalled == ()
        assistant.sleep()
        after = ask("What is my cat called?")
        assert after.text == "Pickle"
        (line,) = after.recalled
        assert (line.text, line.source_role) == ("Pickle", "user")
        assert line.source_snippet == "My cat is called [Pickle]."
        reply_id = assistant.history()[-1].id                  # kept with the reply, for a restart
        assert assistant.recollections([reply_id]) == {reply_id: (line,)}
        assert line.source_id == assistant.history()[0].id


def test_a_phrase_is_cut_where_no_message_holds_it_word_for_word(tmp_path):
    with Journal(tmp_path / "journal.db") as journal:
        journal.append_exchange("We had lunch at her favourite place, Casa Lindoro.", "Nice.", 9, 2)
        journal.append_exchange("lol the cat is called Mr. Pumpernickel", "Ha.", 9, 2)
        _sleep(journal)
        # every word is in the first message, but not "place is Casa" in a row
        place, casa = recollections(["place is Casa Lindoro"], journal.search_slept)
        assert (place.text, casa.text) == ("place", "Casa Lindoro") and casa.source_role == "user"
        (cat,) = recollections(["Mr Pumpernickel"], journal.search_slept)          # punctuation aside
        assert "Pumpernickel" in cat.source_snippet
        journal.append_exchange("Pumpernickel's bowl is empty.", "Feed him!", 6, 2)
        _sleep(journal)
        (cat,) = recollections(["Pumpernickel"], journal.search_slept)   # a possessive still holds the name
        assert cat.source_snippet.startswith("[Pumpernickel]'s bowl")
        lindoro, garbled = recollections(["Lindoro Oostarium"], journal.search_slept)
        assert (lindoro.source_role, garbled) == ("user", Recollection("Oostarium"))


def test_the_benchmarks_stand_in_search_holds_every_word_like_the_journals():
    import benchmark_modules

    searcher = benchmark_modules.load("eval_recall_sources").searcher
    days = [[{"role": "user", "text": "My car is a Peugeot 208."}, {"role": "assistant", "text": "Noted."}],
            [{"role": "user", "text": "My boss's car is a Volvo."}, {"role": "assistant", "text": "A Peugeot? No, a Volvo."}]]
    search = searcher(days)
    assert [m.text for m in search("peugeot 208")] == ["My car is a Peugeot 208."]
    assert len(search("Peugeot")) == 2 and search("Peugeot Volvo")[0].role == "assistant"
    (line,) = recollections(["Peugeot"], search)
    assert line.source_role == "user" and line.source_snippet == "My car is a Peugeot 208."
