"""benchmarks/eval_untold.py: its questions are about what the episode never stated, and its two
counts read replies as the table says."""

from __future__ import annotations


import pytest

from dreamchat.models.episodes import make_episodes

import benchmark_modules


@pytest.fixture(scope="module")
def untold():
    return benchmark_modules.load("eval_untold")


def test_questions_are_about_kinds_the_episode_never_stated(untold):
    episodes = make_episodes(12, split="test", seed=5)
    for i, episode in enumerate(episodes):
        stated = {p.kind for p in episode.probes} | {p.category for p in episode.probes}
        questions = untold.untold_questions(episodes, i, 3)
        assert len(questions) == 3
        assert len({q.kind for q in questions}) == 3          # one per kind
        for q in questions:
            assert q.kind not in stated and q.category not in stated
            assert not q.combined and q.kind != "update"
            assert q not in episode.probes


def test_a_reply_names_a_stated_value_or_declines(untold):
    facts = ["Pickle", "Juniper Press"]
    assert untold.names_a_stated_value("Your dog is called pickle!", facts) == "Pickle"
    assert untold.names_a_stated_value("You work at Juniper  Press.", facts) == "Juniper Press"
    assert untold.names_a_stated_value("Your dog is called Rex.", facts) == ""
    assert untold.declines("You haven't told me your dog's name yet.")
    assert untold.declines("I'm sorry, I'm not familiar with your family.")
    assert not untold.declines("Your dog is called Rex.")
