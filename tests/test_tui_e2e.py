"""End to end: the TUI with the real default model (SmolLM2-135M-Instruct Q4_1), headless."""

from __future__ import annotations

import dataclasses

import pytest

from dreamchat.assistant import Assistant
from dreamchat.config import Config
from dreamchat.tui.app import create_app

from tui_fakes import run_async, wait_until

pytestmark = pytest.mark.e2e


@run_async
async def test_a_real_conversation_streams_and_is_stored(tmp_path, real_model_path):
    config = Config()
    config = dataclasses.replace(config, sampling=dataclasses.replace(
        config.sampling, temperature=0.0, max_tokens=48, seed=1))
    app = create_app(lambda: Assistant.open(home=str(tmp_path / "home"), model=str(real_model_path),
                                            config=config), config)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.ready, timeout=300, what="the default model")
        assert "SmolLM2" in app.status_info.model_name
        app.prompt.set_text("What is the capital of France?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.busy is None, timeout=300, what="the reply")
        user, reply = app.chat.messages()
        assert reply.text.strip() and app.last_reply.tokens > 0
        stored = app.host.call(lambda a: a.history())
        assert [m.text for m in stored] == [user.text, reply.text]
        assert app.status_info.context_used > 0
