"""The command line with the tiny GGUF: the contract scripts rely on, and one-line errors.

Every bad input must end in exit status 1 with exactly one line on stderr that says what to do,
never a traceback, and must leave the user's data as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from dreamchat.cli import main


def run_cli(args, home, env_extra=None, stdin=None):
    env = {**os.environ, "DREAMCHAT_HOME": str(home), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "dreamchat", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


def assert_one_line_error(result_or_err: str, *needles: str) -> None:
    lines = [line for line in result_or_err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result_or_err
    assert "Traceback" not in result_or_err
    assert lines[0].startswith("dreamchat: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[sampling]\ntemperature = 0.0\nmax_tokens = 8\n[model]\nn_ctx = 512\n")
    return home


def test_send_twice_in_separate_processes_forms_one_conversation(home, tiny_gguf, tiny_weights):
    common = ["--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    first = run_cli(["send", "My cat is called Pickle.", *common], home)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    second = run_cli(["send", "What is my cat called?", *common], home)
    assert second.returncode == 0, second.stderr
    # stdout is only the reply: the journal holds the same text.
    db = sqlite3.connect(home / "dreamchat.db")
    rows = db.execute("select role, text from messages order by id").fetchall()
    assert [r[0] for r in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[0][1] == "My cat is called Pickle."
    assert rows[1][1] == first.stdout.strip()
    assert rows[3][1] == second.stdout.strip()


def test_send_retry_and_undo(home, tiny_gguf, tiny_weights, capsys):
    common = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    assert main(["send", "My cat is called Pickle.", *common]) == 0
    assert main(["send", "--retry", *common]) == 1  # temperature 0: the same reply again
    assert_one_line_error(capsys.readouterr().err, "temperature is 0", "/set temperature")
    (home / "config.toml").write_text("[sampling]\ntemperature = 1.5\ntop_k = 0\nmax_tokens = 8\n"
                                      "[model]\nn_ctx = 512\n")
    assert main(["send", "--retry", *common]) == 0
    reply = capsys.readouterr().out.strip()
    db = sqlite3.connect(home / "dreamchat.db")
    assert db.execute("select role, text from messages order by id").fetchall() == [
        ("user", "My cat is called Pickle."), ("assistant", reply)]
    assert main(["send", "--retry", "Hello", *common]) == 1
    assert_one_line_error(capsys.readouterr().err, "takes no message")
    assert main(["send", *common]) == 1
    assert_one_line_error(capsys.readouterr().err, "needs a message")

    assert main(["undo", *common]) == 0
    assert capsys.readouterr().out == "My cat is called Pickle.\n"
    assert db.execute("select count(*) from messages").fetchone()[0] == 0
    assert main(["undo", *common]) == 1
    assert_one_line_error(capsys.readouterr().err, "nothing to take back")


def test_history_search_and_export_round_trip(home, tiny_gguf, tiny_weights, capsys):
    common = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    assert main(["send", "My cat is called Pickle.", *common]) == 0
    assert main(["send", "I work as a baker in Lyon.", *common]) == 0
    capsys.readouterr()

    assert main(["history", "--home", str(home)]) == 0
    shown = capsys.readouterr().out
    assert "user: My cat is called Pickle." in shown and "user: I work as a baker in Lyon." in shown

    assert main(["history", "--home", str(home), "--search", "pickle"]) == 0
    found = capsys.readouterr().out
    assert "Pickle" in found and "baker" not in found
    assert main(["history", "--home", str(home), "--search", "pickle's \"cat"]) == 0  # no FTS syntax error
    capsys.readouterr()

    assert main(["history", "--home", str(home), "--export", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    texts = [m["text"] for m in exported["messages"]]
    assert texts[0] == "My cat is called Pickle." and texts[2] == "I work as a baker in Lyon."

    target = home / "chat.md"
    assert main(["history", "--home", str(home), "--export", "md", "-o", str(target)]) == 0
    assert "My cat is called Pickle." in target.read_text()


def test_sleep_json_report_and_memory_listing(home, tiny_gguf, tiny_weights, capsys):
    common = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    assert main(["sleep", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["slept"] is False
    assert main(["send", "My cat is called Pickle.", *common]) == 0
    capsys.readouterr()
    assert main(["sleep", "--passes", "3", "--json", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["slept"] and report["passes"] == 3 and report["messages"] == 2 and report["tokens"] > 0
    assert main(["memory", "--home", str(home)]) == 0
    listing = capsys.readouterr().out
    assert "Nights slept: 1" in listing and report["snapshot"] in listing
    assert main(["memory", "reset", "--yes", *common]) == 0
    assert main(["memory", "rollback", report["snapshot"], *common]) == 0


def test_memory_listing_marks_a_damaged_snapshot(home, tiny_gguf, tiny_weights, capsys):
    common = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    assert main(["send", "My cat is called Pickle.", *common]) == 0
    assert main(["sleep", "--json", *common]) == 0
    snapshot = json.loads(capsys.readouterr().out.splitlines()[-1])["snapshot"]
    path = home / "memory" / f"{snapshot}.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    assert main(["memory", "--home", str(home)]) == 0
    listing = capsys.readouterr().out
    assert "Current snapshot fingerprint: (damaged, see below)" in listing
    line = next(line for line in listing.splitlines() if snapshot in line)
    assert "DAMAGED: bad header" in line and "night 1" not in line


def test_doctor_reports_and_fails_on_a_missing_model(home, tiny_gguf, tiny_weights, capsys):
    assert main(["doctor", "--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]) == 0
    out = capsys.readouterr().out
    for needle in ("dreamchat 0.1.0", "llama-cpp-python 0.3.36", "journal", "fingerprint", "CUDA", "threads"):
        assert needle in out, needle
    assert main(["doctor", "--home", str(home), "--model", str(home / "nope.gguf")]) == 1
    out = capsys.readouterr().out
    assert "FAIL model" in out and "--model" in out


@pytest.mark.parametrize("case", ["missing", "not_gguf", "truncated", "not_chat"])
def test_bad_model_files_get_one_line_errors(case, home, tmp_path, tiny_gguf, tiny_gguf_not_chat, capsys):
    path = tmp_path / f"{case}.gguf"
    if case == "not_gguf":
        path.write_text("this is not a model\n" * 100)
    elif case == "truncated":
        path.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    elif case == "not_chat":
        path = tiny_gguf_not_chat
    assert main(["send", "hello", "--home", str(home), "--model", str(path)]) == 1
    assert_one_line_error(capsys.readouterr().err, "--model")
    db = home / "dreamchat.db"
    if db.exists():
        assert sqlite3.connect(db).execute("select count(*) from messages").fetchone()[0] == 0


def test_malformed_config_names_the_key(home, tiny_gguf, capsys):
    (home / "config.toml").write_text("[sampling]\ntemperature = 'hot'\n")
    assert main(["send", "hello", "--home", str(home), "--model", str(tiny_gguf)]) == 1
    assert_one_line_error(capsys.readouterr().err, "sampling.temperature")
    (home / "config.toml").write_text("[sampling\ntemperature = 0.1\n")
    assert main(["send", "hello", "--home", str(home), "--model", str(tiny_gguf)]) == 1
    assert_one_line_error(capsys.readouterr().err, "config.toml")


def test_unwritable_home_and_empty_message(tmp_path, tiny_gguf, capsys):
    if os.geteuid() == 0:
        blocked = tmp_path / "file-not-folder"
        blocked.write_text("x")
        home = blocked / "home"  # cannot be created even by root
    else:
        home = tmp_path / "ro"
        home.mkdir(mode=0o500)
    assert main(["send", "hello", "--home", str(home), "--model", str(tiny_gguf)]) == 1
    assert_one_line_error(capsys.readouterr().err, "--home")
    good = tmp_path / "good"
    assert main(["send", "   ", "--home", str(good), "--model", str(tiny_gguf)]) == 1
    assert_one_line_error(capsys.readouterr().err, "empty message")


def test_journal_from_a_newer_dreamchat_is_refused_and_kept(home, tiny_gguf, capsys):
    from dreamchat.storage.journal import Journal

    journal = Journal(home / "dreamchat.db")
    journal.close()
    db = sqlite3.connect(home / "dreamchat.db")
    db.execute("insert into _migrations (name, applied) values ('m999_from_the_future', '2030-01-01')")
    db.commit()
    db.close()
    before = (home / "dreamchat.db").read_bytes()
    assert main(["send", "hello", "--home", str(home), "--model", str(tiny_gguf)]) == 1
    assert_one_line_error(capsys.readouterr().err, "newer")
    assert (home / "dreamchat.db").read_bytes() == before


def test_memory_forget_asks_then_forgets_in_the_journal_and_the_memory(home, tiny_gguf, tiny_weights, capsys):
    common = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    assert main(["send", "My PIN is Zanzibar4471.", *common]) == 0
    assert main(["send", "I like tea.", *common]) == 0
    assert main(["sleep", *common]) == 0
    capsys.readouterr()
    # A script must confirm: without --yes (stdin is not a terminal) nothing happens.
    assert main(["memory", "forget", "zanzibar4471", *common]) == 1
    captured = capsys.readouterr()
    assert "you        My PIN is Zanzibar4471." in captured.err
    assert "the memory will sleep again on 1 day without them" in captured.err
    assert_one_line_error(captured.err.splitlines()[-1], "pass --yes")
    assert main(["memory", "forget", "Zanzibar4471", "--yes", *common]) == 0
    out = capsys.readouterr().out
    assert "you        My PIN is Zanzibar4471." in out and "Forgot 2 messages; the memory was made again without them (1 day, " in out
    assert "deleted 1 memory snapshot that held them" in out
    assert main(["history", "--home", str(home)]) == 0
    shown = capsys.readouterr().out
    assert "Zanzibar" not in shown and "I like tea." in shown
    assert main(["memory", "forget", "Zanzibar4471", "--yes", *common]) == 0
    assert "No messages match" in capsys.readouterr().out
    # One exchange by its id, as `history --ids` shows it.
    assert main(["history", "--ids", "--home", str(home)]) == 0
    tea = next(line for line in capsys.readouterr().out.splitlines() if "I like tea." in line)
    assert main(["memory", "forget", "--id", tea.split()[0].lstrip("#"), "--yes", *common]) == 0
    assert "Forgot 2 messages" in capsys.readouterr().out
    assert main(["memory", "forget", "--id", "999", "--yes", *common]) == 0
    assert "No message with id 999" in capsys.readouterr().out
    assert main(["memory", "forget", *common]) == 1
    assert_one_line_error(capsys.readouterr().err, "name what to forget")
    assert sorted(p.stem for p in (home / "memory").glob("*.safetensors")) == ["night-0003"]


def test_second_running_instance_gets_a_clear_error(home, tiny_gguf):
    from dreamchat.lock import InstanceLock
    from dreamchat.paths import Paths

    with InstanceLock(Paths.for_home(str(home))):
        result = run_cli(["send", "hello", "--model", str(tiny_gguf)], home)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "another dreamchat")


def test_a_damaged_snapshot_is_one_warning_line_and_rebuild_sleeps_again_on_the_day_it_lost(home, tiny_gguf,
                                                                                          tiny_weights):
    model = ["--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    for text in ("My cat is called Pickle.", "My sister lives in Lyon."):
        assert run_cli(["send", text, *model], home).returncode == 0
        assert run_cli(["sleep", *model], home).returncode == 0
    (home / "memory" / "night-0002.safetensors").write_bytes(b"\x00garbage" * 10)

    result = run_cli(["send", "What is my cat called?", *model], home)
    assert result.returncode == 0
    warning, = result.stderr.strip().splitlines()
    assert warning.startswith("dreamchat: warning: memory snapshot night-0002")
    assert "using night-0001" in warning and "lacks the 1 later day" in warning
    shown = run_cli(["memory"], home).stdout
    assert "DAMAGED" in shown and "The current snapshot is damaged: night-0001 is in use" in shown
    result = run_cli(["memory", "rebuild", *model], home)
    assert result.returncode == 0 and result.stdout.startswith(
        "Memory repaired. Slept again on 1 day that a damaged memory snapshot had lost (2 messages")
    assert result.stdout.strip().endswith("Snapshot night-0003.")
    result = run_cli(["send", "And my sister?", *model], home)
    assert result.returncode == 0 and result.stderr == ""  # the repaired memory loads as usual


def test_a_memory_from_another_tower_is_refused_in_one_line_then_rebuilt(home, tiny_gguf, tiny_weights,
                                                                        other_weights, capsys):
    old = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(tiny_weights)]
    new = ["--home", str(home), "--model", str(tiny_gguf), "--weights", str(other_weights)]
    assert main(["send", "My cat is called Pickle.", *old]) == 0
    assert main(["sleep", *old]) == 0
    capsys.readouterr()
    assert main(["send", "hello", *new]) == 1
    assert_one_line_error(capsys.readouterr().err, "another memory tower", "dreamchat memory rebuild")
    assert main(["doctor", *new]) == 1
    assert "FAIL memory snapshot" in capsys.readouterr().out
    assert main(["memory", "rebuild", *new]) == 0
    assert "Memory rebuilt with this tower" in capsys.readouterr().out
    assert main(["doctor", *new]) == 0
    assert "loads with this tower" in capsys.readouterr().out
    assert main(["send", "What is my cat called?", *new]) == 0
    db = sqlite3.connect(home / "dreamchat.db")
    assert db.execute("select count(*) from messages").fetchone()[0] == 4  # nothing lost
