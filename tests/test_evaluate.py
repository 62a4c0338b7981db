"""`dreamchat eval memory`: scoring, the table, and the runner's plumbing.

The plumbing test uses stand-ins that make every condition's outcome predictable: the fake
backbone "reads" whatever is in its context, the fake memory "remembers" every message it slept on,
so no-memory recall must be 0 %, full context and every sleep condition 100 %. One more test runs
the real parts (tiny llama.cpp model + an untrained memory model) end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from dreamchat.models.episodes import make_episodes
from dreamchat.models.evaluate import (BenchmarkConfig, MemoryBenchmark, Row, Tally, format_table, normalise,
                                       recalled, with_unrelated_days)
from dreamchat.models.generation import Done

SEP, GEN = 0, 1
VOCAB = 4096
EMBD = 4


def test_recalled_normalises_case_space_and_punctuation():
    assert recalled("Mr. Whiskers", "Your cat is called mr whiskers!")
    assert recalled("AB-4471", "The code is AB 4471.")
    assert recalled("Santa Fe", "You live in  Santa\nFe.")
    assert recalled("kiwi", "You're allergic to kiwis.")
    assert not recalled("Pickle", "I don't know your cat's name.")
    assert not recalled("", "anything")
    assert normalise("  Ana's  flat, #12! ") == "ana s flat 12"


def test_table_has_one_row_per_condition_and_dashes_where_unmeasured():
    rows = [Row("no memory", Tally(1, 4), Tally(0, 2), Tally()), Row("perplexity", perplexity=12.345)]
    table = format_table(rows, "title")
    lines = table.splitlines()
    assert lines[0] == "title" and "synthetic recall %" in lines[1] and "perplexity" in lines[1]
    assert "25.0 (1/4)" in lines[3] and "0.0 (0/2)" in lines[3] and lines[3].rstrip().endswith("-")
    assert lines[4].rstrip().endswith("12.35")


def test_unrelated_days_go_before_the_questions():
    ep = make_episodes(1, split="test", seed=3)[0]
    longer = with_unrelated_days(ep, 2, seed=1)
    assert len(longer.days) == len(ep.days) + 2
    assert [p.day for p in longer.probes] == [p.day + 2 for p in ep.probes]
    assert longer.days[-1] == ep.days[-1]
    for day in longer.days[len(ep.days) - 1:-1]:
        assert day and not any(normalise(p.answer) in normalise(m["text"]) for p in ep.probes for m in day)


# ------------------------------------------------------------------------------------------- fakes

class Registry:
    """Each distinct message text is one token id (SEP and GEN are reserved)."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.texts: dict[int, str] = {}

    def __call__(self, text: str) -> int:
        if text not in self.ids:
            self.ids[text] = len(self.ids) + 2
            self.texts[self.ids[text]] = text
            assert self.ids[text] < VOCAB
        return self.ids[text]


@dataclass
class Decoded:
    logits: np.ndarray
    hidden: np.ndarray


class FakeBackbone:
    n_ctx = 4096

    def __init__(self):
        self._tokens: list[int] = []
        self.registry = Registry()

    def clear(self):
        self._tokens = []

    def truncate(self, n):
        del self._tokens[n:]

    def digit_tokens(self):
        return frozenset()

    def tokenize(self, text, special=True, add_bos=False):
        return [self.registry(word) for word in text.split()]

    def decode(self, tokens, *, hidden=False, all_logits=False):
        self._tokens.extend(int(t) for t in tokens)
        n_out = len(tokens) if all_logits else 1
        return Decoded(np.zeros((n_out, VOCAB), np.float32), np.zeros((len(tokens), EMBD), np.float32))


def fake_render_day(backbone, messages, system_prompt, add_generation_prompt=False):
    tokens = []
    for m in messages:
        tokens += [backbone.registry(m["text"]), SEP]
    return tokens + ([GEN] if add_generation_prompt else [])


def fake_day_chunks(backbone, tokens, chunk_tokens):
    backbone.clear()
    for start in range(0, len(tokens), chunk_tokens):
        chunk = tokens[start:start + chunk_tokens]
        backbone.decode(chunk, hidden=True)
        yield np.zeros((len(chunk), EMBD), np.float32), np.asarray(chunk)


