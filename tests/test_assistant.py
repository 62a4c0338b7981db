"""The assistant with the tiny random-weight GGUF: the day, send, cancel, naps, sleep, crashes.

The tiny model's replies are noise, so these tests check the plumbing: what is in the context,
what the journal holds, which snapshot is current, never what the model says.
"""

from __future__ import annotations

import dataclasses
import tempfile

import numpy as np
import pytest

from dreamchat.assistant import Assistant, SleepCancelled
from dreamchat.config import Config
from dreamchat.errors import BusyError, EmptyMessageError, TakeBackError
from dreamchat.events import NapStarted, ReplyDone, ReplyPiece


def _config(n_ctx: int = 512, max_tokens: int = 8, nap_keep: int = 128) -> Config:
    config = Config()
    return dataclasses.replace(
        config,
        sampling=dataclasses.replace(config.sampling, temperature=0.0, max_tokens=max_tokens, seed=1),
        model=dataclasses.replace(config.model, n_ctx=n_ctx, threads=2),
        sleep=dataclasses.replace(config.sleep, nap_keep_tokens=nap_keep),
    )


@pytest.fixture
def open_assistant(tmp_path, tiny_gguf, tiny_weights):
    opened = []

    def _open(**kwargs):
        kwargs.setdefault("config", _config())
        kwargs.setdefault("weights", str(tiny_weights))
        assistant = Assistant.open(home=str(tmp_path / "home"), model=str(tiny_gguf), **kwargs)
        opened.append(assistant)
        return assistant

    yield _open
    for assistant in opened:
        assistant.close()


def _reply(assistant, text: str) -> ReplyDone:
    events = list(assistant.send(text))
    assert isinstance(events[-1], ReplyDone)
    assert "".join(e.text for e in events if isinstance(e, ReplyPiece)).strip() == events[-1].text
    return events[-1]


def test_send_stores_both_turns_and_the_day_survives_a_restart(open_assistant):
    assistant = open_assistant()
    empty_day, _ = assistant.context_usage()
    done = _reply(assistant, "My cat is called Pickle.")
    assert done.tokens >= 1
    messages = assistant.history()
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].text == "My cat is called Pickle."
    assert messages[1].text == done.text
    used, n_ctx = assistant.context_usage()
    assert empty_day < used < n_ctx
    day_tokens = assistant._render(assistant.journal.unslept_messages())
    assistant.close()

    again = open_assistant()
    # The new process rebuilt exactly the rendered day from the journal, first exchange included.
    assert again.backbone.tokens == day_tokens
    assert again.backbone.n_past == len(day_tokens)
    _reply(again, "What is my cat called?")
    assert len(again.history()) == 4


def test_cancelled_reply_stores_nothing_and_leaves_no_trace_in_context(open_assistant):
    assistant = open_assistant(config=_config(max_tokens=32))
    stream = assistant.send("Tell me a long story.")
    next(e for e in stream if isinstance(e, ReplyPiece))
    stream.close()  # Esc in the TUI, Ctrl-C in the CLI
    assert assistant.history() == []
    _reply(assistant, "Hello there.")
    assert [m.text for m in assistant.history()][0] == "Hello there."
    # The context is this turn's prompt plus its reply: the cancelled turn is gone.
    prompt = assistant._render([], user_text="Hello there.")
    assert assistant.backbone.tokens[: len(prompt)] == prompt


def _sampled(**sampling) -> Config:
    config = _config(max_tokens=16)
    return dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, temperature=1.5,
                                                                    top_k=0, top_p=1.0, min_p=0.0, **sampling))


