"""Snapshot tests (pytest-textual-snapshot) of the main screen, the sleep modal and /help.

They use the fake assistant: fixed reply text with a code block, a fixed speed, no clock text.
Update them after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs before committing.
"""

from __future__ import annotations

from dreamchat.config import Config
from dreamchat.tui.app import create_app

from tui_fakes import FakeAssistant, wait_until

SIZE = (100, 32)


def _app(fake: FakeAssistant):
    return create_app(lambda: fake, Config())


async def _ready(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.ready)
    pilot.app.prompt.cursor_blink = False  # a blinking cursor would make the pictures flaky


async def _conversation(pilot) -> None:
    app = pilot.app
    await _ready(pilot)
    await pilot.press(*"Show me a tiny Python function", "enter")
    await wait_until(pilot, lambda: app.busy is None and len(app.chat.messages()) == 2)


def test_main_screen(snap_compare):
    assert snap_compare(_app(FakeAssistant()), terminal_size=SIZE, run_before=_conversation)


def test_sleep_modal(snap_compare):
    fake = FakeAssistant(pause_sleep_at=3)  # holds on "chunk 1 of 2, pass 2 of 2"
    app = _app(fake)

    async def sleeping(pilot) -> None:
        await _conversation(pilot)
        await pilot.press("f5")
        await wait_until(pilot, lambda: "pass 2 of 2" in str(app.screen.query_one("#sleep-detail").render()))

    assert snap_compare(app, terminal_size=SIZE, run_before=sleeping)


def test_help(snap_compare):
    app = _app(FakeAssistant())

    async def help_open(pilot) -> None:
        await _ready(pilot)
        await pilot.press("f1")

    assert snap_compare(app, terminal_size=SIZE, run_before=help_open)


def test_a_reply_with_what_the_memory_supplied(snap_compare):
    from dreamchat.events import Recollection

    # no source time: the line would show it in the machine's time zone
    fake = FakeAssistant(reply="Your dog's name is Biscuit, and Lisbonia.", recalled=(
        Recollection("Biscuit", "user", None, "…sister Maya just moved to Lisbon, and my dog is called [Biscuit]."),
        Recollection("Lisbonia")))
    assert snap_compare(_app(fake), terminal_size=SIZE, run_before=_conversation)