def fake_generate(backbone, prompt_tokens, sampler, *, max_tokens, hook=None, want_hidden=False):
    """Without a hook the 'reply' is the context it read; with one, whatever the memory biased."""
    backbone.decode(prompt_tokens)
    if hook is None:
        text = " ".join(backbone.registry.texts.get(t, "") for t in backbone._tokens)
    else:
        logits = hook(np.zeros(VOCAB, np.float32), np.zeros(EMBD, np.float32), list(backbone._tokens))
        text = " ".join(backbone.registry.texts[i] for i in np.flatnonzero(logits > 0))
    yield Done(text=text, n_tokens=1, finish_reason="stop", tokens_per_s=0.0, time_to_first_token_s=0.0,
               prompt_tokens_per_s=0.0)


@dataclass
class FakeBias:
    ids: np.ndarray
    values: np.ndarray


class FakeWake:
    def __init__(self, ids):
        self.ids = np.asarray(sorted(ids), dtype=np.int64)

    def feed(self, hidden, tokens):
        assert len(hidden) == len(tokens) >= 1
        return FakeBias(self.ids, np.ones(len(self.ids), np.float32))


class FakeMemory:
    """Remembers every message id it slept on; logs the passes of every consolidation."""

    def __init__(self):
        self.passes: list[int] = []

    def empty_state(self):
        return {"ids": frozenset(), "nights": 0}

    def consolidate(self, chunks, state, passes, unwritten=None):
        self.passes.append(passes)
        tokens = np.concatenate([t for _, t in chunks])
        assert unwritten is None or len(unwritten) == len(tokens)
        new = {int(t) for t in tokens if t not in (SEP, GEN)}
        return {"ids": state["ids"] | new, "nights": state["nights"] + 1}

    def wake(self, state):
        return FakeWake(state["ids"])


def test_runner_plumbing_with_fakes(tmp_path):
    memory = FakeMemory()
    config = BenchmarkConfig(episodes=6, natural=5, nights=(1, 3), ppl_nights=2, neutral=2)
    bench = MemoryBenchmark(FakeBackbone(), memory, config, generate=fake_generate,
                            render_day=fake_render_day, day_chunks=fake_day_chunks)
    rows = {r.name: r for r in bench.run()}
    assert len(rows) == 9  # 3 + 2 + len(nights) recall rows, 2 perplexity rows
    none = rows["no memory (context cleared, no tower)"]
    assert none.synthetic.total > 6 and none.natural.total >= 5 and none.combined.total >= 1
    assert none.synthetic.hits == none.natural.hits == 0
    for name in ["dreamchat, 1 night, N=1", "dreamchat, 1 night, N=2", "dreamchat, 1 night, N=4",
                 "full context (nothing cleared, no tower)", "retention after 1 night (N=2)",
                 "retention after 3 nights (N=2)"]:
        row = rows[name]
        assert row.synthetic.percent == row.natural.percent == row.combined.percent == 100.0, name
        assert row.natural.total == none.natural.total
    assert set(memory.passes) == {1, 2, 4}
    alone = rows["perplexity, backbone alone (neutral text)"].perplexity
    tower = rows["perplexity, backbone + tower (2 nights of memory)"].perplexity
    assert alone == pytest.approx(VOCAB)      # uniform logits: perplexity = vocabulary size
    assert tower > alone                      # the fake bias lifts only remembered ids
    assert {"condition", "reply", "recalled"} <= set(bench.records[0])
    table = format_table(list(rows.values()))
    assert "retention after 3 nights" in table and "100.0" in table


def test_history_rows_sleep_a_month_of_other_days_before_the_facts():
    from dreamchat.models.episodes import unrelated_days

    memory = FakeMemory()
    config = BenchmarkConfig(episodes=3, natural=2, nights=(1,), history=(2, 30), ppl_nights=1, neutral=1)
    bench = MemoryBenchmark(FakeBackbone(), memory, config, generate=fake_generate,
                            render_day=fake_render_day, day_chunks=fake_day_chunks)
    rows = {r.name: r for r in bench.run()}
    one_night = rows["dreamchat, 1 night, N=2"]
    for k in (2, 30):
        row = rows[f"after {k} nights of earlier memory (N=2)"]
        assert (row.synthetic.total, row.natural.total) == (one_night.synthetic.total, one_night.natural.total)
        assert row.synthetic.percent == row.natural.percent == 100.0   # the fake memory forgets nothing
    # The fake memory's reply is every message it slept on: the earlier days came before the facts,
    # and none of them says a value that is asked for.
    asked = [p.answer for sc in bench.scenarios(1) for p in sc.episode.probes]
    earlier = {m["text"] for day in unrelated_days(30, split="test", seed=0, avoid=asked) for m in day}
    replies = [r["reply"] for r in bench.records if r["condition"] == "after 30 nights of earlier memory (N=2)"]
    assert replies and all(any(text in reply for text in earlier) for reply in replies)
    assert not any(normalise(a) in normalise(text) for a in asked for text in earlier)
    assert "after 30 nights of earlier memory" in format_table(list(rows.values()))