def test_retry_replaces_the_last_reply_with_a_new_draw(open_assistant):
    assistant = open_assistant(config=_sampled(seed=7))  # a fixed seed must not make retries repeat
    _reply(assistant, "Hello.")
    first = _reply(assistant, "Tell me something.")
    user_before = assistant.history()[-2]
    replies = {first.text}
    for _ in range(4):
        done = [e for e in assistant.retry() if isinstance(e, ReplyDone)][-1]
        replies.add(done.text)
        history = assistant.history()
        # Still two exchanges: the retried one holds the same user turn and the new reply.
        assert [m.role for m in history] == ["user", "assistant"] * 2
        assert history[-2].text == user_before.text and history[-1].text == done.text
    assert len(replies) > 1, "five draws at temperature 1.5 all gave one reply"
    # The context is the day up to the retried prompt, then the new reply: no trace of the old ones.
    prompt = assistant._render(history[:2], user_text=history[2].text)
    assert assistant.backbone.tokens[: len(prompt)] == prompt
    assert assistant.backbone.detokenize(assistant.backbone.tokens[len(prompt):]).decode(
        errors="replace").strip().startswith(history[-1].text[:8])


def test_a_cancelled_retry_keeps_the_old_reply(open_assistant):
    assistant = open_assistant(config=_sampled())
    _reply(assistant, "Tell me something.")
    before = assistant.history()
    stream = assistant.retry()
    next(e for e in stream if isinstance(e, ReplyPiece))
    stream.close()
    assert assistant.history() == before
    # The next turn follows the old reply, not the cancelled one.
    _reply(assistant, "And then?")
    prompt = assistant._render(before, user_text="And then?")
    assert assistant.backbone.tokens[: len(prompt)] == prompt


def test_take_back_deletes_the_last_exchange_and_returns_the_user_turn(open_assistant):
    assistant = open_assistant()
    _reply(assistant, "My cat is called Pickle.")
    _reply(assistant, "My password is hunter2.")
    taken = assistant.take_back()
    assert taken.text == "My password is hunter2."
    assert [m.text for m in assistant.history()][0] == "My cat is called Pickle."
    assert len(assistant.history()) == 2
    assert assistant.search("hunter2") == []
    # The context is the day without it already (the status shows the right usage).
    assert assistant.backbone.tokens == assistant._render(assistant.journal.unslept_messages())
    assistant.take_back()
    assert assistant.history() == []
    with pytest.raises(TakeBackError, match="nothing to take back"):
        assistant.take_back()


def test_nothing_slept_can_be_retried_or_taken_back_and_greedy_cannot_vary(open_assistant):
    assistant = open_assistant()
    _reply(assistant, "My cat is called Pickle.")
    with pytest.raises(TakeBackError, match="temperature is 0"):
        list(assistant.retry())
    assistant.sleep(passes=1)
    with pytest.raises(TakeBackError, match="nothing to retry.*/forget TEXT"):
        list(assistant.retry())
    with pytest.raises(TakeBackError, match="nothing to take back"):
        assistant.take_back()
    assert len(assistant.history()) == 2


def test_empty_message_is_refused(open_assistant):
    assistant = open_assistant()
    with pytest.raises(EmptyMessageError, match="empty message"):
        list(assistant.send("   \n"))


def test_second_instance_on_the_same_home_is_refused(open_assistant):
    open_assistant()
    with pytest.raises(BusyError, match="another dreamchat"):
        open_assistant()


def test_sleep_consolidates_marks_messages_and_clears_the_day(open_assistant):
    assistant = open_assistant()
    _reply(assistant, "My sister Ana lives in Porto.")
    _reply(assistant, "Her dog is called Rex.")
    empty_day = len(assistant._render([]))
    progress = []
    report = assistant.sleep(passes=2, on_progress=progress.append)
    assert report.passes == 2 and report.messages == 4 and report.tokens > 0
    assert report.snapshot and report.night == 1
    assert {p.phase for p in progress} == {"reading", "consolidating"}
    assert max(p.pass_ for p in progress) == 2
    assert assistant.journal.unslept_messages() == []
    assert assistant.context_usage()[0] == empty_day
    status = assistant.memory_status()
    assert status.nights == 1 and [s.is_current for s in status.snapshots] == [True]
    # Nothing left to sleep on.
    assert assistant.sleep() is None


