"""`dreamchat --plain`: the read-eval loop with the same slash commands, on the real Assistant
with the tiny GGUF, fed from a pipe."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timedelta, timezone

import pytest

from dreamchat.assistant import Assistant
from dreamchat.config import Config
from dreamchat.tui.plain import run_plain

from tui_fakes import FakeAssistant


def tiny_config(**sleep) -> Config:
    config = Config()
    return dataclasses.replace(
        config,
        sampling=dataclasses.replace(config.sampling, temperature=0.0, max_tokens=8, seed=1),
        model=dataclasses.replace(config.model, n_ctx=512, threads=2),
        sleep=dataclasses.replace(config.sleep, **sleep),
    )


@pytest.fixture
def plain(tmp_path, tiny_gguf):
    """Run the loop on piped lines; returns (stdout, stderr) and the home it used."""
    home = tmp_path / "home"

    def run(*lines: str, config: Config | None = None) -> tuple[str, str]:
        config = config or tiny_config()
        out, err = io.StringIO(), io.StringIO()
        code = run_plain(lambda: Assistant.open(home=str(home), model=str(tiny_gguf), config=config),
                         config, stdin=io.StringIO("".join(f"{line}\n" for line in lines)),
                         stdout=out, stderr=err, interactive=False)
        assert code == 0
        return out.getvalue(), err.getvalue()

    run.home = home
    return run


def _history(home) -> list:
    with Assistant.open_journal_only(str(home)) as assistant:
        return assistant.history()


def test_a_pipe_gets_only_the_reply_on_stdout(plain):
    out, err = plain("Hello there")
    stored = _history(plain.home)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert out == stored[1].text + "\n"
    assert err == ""


def test_slash_commands_and_errors(plain, tmp_path):
    target = tmp_path / "journal.json"
    out, err = plain("Hello", "/memory", "/set", "/set temperature 0.4", "/set temperature 7",
                     "/search hello", f"/export json {target}", "/history 1", "/slep", "/sleep x",
                     "/rollback night-0042", "/system Be terse.", "/help")
    assert "nights slept" in out
    assert "sampling.temperature = 0.0" in out and "temperature set to 0.4" in out
    assert "you        Hello" in out  # the search hit, then the last message of the history
    assert target.is_file() and "Hello" in target.read_text()
    assert "System prompt saved" in out and "/rollback ID" in out
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4, err
    assert "did you mean /sleep" in err and "whole number" in err


def test_backup_from_the_loop(plain, tmp_path):
    from dreamchat.backup import read_backup

    out, err = plain("Hello", f"/backup {tmp_path / 'b.tar.gz'}")
    assert "Backed up 2 messages, 0 nights slept and 0 memory snapshots" in out, err
    manifest, members = read_backup(tmp_path / "b.tar.gz")
    assert manifest["messages"] == 2 and "dreamchat.db" in members


def test_multiline_export_to_stdout_sleep_forget_and_quit(plain):
    out, err = plain("first line \\", "second line", "/export md", "/sleep", "/forget", "no",
                     "/forget", "yes", "/quit", "never read")
    stored = _history(plain.home)
    assert stored[0].text == "first line \nsecond line"
    assert "first line" in out  # /export md without a path prints the journal
    assert "Slept on" in out and "Context cleared." in out
    assert "Memory kept." in out and "All long-term memory erased." in out
    assert len(stored) == 2  # "never read" came after /quit


def test_forget_text_asks_then_forgets_those_messages(plain):
    out, err = plain("My PIN is Zanzibar4471.", "I like tea.", "/sleep", "/forget zanzibar4471", "no",
                     "/forget zanzibar4471", "yes", "/forget zanzibar4471")
    assert err.count("you        My PIN is Zanzibar4471.") == 2 and "This cannot be undone." in err
    assert "Nothing was forgotten." in out and "Forgot 2 messages" in out
    assert "No messages match 'zanzibar4471'" in out
    assert [m.text for m in _history(plain.home) if m.role == "user"] == ["I like tea."]


def test_retry_and_undo(plain):
    sampled = tiny_config()
    sampled = dataclasses.replace(sampled, sampling=dataclasses.replace(
        sampled.sampling, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=None))
    out, err = plain("/retry", "Hello", "Tell me more", "/retry", "/retry", config=sampled)
    assert "nothing to retry" in err.splitlines()[0]
    stored = _history(plain.home)
    assert [m.text for m in stored if m.role == "user"] == ["Hello", "Tell me more"]
    # Each reply (the two sent and the two retries) went to stdout; the journal kept the last.
    # (random replies may hold line breaks of their own: compare the end of stdout, count the lines)
    assert out.rstrip("\n").endswith(stored[-1].text) and out.count("\n") >= 4
    out, err = plain("/undo", "/undo", "/undo", "/retry", config=sampled)
    assert "Took back your last message and its reply: Tell me more" in err
    assert "Took back your last message and its reply: Hello" in err
    assert "nothing to take back" in err and "nothing to retry" in err and out == ""
    assert _history(plain.home) == []


def test_forgotten_text_leaves_the_line_history():
    readline = pytest.importorskip("readline")
    from dreamchat.tui.plain import _drop_from_line_history

    readline.clear_history()
    for line in ("My PIN is Zanzibar4471.", "I like tea.", "/forget zanzibar4471", "zanzibar"):
        readline.add_history(line)
    _drop_from_line_history("zanzibar4471")
    assert [readline.get_history_item(i + 1) for i in range(readline.get_current_history_length())] == [
        "I like tea.", "zanzibar"]
    readline.clear_history()


def test_morning_auto_sleep_before_the_loop():
    fake = FakeAssistant()
    fake.add_message("user", "yesterday", created=datetime.now(timezone.utc) - timedelta(days=1))
    fake.add_message("assistant", "ok", created=datetime.now(timezone.utc) - timedelta(days=1))
    out = io.StringIO()
    config = dataclasses.replace(Config(), sleep=dataclasses.replace(Config().sleep, on_morning="auto"))
    run_plain(lambda: fake, config, stdin=io.StringIO(""), stdout=out, stderr=io.StringIO(),
              interactive=False)
    assert fake.sleep_calls == [(None, "night")]
    assert "Slept on" in out.getvalue() and fake.closed


def test_a_person_is_told_what_the_memory_supplied_a_pipe_is_not():
    from dreamchat.events import Recollection
    from dreamchat.tui.formatting import when
    from dreamchat.tui.plain import PlainSession

    said = datetime(2026, 11, 27, 21, 3, tzinfo=timezone.utc)
    fake = FakeAssistant(reply="It's Pickle.", recalled=(Recollection("Pickle", "user", said, "my cat [Pickle]"),))
    for interactive in (True, False):
        fake.config = Config()
        out, err = io.StringIO(), io.StringIO()
        PlainSession(fake, stdin=io.StringIO(""), stdout=out, stderr=err, interactive=interactive).reply("Cat?")
        assert out.getvalue() == "It's Pickle.\n"
        told = [line for line in err.getvalue().splitlines() if "from memory" in line]
        assert told == (["[from memory: “Pickle”: you, " + when(said) + ": “my cat [Pickle]”]"]
                        if interactive else [])
        fake.config = Config().with_setting("tui.memory_sources", "false")     # /set tui.memory_sources false
        err = io.StringIO()
        PlainSession(fake, stdin=io.StringIO(""), stdout=io.StringIO(), stderr=err, interactive=True).reply("Cat?")
        assert "from memory" not in err.getvalue()


def test_a_reply_stopped_in_a_loop_or_cut_at_max_tokens_says_so():
    from dreamchat.tui.plain import PlainSession

    for reason, note in (("loop", "[The reply kept repeating itself and was stopped; /retry draws another.]"),
                         ("length", "[The reply hit max_tokens and was cut; raise it with /set max_tokens N.]"),
                         ("stop", None)):
        err = io.StringIO()
        PlainSession(FakeAssistant(finish_reason=reason), stdin=io.StringIO(""), stdout=io.StringIO(), stderr=err,
                     interactive=True).reply("Sing!")
        assert ([line for line in err.getvalue().splitlines() if "reply" in line.lower()] == [note]) if note else \
            "max_tokens" not in err.getvalue() and "repeating" not in err.getvalue()