@pytest.mark.parametrize("sampling", ["greedy", "app"])
def test_replies_are_greedy_or_drawn_with_the_app_settings_one_seed_per_probe(sampling):
    """--sampling app: every reply samples with the app's default settings, and all conditions of a
    probe draw from the same seed (so they differ by the memory alone), another probe from another."""
    from dreamchat.config import SamplingSettings

    seen: list[tuple] = []

    def recording_generate(backbone, prompt_tokens, sampler, **kw):
        seen.append((sampler.temperature, sampler.repeat_penalty, sampler.seed, tuple(backbone._tokens)))
        yield from fake_generate(backbone, prompt_tokens, sampler, **kw)

    config = BenchmarkConfig(episodes=2, natural=1, nights=(1,), ppl_nights=1, neutral=1, sampling=sampling)
    bench = MemoryBenchmark(FakeBackbone(), FakeMemory(), config, generate=recording_generate,
                            render_day=fake_render_day, day_chunks=fake_day_chunks)
    bench.run()
    app = SamplingSettings()
    expected = (0.0, 1.0) if sampling == "greedy" else (app.temperature, app.repeat_penalty)
    assert {s[:2] for s in seen} == {expected}
    if sampling == "app":
        calls: dict[tuple, list[int]] = {}  # the prompt each reply continues -> the seeds it drew with
        for _, _, seed, prompt in seen:
            calls.setdefault(prompt, []).append(seed)
        assert max(len(v) for v in calls.values()) >= 4           # no memory, N = 1, 2, 4, ...
        assert all(len(set(v)) == 1 for v in calls.values())     # ... all from one seed
        assert len({v[0] for v in calls.values()}) > 1             # another probe, another seed