def test_a_memory_that_pushes_one_token_cannot_hold_a_reply_in_a_loop(open_assistant):
    """The assistant's replies go through `ReplyHook`: the memory's push is withheld from the token
    just said (a word, not a digit) and from a token that would repeat a three-token run."""
    assistant = open_assistant(config=_config(max_tokens=24))
    _reply(assistant, "My cat is called Pickle.")
    assistant.sleep()
    token = assistant.backbone.tokenize(" Pickle")[0]
    real_wake = assistant.memory.wake

    class Pushing:                                      # the real session, plus a strong push
        def __init__(self, state):
            self.session = real_wake(state)

        def feed(self, hidden, tokens):
            bias = self.session.feed(hidden, tokens)
            values = bias.values.copy()
            values[bias.ids == token] += 50.0
            return type(bias)(bias.ids, values)

    assistant.memory.wake = Pushing
    assistant._restart_wake()
    reply = _reply(assistant, "What is my cat called?")
    tokens = assistant.backbone.tokens[-reply.tokens:]
    assert tokens[0] == token                           # the push leads the reply ...
    assert all(not (a == b == token) for a, b in zip(tokens, tokens[1:])), tokens
    runs = [tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)]
    assert not [r for i, r in enumerate(runs) if r in runs[:i] and r[-1] == token], tokens
    assert tokens.count(token) < 24                     # ... and no longer fills it


def test_the_sleep_writes_neither_the_system_prompts_own_words_nor_the_replies(open_assistant):
    from dreamchat.models.features import turn_spans
    from dreamchat.models.memory import COPY_WRITTEN

    config = dataclasses.replace(_config(), system_prompt="You are Qwxzjv, a helper.")
    assistant = open_assistant(config=config)
    _reply(assistant, "My cat is called Pickle, you helper.")
    tokens = assistant._render(assistant.journal.unslept_messages())
    (start, end), = turn_spans(assistant.backbone, tokens, "system")
    only_system = set(tokens[start + 1:end]) - set(tokens[end:])   # the prompt's own pieces ("Qwxzjv")
    assert only_system
    assistant.sleep(passes=1)
    written = set(np.nonzero(assistant._state[COPY_WRITTEN][0].numpy())[0].tolist())
    assert not written & only_system
    (user_start, user_end), = turn_spans(assistant.backbone, tokens, "user")
    assert set(tokens[user_start + 1:user_end + 1]) <= written       # the user's turn is written
    (reply_start, reply_end), = turn_spans(assistant.backbone, tokens, "assistant")
    reply_only = set(tokens[reply_start + 1:reply_end + 1]) - set(tokens[:reply_start + 1])
    assert reply_only and not written & reply_only                  # the reply's own words are not


def test_the_night_state_survives_a_restart(open_assistant):
    assistant = open_assistant()
    _reply(assistant, "My cat is called Pickle.")
    assistant.sleep(passes=1)
    state = {k: v.clone() for k, v in assistant._state.items()}
    assistant.close()
    again = open_assistant()
    assert set(again._state) == set(state)
    for name, tensor in state.items():
        assert np.array_equal(again._state[name].cpu().numpy(), tensor.cpu().numpy()), name
    assert any(tensor.abs().sum() > 0 for tensor in state.values())


def test_cancelled_sleep_leaves_memory_and_journal_as_they_were(open_assistant):
    assistant = open_assistant()
    _reply(assistant, "My cat is called Pickle.")
    before = assistant.journal.unslept_messages()
    calls = []

    def stop_in_the_middle():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(SleepCancelled, match="untouched"):
        assistant.sleep(passes=4, should_stop=stop_in_the_middle)
    assert assistant.journal.unslept_messages() == before
    assert assistant.store.list() == []
    assert assistant.journal.sleeps()[-1].status == "cancelled"
    # The day is back in context, so the conversation carries on.
    assert assistant.backbone.tokens == assistant._render(before)


