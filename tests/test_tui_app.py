"""The TUI driven headless by Textual's pilot, on the real Assistant with the tiny test GGUF.

The tiny model's replies are noise: these tests check the plumbing (what streams, what is stored,
what each command shows), never what the model says. The fake assistant is used only where a slow
sleep is needed (cancel it mid-way).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta, timezone

import pytest

from dreamchat.assistant import Assistant
from dreamchat.config import Config
from dreamchat.errors import ContextFullError
from dreamchat.events import Recollection
from dreamchat.tui.host import StatusInfo
from dreamchat.tui.app import create_app
from dreamchat.tui.formatting import when
from dreamchat.tui.screens.confirm import ConfirmScreen
from dreamchat.tui.screens.help import HelpScreen
from dreamchat.tui.screens.messages import MessageListScreen
from dreamchat.tui.screens.sleep import SleepScreen

from tui_fakes import FakeAssistant, fake_clock, later, run_async, wait_until

SIZE = (110, 36)


def tiny_config(max_tokens: int = 8, **sleep) -> Config:
    config = Config()
    return dataclasses.replace(
        config,
        sampling=dataclasses.replace(config.sampling, temperature=0.0, max_tokens=max_tokens, seed=1),
        model=dataclasses.replace(config.model, n_ctx=512, threads=2),
        sleep=dataclasses.replace(config.sleep, **sleep),
    )


@pytest.fixture
def make_app(tmp_path, tiny_gguf, tiny_weights):
    """create_app on the real Assistant (tiny GGUF + an untrained memory tower) in one home;
    several apps in turn share it."""
    home = tmp_path / "home"

    def make(config: Config | None = None, clock=None):
        config = config or tiny_config()
        return create_app(lambda: Assistant.open(home=str(home), model=str(tiny_gguf),
                                                 weights=str(tiny_weights), config=config),
                          config, clock=clock)

    return make


async def started(app, pilot):
    await wait_until(pilot, lambda: app.ready, what="the model to load")


async def type_and_enter(pilot, text: str) -> None:
    await pilot.press(*text, "enter")


async def send(app, pilot, text: str) -> None:
    await type_and_enter(pilot, text)
    await wait_until(pilot, lambda: app.busy is None and app.chat.messages()
                     and app.chat.messages()[-1].role == "assistant", what="the reply")


def notes(app) -> list[str]:
    return [m.text for m in app.chat.messages() if m.role in ("note", "error")]


def journal(app) -> list:
    return app.host.call(lambda a: a.history())


@run_async
async def test_type_stream_and_store(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        pieces = []
        original = app._piece

        def counting(bubble, text):
            pieces.append(text)
            return original(bubble, text)

        app._piece = counting
        await send(app, pilot, "Hello there")
        user, reply = app.chat.messages()
        assert (user.role, user.text) == ("user", "Hello there")
        stored = journal(app)
        assert [m.role for m in stored] == ["user", "assistant"]
        assert reply.text == stored[1].text == "".join(pieces).strip()
        assert len(pieces) >= 2  # token by token, not one block at the end
        assert app.last_reply is not None and app.last_reply.tokens_per_s > 0
        assert app.status_info.context_used > 0 and app.status_info.has_unslept
        assert app.prompt.text == ""

        await pilot.press("shift+tab")  # focus the last message ...
        assert app.focused is reply
        await pilot.press("c")  # ... and copy it
        assert app.clipboard == reply.text
        await pilot.press("up")
        assert app.focused is user
        await pilot.press("escape")  # back to the prompt
        assert app.focused is app.prompt


def slowed_down(assistant, seconds_per_piece: float = 0.01):
    """Pace the real assistant's replies (and retries) so a fast machine cannot finish one before
    Esc lands."""
    def paced(start):
        def slow(*args):
            replies = start(*args)
            try:
                for event in replies:
                    time.sleep(seconds_per_piece)
                    yield event
            finally:
                replies.close()  # the cancel reaches the real generator
        return slow

    assistant.send = paced(assistant.send)
    assistant.retry = paced(assistant.retry)


@run_async
async def test_escape_cancels_a_reply_and_nothing_is_stored(make_app):
    app = make_app(tiny_config(max_tokens=400))
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.host.call(slowed_down)
        await type_and_enter(pilot, "Tell me a long story")
        await wait_until(pilot, lambda: app.chat.messages()[-1].text, what="the first piece")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.busy is None, what="the cancel")
        assert app.chat.messages() == []  # both bubbles gone
        assert app.prompt.text == "Tell me a long story"  # given back to edit
        assert journal(app) == []
        assert app.last_reply is None


def sampled_config(max_tokens: int = 8) -> Config:
    config = tiny_config(max_tokens=max_tokens)
    return dataclasses.replace(config, sampling=dataclasses.replace(
        config.sampling, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=None))


def shown(app) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in app.chat.messages() if m.role in ("user", "assistant")]


@run_async
async def test_retry_replaces_the_last_reply_and_undo_takes_the_exchange_back(make_app):
    app = make_app(sampled_config())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await type_and_enter(pilot, "/retry")
        await wait_until(pilot, lambda: notes(app) and "nothing to retry" in notes(app)[-1], what="the error")
        await send(app, pilot, "Hello there")
        await send(app, pilot, "Tell me more")
        first = journal(app)[-1].text
        replies = {first}
        for _ in range(3):
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: app.busy is None and app.chat.last_exchange() is not None,
                             what="the retry")
            stored = journal(app)
            # One bubble per stored message: the new reply replaced the old one, on screen too.
            assert shown(app) == [(m.role, m.text) for m in stored]
            assert [m.text for m in stored if m.role == "user"] == ["Hello there", "Tell me more"]
            replies.add(stored[-1].text)
        assert len(replies) > 1, "four draws at temperature 1.5 all gave one reply"

        await type_and_enter(pilot, "/undo")
        await wait_until(pilot, lambda: len(journal(app)) == 2 and len(shown(app)) == 2, what="the undo")
        assert shown(app) == [(m.role, m.text) for m in journal(app)]
        assert app.prompt.text == "Tell me more"  # back in the input, to edit
        assert any("Took back" in n for n in _notifications(app))
        app.prompt.set_text("")
        await type_and_enter(pilot, "/undo")
        await wait_until(pilot, lambda: journal(app) == [] and shown(app) == [], what="the second undo")
        app.prompt.set_text("")
        await type_and_enter(pilot, "/undo")
        await wait_until(pilot, lambda: notes(app) and "nothing to take back" in notes(app)[-1],
                         what="the error")


@run_async
async def test_escape_cancels_a_retry_and_the_old_reply_stays(make_app):
    app = make_app(sampled_config(max_tokens=400))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await send(app, pilot, "Hello there")
        before = shown(app)
        app.host.call(slowed_down)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.chat.messages()[-1].text, what="the first piece")
        old_reply, new_reply = app.chat.messages()[1:]
        assert not old_reply.display and new_reply.display  # the new reply is written in its place
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.busy is None, what="the cancel")
        assert shown(app) == before == [(m.role, m.text) for m in journal(app)]
        assert all(m.display for m in app.chat.messages())
        assert any("earlier reply is kept" in n for n in _notifications(app))


@run_async
async def test_a_greedy_retry_says_why_and_keeps_the_reply(make_app):
    app = make_app()  # temperature 0
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await send(app, pilot, "Hello there")
        before = shown(app)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.busy is None and any(
            "temperature is 0" in n for n in _notifications(app)), what="the refusal")
        assert shown(app) == before and all(m.display for m in app.chat.messages())


def footer(app) -> list[str]:
    """The footer's keys as shown, each only if it fits the screen's width."""
    from textual.widgets._footer import FooterKey

    return [key.description for key in app.query(FooterKey)
            if key.region.width and key.region.right <= app.size.width]


@run_async
async def test_the_footer_fits_80_columns_and_offers_what_can_be_done():
    fake = FakeAssistant(piece_delay=0.05)
    app = create_app(lambda: fake, fake.config)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(app, pilot)
        await pilot.pause()
        idle = ["Quit", "Retry", "Sleep", "Memory", "History", "Search", "Commands"]
        assert footer(app) == idle
        await type_and_enter(pilot, "Tell me a story")
        await wait_until(pilot, lambda: footer(app) == ["Quit", "Sleep", "Memory", "History", "Search", "Cancel", "Commands"],
                         what="Cancel in place of Retry while the reply streams")
        await wait_until(pilot, lambda: app.busy is None, what="the reply")
        await wait_until(pilot, lambda: footer(app) == idle, what="Retry back")


@run_async
async def test_prompt_history_and_multiline_input(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        for line in ("/set", "/memory"):
            await type_and_enter(pilot, line)
        prompt = app.prompt
        await pilot.press(*"draft")
        await pilot.press("up")
        assert prompt.text == "/memory"
        await pilot.press("up")
        assert prompt.text == "/set"
        await pilot.press("down", "down")
        assert prompt.text == "draft"
        prompt.set_text("")
        await pilot.press("a", "ctrl+j", "b")
        assert prompt.text == "a\nb"
        await pilot.press("up")  # on the second line: moves the cursor, keeps the text
        assert prompt.text == "a\nb" and prompt.cursor_location[0] == 0


@run_async
async def test_tab_completes_and_hints_show(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("/", "m", "e")
        hints = app.screen.query_one("#hints")
        assert hints.display and "/memory" in str(hints.render())
        await pilot.press("tab")
        assert app.prompt.text == "/memory"


@run_async
async def test_unknown_commands_and_bad_arguments_are_inline_messages(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        for line in ("/slep", "/sleep two", "/export pdf", "/rollback"):
            await type_and_enter(pilot, line)
        errors = [m.text for m in app.chat.messages() if m.role == "error"]
        assert len(errors) == 4
        assert "did you mean /sleep" in errors[0] and "whole number" in errors[1]
        assert app.is_running


@run_async
async def test_journal_commands(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await send(app, pilot, "Pickle is my cat")

        await type_and_enter(pilot, "/history")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageListScreen), what="/history")
        assert len(app.screen.messages) == 2
        await pilot.press("escape")

        await type_and_enter(pilot, "/search pickle")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageListScreen), what="/search")
        assert [m.text for m in app.screen.messages] == ["Pickle is my cat"]
        await pilot.press("enter")  # pick it: quoted in the prompt
        await wait_until(pilot, lambda: not isinstance(app.screen, MessageListScreen))
        assert app.prompt.text.startswith("> Pickle is my cat")
        app.prompt.set_text("")

        await type_and_enter(pilot, "/search zebra")
        await wait_until(pilot, lambda: any("No messages match" in n for n in notes(app)))

        await send(app, pilot, "Zebras are my favourite animal")
        await send(app, pilot, "I also like tea")
        await type_and_enter(pilot, "/history")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageListScreen), what="/history")
        app.screen.query_one("#messages-list").highlighted = 2   # "Zebras are my favourite animal"
        await pilot.press("f")                                   # forget that one exchange
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "Zebras are my favourite animal" in app.screen.question and "Pickle" not in app.screen.question
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished)
        await pilot.press("escape")
        assert [m.text for m in journal(app) if m.role == "user"] == ["Pickle is my cat", "I also like tea"]
        assert "Zebras are my favourite animal" not in app.prompt.sent

        target = tmp_path / "out.md"
        await type_and_enter(pilot, f"/export md {target}")
        await wait_until(pilot, lambda: any("exported" in n for n in notes(app)))
        assert "Pickle is my cat" in target.read_text()

        archive = tmp_path / "home.tar.gz"
        await type_and_enter(pilot, f"/backup {archive}")
        await wait_until(pilot, lambda: any("Backed up 4 messages" in n for n in notes(app)), what="/backup")
        from dreamchat.backup import read_backup
        manifest, members = read_backup(archive)
        assert manifest["messages"] == 4 and "dreamchat.db" in members


@run_async
async def test_memory_and_settings_commands(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await type_and_enter(pilot, "/memory")
        await wait_until(pilot, lambda: any("nights slept" in n for n in notes(app)))

        await type_and_enter(pilot, "/set")
        assert "sampling.temperature = 0.0" in notes(app)[-1]
        await type_and_enter(pilot, "/set temperature")
        assert "Randomness" in notes(app)[-1]
        await type_and_enter(pilot, "/set temperature 0.3")
        await wait_until(pilot, lambda: "set to" in notes(app)[-1])
        assert app.host.call(lambda a: a.config.sampling.temperature) == 0.3
        await type_and_enter(pilot, "/set temperature 9")
        await wait_until(pilot, lambda: app.chat.messages()[-1].role == "error")

        await type_and_enter(pilot, "/system You answer in one line.")
        await wait_until(pilot, lambda: "System prompt saved" in notes(app)[-1])
        assert app.host.call(lambda a: a.config.system_prompt) == "You answer in one line."

        await type_and_enter(pilot, "/rollback night-9999")
        await wait_until(pilot, lambda: app.chat.messages()[-1].role == "error")

        name = app.status_info.model_name
        await type_and_enter(pilot, f"/model {tmp_path / 'missing.gguf'}")
        await wait_until(pilot, lambda: app.chat.messages()[-1].role == "error")
        await wait_until(pilot, lambda: app.status_info.model_name == name)


@run_async
async def test_forget_asks_first(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await type_and_enter(pilot, "/forget")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # the focused button is "Keep"
        assert not isinstance(app.screen, ConfirmScreen)
        assert "erased" not in " ".join(notes(app))
        await type_and_enter(pilot, "/forget")
        await pilot.press("y")
        await wait_until(pilot, lambda: any("erased" in n for n in notes(app)))


@run_async
async def test_forget_text_shows_what_it_matches_then_forgets_it_everywhere(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await send(app, pilot, "My PIN is Zanzibar4471.")
        await send(app, pilot, "I like tea.")
        await type_and_enter(pilot, "/sleep")
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished)
        await pilot.press("escape")
        await send(app, pilot, "Zanzibar4471 [again] today.")  # brackets: shown as typed, not markup
        await type_and_enter(pilot, "/forget zanzibar4471")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        question = app.screen.question
        assert "My PIN is Zanzibar4471." in question and "Zanzibar4471 [again] today." in question
        assert "sleep again on 1 day without them" in question
        await pilot.press("n")
        assert len(journal(app)) == 6
        await type_and_enter(pilot, "/forget zanzibar4471")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished,
                         what="forgetting")
        report = app.screen.report
        assert report.messages == 4 and report.replay_days == 1 and report.snapshot
        await pilot.press("escape")
        assert [m.text for m in journal(app) if m.role == "user"] == ["I like tea."]
        assert "Zanzibar" not in " ".join(m.text for m in app.chat.messages())  # the view was redrawn
        assert "Forgot 4 messages" in notes(app)[-1]
        assert app.prompt.sent == ["I like tea.", "/sleep"]  # ↑ does not bring it back either
        await type_and_enter(pilot, "/forget nothing-said")
        await wait_until(pilot, lambda: "No messages match" in notes(app)[-1], what="no match")
        assert app.busy is None


@run_async
async def test_help_palette_keys_and_quit(make_app):
    app = make_app(dataclasses.replace(tiny_config(), tui=dataclasses.replace(
        Config().tui, theme="nord", bindings={"memory": "f9"})))
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.theme == "nord"
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert "F9" in app.screen.markdown  # the remapped key is what /help shows
        await pilot.press("escape")
        await pilot.press("f9")  # memory, remapped from F2
        await wait_until(pilot, lambda: any("nights slept" in n for n in notes(app)))
        await pilot.press("f4")  # needs an argument: pre-fills the prompt
        assert app.prompt.text == "/search "
        app.prompt.set_text("")
        await pilot.press("ctrl+p")
        await pilot.press(*"Memory")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: sum("nights slept" in n for n in notes(app)) == 2,
                         what="the palette to run /memory")
        await type_and_enter(pilot, "/quit")
        await wait_until(pilot, lambda: not app.is_running, what="quit")


@run_async
async def test_sleep_shows_progress_and_a_report(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await send(app, pilot, "Remember that my cat is Pickle")
        seen = []
        original = SleepScreen.show_progress
        SleepScreen.show_progress = lambda self, p: (seen.append(p), original(self, p))[1]
        try:
            await type_and_enter(pilot, "/sleep 3")
            await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished)
        finally:
            SleepScreen.show_progress = original
        report = app.screen.report
        assert report is not None and report.passes == 3 and report.snapshot
        assert seen[0].phase == "reading" and seen[-1].phase == "consolidating"
        assert (seen[-1].chunk, seen[-1].pass_) == (seen[-1].chunks, 3)
        await pilot.press("escape")  # close
        assert not isinstance(app.screen, SleepScreen)
        assert report.summary() in app.chat.messages()[-1].text
        assert all(m.has_class("-slept") for m in app.chat.messages()[:2])
        assert app.status_info.nights == 1 and not app.status_info.has_unslept
        await type_and_enter(pilot, "/sleep")  # nothing left to sleep on
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished)
        assert app.screen.report is None
        await pilot.press("escape")
        await type_and_enter(pilot, "/memory")
        await wait_until(pilot, lambda: report.snapshot in notes(app)[-1], what="/memory")
        assert "1 night slept" in notes(app)[-1]
        await type_and_enter(pilot, f"/rollback {report.snapshot}")
        await wait_until(pilot, lambda: "rolled back" in notes(app)[-1], what="/rollback")


def _home_slept_by(tower, home, tiny_gguf) -> None:
    """Two slept days and an unslept one, as an older dreamchat with `tower` would leave them."""
    assistant = Assistant.open(home=str(home), model=str(tiny_gguf), weights=str(tower), config=tiny_config())
    try:
        for text in ("My sister Ana lives in Porto.", "Her dog is called Rex."):
            list(assistant.send(text))
            assistant.sleep(passes=1)
        list(assistant.send("Today is still going."))
    finally:
        assistant.close()


def _upgraded_app(home, tiny_gguf, tower):
    config = tiny_config()
    return create_app(lambda load_memory=True: Assistant.open(
        home=str(home), model=str(tiny_gguf), weights=str(tower), config=config, load_memory=load_memory), config)


def _memory_files(home) -> dict:
    return {p.name: p.read_bytes() for p in sorted((home / "memory").iterdir()) if p.is_file()}


@run_async
async def test_after_a_tower_upgrade_the_app_offers_to_rebuild_the_memory(tmp_path, tiny_gguf, tiny_weights,
                                                                          other_weights):
    home = tmp_path / "home"
    _home_slept_by(tiny_weights, home, tiny_gguf)
    app = _upgraded_app(home, tiny_gguf, other_weights)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the rebuild offer")
        assert "2 slept days in your journal (4 messages)" in app.screen.question
        assert not app.ready and app.rebuild_pending
        app.start_sleep(None)                     # e.g. the night policy: refused until rebuilt
        assert not isinstance(app.screen, SleepScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished,
                         what="the rebuild")
        report = app.screen.report
        assert report.kind == "rebuild" and report.messages == 4
        assert "Memory rebuilt" in str(app.screen.query_one("#sleep-title").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.ready, what="the rebuilt assistant")
        assert not app.rebuild_pending
        assert any(m.text.startswith("Memory rebuilt · Slept again on 4 messages") for m in app.chat.messages())
        assert "Today is still going." in [m.text for m in app.chat.messages()]   # today is back
        assert app.status_info.nights == 2
        await send(app, pilot, "What is my dog called?")
        assert [m.text for m in journal(app)][-2] == "What is my dog called?"
    # the new tower now reads the memory as usual
    again = Assistant.open(home=str(home), model=str(tiny_gguf), weights=str(other_weights), config=tiny_config())
    again.close()


@run_async
async def test_with_every_snapshot_damaged_the_app_offers_to_rebuild_from_the_journal(tmp_path, tiny_gguf,
                                                                                     tiny_weights):
    home = tmp_path / "home"
    _home_slept_by(tiny_weights, home, tiny_gguf)
    for path in (home / "memory").glob("night-*.safetensors"):
        path.write_bytes(b"\x00garbage" * 10)
    app = _upgraded_app(home, tiny_gguf, tiny_weights)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the rebuild offer")
        assert app.screen.question.startswith("Every snapshot of your memory is damaged")
        assert "2 slept days in your journal (4 messages)" in app.screen.question
        assert not app.ready and app.rebuild_pending
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished,
                         what="the rebuild")
        assert app.screen.report.kind == "rebuild" and app.screen.report.messages == 4
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.ready, what="the rebuilt assistant")
        assert "Today is still going." in [m.text for m in app.chat.messages()]
    Assistant.open(home=str(home), model=str(tiny_gguf), weights=str(tiny_weights), config=tiny_config()).close()


@pytest.mark.parametrize("answer", ["n", "y, then cancelled"])
@run_async
async def test_declining_or_cancelling_the_rebuild_leaves_the_memory_as_it_was(answer, tmp_path, tiny_gguf,
                                                                              tiny_weights, other_weights,
                                                                              monkeypatch):
    from dreamchat.assistant import SleepCancelled

    def cancelled(self, on_progress=None, should_stop=None):
        raise SleepCancelled("memory rebuild cancelled: the memory is as it was")

    home = tmp_path / "home"
    _home_slept_by(tiny_weights, home, tiny_gguf)
    before = _memory_files(home)
    app = _upgraded_app(home, tiny_gguf, other_weights)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the rebuild offer")
        if answer == "n":
            await pilot.press("n")
        else:
            monkeypatch.setattr(Assistant, "rebuild_memory", cancelled)
            await pilot.press("y")
            await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished)
            assert "Rebuild cancelled" in str(app.screen.query_one("#sleep-title").render())
            await pilot.press("escape")
        await wait_until(pilot, lambda: any("was not rebuilt" in n for n in notes(app)), what="the refusal")
        assert not app.ready and not app.rebuild_pending
        assert "dreamchat memory rebuild" in notes(app)[-1]
        await type_and_enter(pilot, "hello")      # no assistant to talk to: an error, not a reply
        await wait_until(pilot, lambda: sum("was not rebuilt" in n for n in _notifications(app)) == 2
                         and app.busy is None, what="the failed reply")   # start-up's, then the reply's
        assert app.prompt.text == "hello" and not [m for m in app.chat.messages() if m.role == "user"]
    assert _memory_files(home) == before
    old = Assistant.open(home=str(home), model=str(tiny_gguf), weights=str(tiny_weights), config=tiny_config())
    try:
        assert [m.text for m in old.history()][-2:] == ["Today is still going.", old.history()[-1].text]
        assert old.memory_status().nights == 2
    finally:
        old.close()


@run_async
async def test_sleep_cancel_keeps_memory_untouched():
    fake = FakeAssistant(step_delay=0.05, pause_sleep_at=2)
    fake.add_message("user", "My cat is Pickle.")
    fake.add_message("assistant", "Noted.")
    app = create_app(lambda: fake, fake.config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen))
        detail = app.screen.query_one("#sleep-detail")
        await wait_until(pilot, lambda: "Consolidating: chunk 1 of 2, pass 1 of 2" in str(detail.render()))
        await pilot.press("escape")  # cancel
        fake.release.set()
        await wait_until(pilot, lambda: app.screen.finished, what="the cancel")
        assert "cancelled" in str(app.screen.query_one("#sleep-title").render()).lower()
        assert fake.snapshots == [] and fake.has_unslept()
        await pilot.press("escape")
        assert app.busy is None and not isinstance(app.screen, SleepScreen)


@run_async
async def test_night_auto_sleep_with_a_fake_clock(make_app):
    clock = fake_clock(datetime.now().replace(hour=14, minute=0))
    app = make_app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await send(app, pilot, "Good night")
        later(clock, hours=1)  # 15:00, idle an hour: not the night
        app.night_tick()
        assert not isinstance(app.screen, SleepScreen)
        clock.now = clock.now.replace(hour=2, minute=0) + timedelta(days=1)  # 02:00, idle 11 h
        app.night.touch()  # ... but the user just typed
        later(clock, minutes=19)
        app.night_tick()
        assert not isinstance(app.screen, SleepScreen)
        later(clock, minutes=1)  # 20 idle minutes in the night window
        app.night_tick()
        assert isinstance(app.screen, SleepScreen)
        await wait_until(pilot, lambda: app.screen.finished, what="the night sleep")
        assert app.screen.report.kind == "night"
        assert not app.status_info.has_unslept
        await pilot.press("escape")
        later(clock, minutes=30)
        app.night_tick()  # nothing left to sleep on
        assert not isinstance(app.screen, SleepScreen)


@pytest.mark.parametrize("on_morning", ["ask", "auto", "never"])
@run_async
async def test_morning_prompt_on_start(make_app, on_morning):
    config = tiny_config(on_morning=on_morning)
    yesterday = make_app(config)
    async with yesterday.run_test(size=SIZE) as pilot:
        await started(yesterday, pilot)
        await send(yesterday, pilot, "What a day")
    clock = fake_clock(datetime.now() + timedelta(days=1))
    app = make_app(config, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert [m.text for m in app.chat.messages()][0] == "What a day"  # the day is shown again
        if on_morning == "never":
            await pilot.pause(0.2)
            assert not isinstance(app.screen, (ConfirmScreen, SleepScreen))
            return
        if on_morning == "ask":
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "Good morning" in app.screen.question
            await pilot.press("enter")  # "Sleep now" has the focus
        await wait_until(pilot, lambda: isinstance(app.screen, SleepScreen) and app.screen.finished)
        assert app.screen.report is not None and app.screen.report.kind == "night"


@run_async
async def test_a_model_that_fails_to_load_is_reported_not_fatal(tmp_path):
    config = tiny_config()
    missing = tmp_path / "nope.gguf"
    app = create_app(lambda: Assistant.open(home=str(tmp_path / "h"), model=str(missing),
                                            config=config), config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: any(m.role == "error" for m in app.chat.messages()))
        assert "could not start" in app.chat.messages()[0].text
        await type_and_enter(pilot, "/memory")
        await wait_until(pilot, lambda: len([m for m in app.chat.messages() if m.role == "error"]) == 2)
        await type_and_enter(pilot, "/help")
        assert isinstance(app.screen, HelpScreen)


def _notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


@run_async
async def test_a_failed_reply_goes_through_the_cleanup_path():
    fake = FakeAssistant(fail_with=ContextFullError("this message does not fit; send a shorter one"))
    app = create_app(lambda: fake, fake.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await type_and_enter(pilot, "A very long message")
        await wait_until(pilot, lambda: app.busy is None and not app.chat.messages())
        assert app.prompt.text == "A very long message" and fake.messages == []
        assert any("send a shorter one" in n for n in _notifications(app))


@run_async
async def test_what_the_memory_supplied_is_shown_under_the_reply():
    said = datetime(2026, 11, 27, 21, 3, tzinfo=timezone.utc)
    fake = FakeAssistant(reply="Your cat is called Pickle.", recalled=(
        Recollection("Pickle", "user", said, "My cat is called [Pickle]."), Recollection("Hilac")))
    app = create_app(lambda: fake, fake.config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await send(app, pilot, "What is my cat called?")
        reply = app.chat.messages()[-1]
        lines = [str(label.render()) for label in reply.query(".message-recall")]
        assert lines == [f"from memory: “Pickle”: you, {when(said)}: “My cat is called [Pickle].”",
                         "from memory: “Hilac”: in nothing slept so far (the memory may have garbled it)"]
        assert reply.text == "Your cat is called Pickle."   # copying the reply copies the reply alone
        app.config = app.config.with_setting("tui.memory_sources", "false")   # what /set does
        await send(app, pilot, "And my cat?")
        assert not app.chat.messages()[-1].query(".message-recall")
    again = create_app(lambda: fake, fake.config)          # a restart: the day comes back with its lines
    async with again.run_test(size=SIZE) as pilot:
        await started(again, pilot)
        # Mounted messages compose their lines a moment later: wait for those too.
        await wait_until(pilot, lambda: len(again.chat.messages()) == 4 and all(
            len(m.query(".message-recall")) == 2 for m in again.chat.messages() if m.role == "assistant"),
            what="the restored day with its from-memory lines")


@run_async
async def test_naps_are_announced_and_the_context_gauge_warns():
    fake = FakeAssistant(nap_tokens=900)
    app = create_app(lambda: fake, fake.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await send(app, pilot, "Hi")
        assert any("napping on the oldest 900 tokens" in n for n in _notifications(app))
        gauge = app.screen.query_one("#status-context")
        assert not gauge.has_class("-warn")
        app._show_status(StatusInfo("m", 3600, 4096, 0, None, True))  # 88 % full
        assert gauge.has_class("-warn") and "88%" in str(gauge.render())
