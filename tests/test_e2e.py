"""End to end with the real default model (SmolLM2-135M-Instruct Q4_1), in separate processes.

CI runs the `e2e` tests; the `slow` ones (a night of sleep and next-day recall) run with
`pytest -m slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def dreamchat(args, home, models_dir, timeout=300):
    env = {**os.environ, "DREAMCHAT_HOME": str(home), "DREAMCHAT_MODELS_DIR": str(models_dir)}
    result = subprocess.run([sys.executable, "-m", "dreamchat", *args], capture_output=True, text=True,
                            env=env, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # Greedy decoding: the same answers every run.
    (home / "config.toml").write_text("[sampling]\ntemperature = 0.0\nmax_tokens = 48\n")
    return home


def test_two_sends_history_export_and_doctor(home, real_model_path):
    models_dir = real_model_path.parent
    first = dreamchat(["send", "My cat is called Pickle."], home, models_dir)
    assert first.returncode == 0 and first.stdout.strip(), first.stderr
    second = dreamchat(["send", "What is my cat called?"], home, models_dir)
    assert second.returncode == 0 and second.stdout.strip(), second.stderr

    found = dreamchat(["history", "--search", "pickle"], home, models_dir)
    assert found.returncode == 0 and "My cat is called Pickle." in found.stdout

    exported = dreamchat(["history", "--export", "json"], home, models_dir)
    messages = json.loads(exported.stdout)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["text"] == first.stdout.strip()
    assert messages[3]["text"] == second.stdout.strip()

    doctor = dreamchat(["doctor"], home, models_dir)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in doctor.stdout
    assert "memory tower" in doctor.stdout


def test_second_send_sees_the_first_exchange_in_context(home, real_model_path, monkeypatch):
    from dreamchat.assistant import Assistant

    models_dir = real_model_path.parent
    assert dreamchat(["send", "My cat is called Pickle."], home, models_dir).returncode == 0
    monkeypatch.setenv("DREAMCHAT_MODELS_DIR", str(models_dir))
    with Assistant.open(home=str(home)) as assistant:
        context = assistant.backbone.detokenize(assistant.backbone.tokens, special=True).decode("utf-8", "replace")
    assert "My cat is called Pickle." in context
    assert context.count("<|im_start|>assistant") == 1


@pytest.mark.slow
def test_a_fact_told_yesterday_is_recalled_after_a_night(home, real_model_path):
    models_dir = real_model_path.parent
    assert dreamchat(["send", "My cat is called Pickle."], home, models_dir).returncode == 0
    slept = dreamchat(["sleep", "--passes", "2", "--json"], home, models_dir)
    report = json.loads(slept.stdout)
    assert report["slept"] and report["snapshot"]
    answer = dreamchat(["send", "What is my cat called?"], home, models_dir)
    assert "pickle" in answer.stdout.lower(), answer.stdout


def test_a_recalled_fact_says_where_it_was_said(home, real_model_path, monkeypatch):
    """After a night the real memory answers, and the reply's from-memory line points at the
    message that told it (`dreamchat/recall.py`)."""
    from dreamchat.assistant import Assistant
    from dreamchat.events import ReplyDone

    monkeypatch.setenv("DREAMCHAT_MODELS_DIR", str(real_model_path.parent))
    with Assistant.open(home=str(home)) as assistant:
        list(assistant.send("My sister Maya just moved to Lisbon, and my dog is called Biscuit."))
        assert assistant.sleep(passes=2) is not None
        done = list(assistant.send("What is my dog called?"))[-1]
    assert isinstance(done, ReplyDone) and "Biscuit" in done.text, done.text
    line = next(r for r in done.recalled if "Biscuit" in r.text)
    assert line.source_role == "user" and "[Biscuit]" in line.source_snippet


def test_a_forgotten_fact_is_gone_from_the_memory(home, real_model_path, monkeypatch):
    """`forget` sleeps the memory again without the messages: the real memory recalled the dog's
    name before, and cannot after (it never held it). The same replies came with 1 and 2 threads
    and with N = 1 and 2."""
    from dreamchat.assistant import Assistant

    monkeypatch.setenv("DREAMCHAT_MODELS_DIR", str(real_model_path.parent))
    with Assistant.open(home=str(home)) as assistant:
        list(assistant.send("My dog is called Biscuit."))
        list(assistant.send("My sister lives in Porto."))
        assert assistant.sleep(passes=2) is not None
        before = list(assistant.send("What is my dog called?"))[-1].text
        assert "Biscuit" in before, before
        report = assistant.forget(assistant.plan_forget("biscuit"))
        assert report.replay_days == 1 and report.snapshot and assistant.search("biscuit") == []
        after = list(assistant.send("What is my dog called?"))[-1].text
    assert "biscuit" not in after.lower(), after