def test_crash_between_snapshot_and_journal_is_rolled_back_on_restart(open_assistant, monkeypatch):
    assistant = open_assistant()
    _reply(assistant, "Day one.")
    assistant.sleep(passes=1)
    first = assistant.store.list()[-1].id
    _reply(assistant, "Day two.")

    def crash(*args, **kwargs):
        raise SystemExit("killed")  # the process dies after the snapshot was written

    monkeypatch.setattr(assistant.journal, "finish_sleep", crash)
    with pytest.raises(SystemExit):
        assistant.sleep(passes=1)
    monkeypatch.undo()
    assistant.close()

    again = open_assistant()
    current = [s.id for s in again.store.list() if s.is_current]
    assert current == [first]
    assert [m.text for m in again.journal.unslept_messages() if m.role == "user"] == ["Day two."]


def test_a_full_context_naps_instead_of_truncating(open_assistant):
    assistant = open_assistant(config=_config(n_ctx=256, max_tokens=8, nap_keep=64))
    naps = []
    for i in range(7):
        events = list(assistant.send(f"Fact number {i}: my locker code is {1000 + i}. " * 2))
        naps += [e for e in events if isinstance(e, NapStarted)]
        assert isinstance(events[-1], ReplyDone)
        assert assistant.context_usage()[0] <= 256
    assert naps, "the context never filled"
    sleeps = [s for s in assistant.journal.sleeps() if s.kind == "nap"]
    assert sleeps and all(s.status == "done" for s in sleeps)
    # Every message is either in today's context or was consolidated by a nap: none was dropped.
    slept = [m for m in assistant.history() if m.sleep_id is not None]
    unslept = assistant.journal.unslept_messages()
    assert len(slept) + len(unslept) == 14
    # The context is the unslept day up to the last prompt (then the reply as it was generated).
    last_prompt = assistant._render(unslept[:-2], user_text=unslept[-2].text)
    assert assistant.backbone.tokens[: len(last_prompt)] == last_prompt


def _slept_days(assistant) -> list[tuple[int, list[str]]]:
    """(passes, message texts) of every finished sleep, oldest first."""
    return [(s.passes, [m.text for m in assistant.journal.slept_messages(s.id)])
            for s in assistant.journal.sleeps() if s.status == "done"]


def _home_slept_on(tmp_path, tiny_gguf, weights, days) -> dict:
    """The memory a new home makes when it sleeps on exactly these (passes, texts) days."""
    home = tempfile.mkdtemp(prefix="fresh-", dir=tmp_path)  # a new home on every call
    fresh = Assistant.open(home=home, model=str(tiny_gguf), weights=str(weights), config=_config())
    try:
        for passes, texts in days:
            for user, reply in zip(texts[::2], texts[1::2]):
                fresh.journal.append_exchange(user, reply, 1, 1)
            fresh.sleep(passes=passes)
        return fresh._state
    finally:
        fresh.close()


def test_a_memory_made_by_another_tower_is_rebuilt_from_the_journal(open_assistant, other_weights, tmp_path,
                                                                     tiny_gguf):
    from dreamchat.storage.memory_store import MemoryStoreError

    assistant = open_assistant()
    _reply(assistant, "My sister Ana lives in Porto.")
    assistant.sleep(passes=2)
    _reply(assistant, "Her dog is called Rex.")
    _reply(assistant, "I work at the bakery.")
    assistant.sleep(passes=1)
    _reply(assistant, "Today is still going.")
    days = _slept_days(assistant)
    assistant.close()

    # After an upgrade the old memory cannot be read; the error names the way out.
    with pytest.raises(MemoryStoreError, match="another memory tower.*dreamchat memory rebuild"):
        open_assistant(weights=str(other_weights))
    upgraded = open_assistant(weights=str(other_weights), load_memory=False)
    report = upgraded.rebuild_memory()
    assert report.kind == "rebuild" and report.messages == 6 and report.night == 2
    assert [m.text for m in upgraded.journal.unslept_messages()][0] == "Today is still going."
    assert _slept_days(upgraded) == days  # replaying records no new sleep
    rebuilt = {k: v.clone() for k, v in upgraded._state.items()}
    assert upgraded.backbone.tokens == upgraded._render(upgraded.journal.unslept_messages())
    upgraded.close()

    # The rebuilt memory is what the new tower would have made, had it slept on those days itself.
    assert _same_state(_home_slept_on(tmp_path, tiny_gguf, other_weights, days), rebuilt)

    again = open_assistant(weights=str(other_weights))  # loads normally now
    assert _same_state(again._state, rebuilt)
    assert any(t.any() for t in rebuilt.values())


