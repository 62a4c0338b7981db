"""The slash command table: parsing, errors, completion, /help, and that both front ends and the
command palette are built from it."""

from __future__ import annotations

import dataclasses

import pytest

from dreamchat.tui import commands
from dreamchat.tui.app import DreamchatApp
from dreamchat.tui.commands import COMMANDS, CommandError, parse
from dreamchat.tui.plain import PlainSession


@pytest.mark.parametrize("line, name, args", [
    ("/sleep", "sleep", (None,)),
    ("/sleep 4", "sleep", (4,)),
    ("  /SLEEP   3  ", "sleep", (3,)),
    ("/search cats and dogs", "search", ("cats and dogs",)),
    ("/export md", "export", ("md", None)),
    ("/export JSON /tmp/my notes.json", "export", ("json", "/tmp/my notes.json")),
    ("/set temperature 0.2", "set", ("temperature", "0.2")),
    ("/set system_prompt Be brief, please.", "set", ("system_prompt", "Be brief, please.")),
    ("/set", "set", (None, None)),
    ("/rollback night-0003", "rollback", ("night-0003",)),
    ("/model /models/x y.gguf", "model", ("/models/x y.gguf",)),
    ("/quit", "quit", ()),
])
def test_parse_good_lines(line, name, args):
    invocation = parse(line)
    assert invocation.command.name == name
    assert invocation.args == args


@pytest.mark.parametrize("line, message", [
    ("/slep", "did you mean /sleep"),
    ("/frobnicate", "unknown command /frobnicate"),
    ("/sleep two", "must be a whole number"),
    ("/sleep 0", "must be a whole number of at least 1"),
    ("/sleep 2 3", "unexpected '3'"),
    ("/export pdf", "must be one of md, json"),
    ("/rollback", "needs ID"),
    ("/search", "needs TEXT"),
    ("/quit now", "unexpected 'now'"),
])
def test_bad_lines_are_one_line_errors_with_usage(line, message):
    with pytest.raises(CommandError) as err:
        parse(line)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_slash_escape_and_detection():
    assert commands.is_command("/help")
    assert not commands.is_command("//etc/hosts is a file")
    assert commands.unescape("//etc/hosts is a file") == "/etc/hosts is a file"
    assert not commands.is_command("hello /help")


def test_completion():
    assert [c.name for c in commands.complete("/s")] == ["sleep", "search", "system", "set"]
    assert commands.completion("/sl") == "/sleep "  # takes arguments: a space follows
    assert commands.completion("/qu") == "/quit"
    assert commands.completion("/se") is None  # search / set: "se" is already the common prefix
    assert commands.completion("/sy") == "/system "
    assert commands.complete("/sleep 3") == []  # an argument is being typed
    assert commands.completion("/zzz") is None


def test_help_lists_every_command_and_the_keys_in_use():
    page = commands.help_markdown({"sleep": "ctrl+s"})
    for command in COMMANDS:
        assert f"`{command.usage}`" in page
    assert "Ctrl+S" in page and "Ctrl+J" in page and "F2" in page
    plain = commands.help_text()
    assert all(command.usage in plain for command in COMMANDS)


@pytest.mark.parametrize("front_end", [DreamchatApp, PlainSession])
def test_every_front_end_implements_every_command(front_end):
    missing = [c.handler for c in COMMANDS if not callable(getattr(front_end, c.handler, None))]
    assert missing == []


def test_bindings_come_from_the_table():
    ids = {b.id for b in DreamchatApp.BINDINGS}
    assert {c.name for c in COMMANDS if c.key} <= ids
    assert "cancel" in ids


def test_memory_output_marks_a_damaged_snapshot():
    from datetime import datetime, timezone

    from dreamchat.events import MemoryStatus, SnapshotInfo
    from dreamchat.tui.formatting import memory_markdown

    made = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
    status = MemoryStatus(nights=2, last_sleep=made, snapshots=[
        SnapshotInfo("night-0001", made, 1_200_000, 2, 900, 1, False),
        SnapshotInfo("night-0002", made, 1000, 0, 0, 0, True, problem="bad header: truncated"),
    ])
    rows = {line.split("`")[1]: line for line in memory_markdown(status).splitlines() if line.startswith("| `")}
    assert "damaged: bad header: truncated" in rows["night-0002"] and "(current)" in rows["night-0002"]
    assert "damaged" not in rows["night-0001"] and "| 900 | 2 |" in rows["night-0001"]
    assert "The current snapshot is damaged and no older one is intact" in memory_markdown(status)
    status = dataclasses.replace(status, in_use="night-0001")
    assert "night-0001 is in use, and the next sleep also sleeps again on the days it lacks" in memory_markdown(status)
