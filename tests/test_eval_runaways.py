"""benchmarks/eval_runaways.py: the English heuristic, and that a draw leaves the day as it was."""

from __future__ import annotations

import dataclasses

import benchmark_modules
from dreamchat.assistant import Assistant
from dreamchat.config import Config

runaways = benchmark_modules.load("eval_runaways")


def test_the_english_heuristic_tells_a_drifted_reply():
    assert runaways.english("It sounds like your dog loves the beach! What's his favourite game?")
    assert not runaways.english("Nossa sua amiga, así. É o mesmo Marguerite. E forçando-lo.")
    assert not runaways.english("La nuit de la femme est une fois, mais je ne sapere pas.")
    assert runaways.english("Pickle!")  # too short to tell: counted as English


def test_a_draw_is_the_first_reply_of_the_day_and_is_taken_back(tmp_path, tiny_gguf, tiny_weights):
    config = Config()
    config = dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, max_tokens=12),
                                 model=dataclasses.replace(config.model, n_ctx=512, threads=1))
    assistant = Assistant.open(home=str(tmp_path), model=str(tiny_gguf), weights=str(tiny_weights), config=config)
    try:
        settings = dataclasses.replace(config.sampling, seed=3)
        first = runaways.draw(assistant, "Hello there.", settings)
        assert first["finish"] in ("stop", "length", "loop") and 0 < first["tokens"] <= 12
        assert assistant.history() == [] and assistant.backbone.tokens == assistant._render([])
        assert runaways.draw(assistant, "Hello there.", settings)["text"] == first["text"]  # same seed, same draw
    finally:
        assistant.close()