def test_weights_calibrated_from_the_old_ones_keep_the_memory(open_assistant, tiny_weights, tmp_path):
    from dreamchat.models.calibrate import rescale_copy_read

    assistant = open_assistant()
    _reply(assistant, "My sister Ana lives in Porto.")
    assistant.sleep(passes=2)
    _reply(assistant, "Her dog is called Rex.")
    assistant.sleep(passes=1)
    slept = {k: v.clone() for k, v in assistant._state.items()}
    first = assistant.memory_status().snapshots[0].id
    assistant.close()

    # Only the copy read changed: yesterday's memory loads as it is, no rebuild, and rolls back.
    calibrated = tmp_path / "calibrated.memory.safetensors"
    rescale_copy_read(tiny_weights, 1.6, calibrated)
    upgraded = open_assistant(weights=str(calibrated))
    assert _same_state(upgraded._state, slept) and any(t.any() for t in slept.values())
    upgraded.rollback(first)
    assert upgraded.memory_status().nights == 2 and not _same_state(upgraded._state, slept)


def _damage(snapshot_path) -> None:
    snapshot_path.write_bytes(b"\x00garbage" * 10)


def test_a_damaged_snapshot_loses_no_day_the_next_sleep_sleeps_on_it_again(open_assistant, tmp_path, tiny_gguf,
                                                                          tiny_weights, caplog):
    assistant = open_assistant()
    _reply(assistant, "My sister Ana lives in Porto.")
    assistant.sleep(passes=2)                                       # night-0001
    _reply(assistant, "Her dog is called Rex.")
    assistant.sleep(passes=1)                                       # night-0002: damaged below
    assistant.close()
    _damage(assistant.store.folder / "night-0002.safetensors")

    # The older snapshot is used, and the warning (said once) names the day it lacks and the way back.
    reopened = open_assistant()
    assert _same_state(reopened._state, _home_slept_on(tmp_path, tiny_gguf, tiny_weights, _slept_days(reopened)[:1]))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "using night-0001" in warnings[0]
    assert "lacks the 1 later day" in warnings[0] and "dreamchat memory rebuild" in warnings[0]

    _reply(reopened, "I work at the bakery.")
    report = reopened.sleep(passes=2)
    assert report.repaired == 1 and "First slept again on 1 day that a damaged memory snapshot had lost" in report.summary()
    assert report.messages == 2  # today's; the day slept again is not counted as slept twice
    days = _slept_days(reopened)
    assert len(days) == 3 and reopened.store.current().sleeps == tuple(s.id for s in reopened.journal.sleeps())
    assert _same_state(reopened._state, _home_slept_on(tmp_path, tiny_gguf, tiny_weights, days))
    assert reopened._memory_gap() == []  # the next sleep grows from the repaired memory as usual
    reopened.close()