def test_several_draws_per_probe_each_from_its_own_seed_shared_by_the_conditions():
    seen: list[tuple] = []

    def recording_generate(backbone, prompt_tokens, sampler, **kw):
        seen.append((sampler.seed, tuple(backbone._tokens)))
        yield from fake_generate(backbone, prompt_tokens, sampler, **kw)

    def run(samples):
        seen.clear()
        config = BenchmarkConfig(episodes=2, natural=1, nights=(1,), ppl_nights=1, neutral=1,
                                 sampling="app", samples=samples)
        bench = MemoryBenchmark(FakeBackbone(), FakeMemory(), config, generate=recording_generate,
                                render_day=fake_render_day, day_chunks=fake_day_chunks)
        rows = bench.run()
        calls: dict[tuple, list[int]] = {}  # the prompt each reply continues -> its seeds, in order
        for seed, prompt in seen:
            calls.setdefault(prompt, []).append(seed)
        return rows, bench.records, calls

    rows1, records1, one = run(1)
    rows3, records3, three = run(3)
    for prompt, seeds in three.items():
        draws = seeds[:3]
        assert len(set(draws)) == 3                             # three draws, three seeds
        assert seeds == draws * (len(seeds) // 3)               # the same three for every condition
        assert draws[0] == one[prompt][0]                       # draw 0 is the one-draw run's
    # every draw is counted: the fake's replies do not depend on the seed, so each count triples
    for r1, r3 in zip(rows1, rows3):
        assert (r3.synthetic.hits, r3.synthetic.total) == (3 * r1.synthetic.hits, 3 * r1.synthetic.total)
        assert (r3.natural.hits, r3.natural.total) == (3 * r1.natural.hits, 3 * r1.natural.total)
    assert len(records3) == 3 * len(records1) and {r["draw"] for r in records3} == {0, 1, 2}
    with pytest.raises(ValueError, match="greedy replies are all the same"):
        MemoryBenchmark(FakeBackbone(), FakeMemory(), BenchmarkConfig(samples=2))


class RecordingMemory(FakeMemory):
    """FakeMemory whose wake sessions record every token they are fed."""

    def __init__(self):
        super().__init__()
        self.fed: list[int] = []

    def wake(self, state):
        memory, session = self, super().wake(state)

        class Recording:
            def feed(self, hidden, tokens):
                memory.fed.extend(int(t) for t in tokens)
                return session.feed(hidden, tokens)
        return Recording()


def test_a_forced_opening_comes_before_every_reply_and_the_memory_reads_it():
    """`ask(..., opening=...)`: in every condition the reply continues the given words, and the
    memory's wake session is fed them (so its queries see them) before the reply's first token."""
    continued: list[list[int]] = []

    def recording_generate(backbone, prompt_tokens, sampler, **kw):
        continued.append(list(backbone._tokens) + list(prompt_tokens))
        yield from fake_generate(backbone, prompt_tokens, sampler, **kw)

    backbone, memory = FakeBackbone(), RecordingMemory()
    bench = MemoryBenchmark(backbone, memory, BenchmarkConfig(), generate=recording_generate,
                            render_day=fake_render_day, day_chunks=fake_day_chunks)
    fact = backbone.registry("my cousin works at Juniper")
    state = memory.consolidate([(None, [fact])], memory.empty_state(), 2)
    replies = bench.ask([], "Who employs my cousin?", {"none": None, "N=2": state},
                        opening="Your cousin works at")
    opening = [GEN] + [backbone.registry(w) for w in "Your cousin works at".split()]
    assert len(continued) == 2 and all(c[-5:] == opening for c in continued)
    assert memory.fed[-5:] == opening
    assert replies["N=2"] == ["my cousin works at Juniper"]   # the fake memory's reply: what it holds


def test_dreamchat_eval_memory_on_the_real_parts(tiny_gguf, tiny_weights, tmp_path, capsys):
    """`dreamchat eval memory` end to end: tiny llama.cpp model + untrained memory weights."""
    from dreamchat.cli import main

    out = tmp_path / "eval.json"
    rc = main(["eval", "memory", "--model", str(tiny_gguf), "--weights", str(tiny_weights), "--quick",
               "--episodes", "1", "--natural", "1", "--max-tokens", "2", "--threads", "1", "--json", str(out),
               "--nights", "2,1", "--history", "3"])
    assert rc == 0
    table = capsys.readouterr().out
    for name in ["no memory", "N=1", "N=2", "N=4", "full context", "retention after 1 night",
                 "retention after 2 nights", "after 3 nights of earlier memory", "perplexity, backbone alone",
                 "perplexity, backbone + tower"]:
        assert name in table
    assert "retention after 3 nights" not in table
    payload = json.loads(out.read_text())
    rows = {r["name"]: r for r in payload["rows"]}
    assert len(rows) == 10
    recall_rows = [r for r in rows.values() if r["perplexity"] is None]
    assert all(r["synthetic"]["total"] >= 1 and 0 <= r["synthetic"]["hits"] <= r["synthetic"]["total"]
               for r in recall_rows)
    assert all(np.isfinite(r["perplexity"]) and r["perplexity"] > 1 for r in rows.values()
               if r["perplexity"] is not None)
    assert payload["replies"] and set(payload["by_kind"]) <= set(rows)


def test_eval_memory_errors_are_one_line(tiny_gguf, tmp_path, capsys):
    from dreamchat.cli import main

    assert main(["eval", "memory", "--model", str(tiny_gguf), "--weights", str(tmp_path / "none.safetensors")]) == 1
    assert "no memory weights" in capsys.readouterr().err
    assert main(["eval", "memory", "--episodes", "0"]) == 1
    assert "--episodes must be at least 1" in capsys.readouterr().err
    assert main(["eval", "memory", "--samples", "3"]) == 1
    assert "--samples needs --sampling app" in capsys.readouterr().err
    assert main(["eval", "memory", "--sampling", "app", "--samples", "0"]) == 1
    assert "--samples must be at least 1" in capsys.readouterr().err
    assert main(["eval", "memory", "--nights", "0,7"]) == 1
    assert "--nights must be at least 1" in capsys.readouterr().err
    assert main(["eval", "memory", "--nights", "a month"]) == 1
    assert "--nights takes whole numbers" in capsys.readouterr().err
    assert main(["eval", "memory", "--history", "0"]) == 1
    assert "--history must be at least 1" in capsys.readouterr().err


def test_retention_nights_are_chosen_on_the_command_line():
    from dreamchat.models.evaluate import parse_nights

    assert parse_nights("30,1, 7,7") == (1, 7, 30)