def test_a_crash_in_the_sleep_that_repairs_a_damaged_memory_still_loses_no_day(open_assistant, monkeypatch,
                                                                               tmp_path, tiny_gguf, tiny_weights):
    assistant = open_assistant()
    _reply(assistant, "My sister Ana lives in Porto.")
    assistant.sleep(passes=1)
    _reply(assistant, "Her dog is called Rex.")
    assistant.sleep(passes=1)
    assistant.close()
    _damage(assistant.store.folder / "night-0002.safetensors")

    reopened = open_assistant()
    _reply(reopened, "I work at the bakery.")
    monkeypatch.setattr(reopened.journal, "finish_sleep", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        reopened.sleep(passes=1)  # dies after writing night-0003, before the journal records the sleep
    monkeypatch.undo()
    reopened.close()

    again = open_assistant()
    assert again.store.current_id == "night-0002" and len(again._memory_gap()) == 1  # not night-0001 as if intact
    assert again.sleep(passes=1).repaired == 1
    assert _same_state(again._state, _home_slept_on(tmp_path, tiny_gguf, tiny_weights, _slept_days(again)))


def test_memory_rebuild_sleeps_again_only_on_the_days_a_damaged_snapshot_lost(open_assistant, tmp_path,
                                                                             tiny_gguf, tiny_weights):
    from dreamchat.errors import NoIntactMemory

    assistant = open_assistant()
    _three_days_with_a_secret(assistant)
    assistant.close()
    _damage(assistant.store.folder / "night-0003.safetensors")

    maintenance = open_assistant(load_memory=False)  # as `dreamchat memory rebuild` opens it
    report = maintenance.rebuild_memory()
    assert (report.kind, report.repaired, report.messages, report.snapshot) == ("repair", 1, 2, "night-0004")
    assert report.summary().startswith("Slept again on 1 day that a damaged memory snapshot had lost")
    assert [m.text for m in maintenance.journal.unslept_messages() if m.role == "user"] == [
        "Zanzibar4471 came up again today."]  # today is not touched
    repaired = {k: v.clone() for k, v in maintenance._state.items()}
    days = _slept_days(maintenance)
    maintenance.close()
    assert _same_state(repaired, _home_slept_on(tmp_path, tiny_gguf, tiny_weights, days))
    reopened = open_assistant()
    assert _same_state(reopened._state, repaired)
    reopened.close()

    # With every snapshot damaged, opening says how to get the memory back; a rebuild sleeps on every day.
    for path in assistant.store.folder.glob("night-*.safetensors"):
        _damage(path)
    with pytest.raises(NoIntactMemory, match="dreamchat memory rebuild.*nothing is lost"):
        open_assistant()
    maintenance = open_assistant(load_memory=False)
    report = maintenance.rebuild_memory()
    assert (report.kind, report.repaired, report.messages) == ("rebuild", 0, 8)  # all three days
    assert _same_state(maintenance._state, repaired)


@pytest.mark.parametrize("load_memory", [True, False], ids=["app", "cli"])
def test_forgetting_over_a_damaged_snapshot_keeps_the_days_it_lost(open_assistant, tmp_path, tiny_gguf,
                                                                  tiny_weights, load_memory):
    assistant = open_assistant()
    _three_days_with_a_secret(assistant)
    assistant.close()
    _damage(assistant.store.folder / "night-0003.safetensors")  # night-0002 is in use: it lacks day 3

    reopened = open_assistant(load_memory=load_memory)
    report = reopened.forget(reopened.plan_forget("Ana"))
    assert report.messages == 2 and report.replay_days == 3  # days 1 (without Ana) and 2, and day 3 too
    days = _slept_days(reopened)
    assert [len(texts) for _, texts in days] == [0, 4, 2]
    assert _same_state(reopened._state, _home_slept_on(tmp_path, tiny_gguf, tiny_weights, days))
    reopened.close()


def _same_state(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(np.allclose(a[k].float().cpu().numpy(), b[k].float().cpu().numpy(), atol=1e-6) for k in a)


def test_reset_and_rollback_when_the_memory_was_made_by_another_tower(open_assistant, other_weights):
    from dreamchat.storage.memory_store import MemoryStoreError

    assistant = open_assistant()
    _reply(assistant, "My cat is called Pickle.")
    first = assistant.sleep(passes=1).snapshot
    _reply(assistant, "I live in Lyon.")
    second = assistant.sleep(passes=1).snapshot
    assistant.close()

    upgraded = open_assistant(weights=str(other_weights), load_memory=False)
    # Rolling back onto another tower's snapshot is refused before anything changes.
    with pytest.raises(MemoryStoreError, match="another memory tower"):
        upgraded.rollback(first)
    assert upgraded.store.current().id == second
    upgraded.reset_memory()
    assert upgraded.store.current() is None
    upgraded.close()
    again = open_assistant(weights=str(other_weights))
    assert all(not t.any() for t in again._state.values())


# ---------------------------------------------------------------------------------------------
# Forgetting one thing (`plan_forget`, `forget`)

def _three_days_with_a_secret(assistant) -> None:
    _reply(assistant, "My sister Ana lives in Porto.")
    assistant.sleep(passes=2)                                       # night-0001
    _reply(assistant, "My PIN is Zanzibar4471.")
    _reply(assistant, "Her dog is called Rex.")
    assistant.sleep(passes=1)                                       # night-0002
    _reply(assistant, "I work at the bakery.")
    assistant.sleep(passes=2)                                       # night-0003
    _reply(assistant, "Zanzibar4471 came up again today.")          # today: not slept


def test_forgetting_leaves_the_memory_it_would_have_been_without_the_messages(open_assistant, tmp_path,
                                                                              tiny_gguf, tiny_weights):
    from dreamchat.storage.memory_store import MemoryStoreError

    assistant = open_assistant()
    _three_days_with_a_secret(assistant)
    before = {k: v.clone() for k, v in assistant._state.items()}
    plan = assistant.plan_forget("zanzibar4471")
    assert [m.text for m in plan.messages if m.role == "user"] == ["My PIN is Zanzibar4471.",
                                                                  "Zanzibar4471 came up again today."]
    # Night 1 does not hold it: the memory sleeps again from that snapshot on days 2 and 3 only.
    assert (plan.replay_days, plan.today, plan.removed_snapshots) == (2, 2, ("night-0002", "night-0003"))
    assert "sleep again on 2 days" in plan.consequences()
    assert [s.id for s in assistant.store.list()] == ["night-0001", "night-0002", "night-0003"]  # planning changed nothing
    assert len(assistant.history()) == 10

    report = assistant.forget(plan)
    assert (report.messages, report.replay_days, report.snapshot) == (4, 2, "night-0004")
    assert report.removed_snapshots == ("night-0002", "night-0003")
    assert [s.id for s in assistant.store.list()] == ["night-0001", "night-0004"]
    assert assistant.search("zanzibar4471") == [] and len(assistant.history()) == 6
    assert assistant.journal.unslept_messages() == []
    assert assistant.backbone.tokens == assistant._render([])  # today's context no longer holds it
    forgotten = assistant._state
    assert not _same_state(forgotten, before)
    assert _same_state(forgotten, _home_slept_on(tmp_path, tiny_gguf, tiny_weights, _slept_days(assistant)))
    assert [len(texts) for _, texts in _slept_days(assistant)] == [2, 2, 2]
    assistant.close()

    again = open_assistant()
    assert _same_state(again._state, forgotten) and again.memory_status().nights == 3
    with pytest.raises(MemoryStoreError, match="no memory snapshot 'night-0002'"):
        again.rollback("night-0002")  # no rollback brings it back
    assert again.plan_forget("zanzibar4471").messages == ()
    one = again.history()[0]                                       # picked from a list: one exchange
    assert [m.text for m in again.plan_forget(message_ids=[one.id]).messages] == [
        m.text for m in again.history()[:2]]


def test_after_a_reset_forgetting_deletes_old_snapshots_and_nothing_reset_comes_back(open_assistant):
    assistant = open_assistant()
    _reply(assistant, "My PIN is Zanzibar4471.")
    assistant.sleep(passes=1)
    assistant.reset_memory()
    _reply(assistant, "I like tea.")
    assistant.sleep(passes=1)
    tea_only = {k: v.clone() for k, v in assistant._state.items()}
    assert assistant.store.current().sleeps == (2,)
    assert assistant.rebuild_size() == (1, 2)  # a rebuild sleeps on the tea day only

    plan = assistant.plan_forget("zanzibar4471")
    assert (plan.replay_days, plan.removed_snapshots) == (0, ("night-0001",))
    report = assistant.forget(plan)
    assert report.snapshot is None and report.removed_snapshots == ("night-0001",)
    assert [s.id for s in assistant.store.list()] == ["night-0002"] and _same_state(assistant._state, tea_only)
    assert assistant.rebuild_memory().messages == 2 and _same_state(assistant._state, tea_only)


def test_a_cancelled_forget_changes_nothing(open_assistant):
    assistant = open_assistant()
    _three_days_with_a_secret(assistant)
    before = {k: v.clone() for k, v in assistant._state.items()}
    with pytest.raises(SleepCancelled, match="memory and the journal are as they were"):
        assistant.forget(assistant.plan_forget("zanzibar4471"), should_stop=lambda: True)
    assert [s.id for s in assistant.store.list()] == ["night-0001", "night-0002", "night-0003"]
    assert len(assistant.history()) == 10 and _same_state(assistant._state, before)
    assert assistant.backbone.tokens == assistant._render(assistant.journal.unslept_messages())  # today is back


def test_a_forget_that_crashed_after_the_new_memory_finishes_when_run_again(open_assistant, monkeypatch):
    assistant = open_assistant()
    _three_days_with_a_secret(assistant)

    def killed(ids):
        raise RuntimeError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(assistant.journal, "forget", killed)
        with pytest.raises(RuntimeError):
            assistant.forget(assistant.plan_forget("zanzibar4471"))
    # The new memory is in place and the old snapshots are gone; the messages are not lost yet.
    assert [s.id for s in assistant.store.list()] == ["night-0001", "night-0004"]
    assert len(assistant.history()) == 10
    written = {k: v.clone() for k, v in assistant._state.items()}
    report = assistant.forget(assistant.plan_forget("zanzibar4471"))
    assert report.messages == 4 and assistant.search("zanzibar4471") == []
    assert _same_state(assistant._state, written)


def test_snapshots_from_before_sleeps_were_listed_are_traced_through_their_parents(open_assistant,
                                                                                   monkeypatch):
    assistant = open_assistant()
    for text in ("one", "two"):
        _reply(assistant, text)
        assistant.sleep(passes=1)                     # night-0001 (sleep 1), night-0002 (sleep 2)
    assistant.reset_memory()
    _reply(assistant, "three")
    assistant.sleep(passes=1)                         # night-0003 (sleep 3), on an empty memory
    assistant.rollback("night-0001")
    _reply(assistant, "four")
    assistant.sleep(passes=1)                         # night-0004 (sleep 4), on night-0001
    listed = {s.id: s.sleeps for s in assistant.store.list()}
    assert listed == {"night-0001": (1,), "night-0002": (1, 2), "night-0003": (3,), "night-0004": (1, 4)}

    # The same snapshots as an older dreamchat wrote them: no list, only parent and sleep.
    snapshots = [dataclasses.replace(s, sleeps=None) for s in assistant.store.list()]
    monkeypatch.setattr(assistant.store, "list", lambda: snapshots)
    traced = {s.id: assistant._sleeps_in(s) for s in snapshots}
    assert traced == {k: list(v) for k, v in listed.items()}
    # A pruned parent: every finished sleep before is taken to be held; a damaged file holds all.
    assert assistant._sleeps_in(dataclasses.replace(snapshots[3], parent="night-0000")) == [1, 2, 3, 4]
    assert assistant._sleeps_in(dataclasses.replace(snapshots[2], problem="bad header")) == [1, 2, 3, 4]
    assert assistant._sleeps_in(None) == []
