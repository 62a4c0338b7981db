"""Small widget helpers: line breaks kept while streaming, the sleep progress arithmetic."""

from __future__ import annotations

from dreamchat.events import SleepProgress
from dreamchat.tui.screens.sleep import progress_steps, progress_text
from dreamchat.tui.widgets.chat import LineBreaks

ANSWER = "Steps:\n1. boil\n2. pour\n\n```python\nx = 1\ny = 2\n```\nDone.\nBye"


def test_single_newlines_become_hard_breaks_outside_fences():
    out = LineBreaks().feed(ANSWER)
    assert out == "Steps:  \n1. boil  \n2. pour  \n\n```python\nx = 1\ny = 2\n```\nDone.  \nBye"


def test_streamed_pieces_give_the_same_markdown_as_the_whole_text():
    for size in (1, 2, 3, 7):
        breaks = LineBreaks()
        pieces = [ANSWER[i:i + size] for i in range(0, len(ANSWER), size)]
        assert "".join(breaks.feed(p) for p in pieces) == LineBreaks().feed(ANSWER)


def test_sleep_progress_counts_reading_and_every_pass():
    reading = SleepProgress("reading", 2, 3, 0, 4, 100, 300, 50.0)
    assert progress_steps(reading) == (2, 15)  # 3 chunks read + 3 x 4 passes
    last = SleepProgress("consolidating", 3, 3, 4, 4, 300, 300, 50.0)
    assert progress_steps(last) == (15, 15)
    assert progress_text(last) == "Consolidating: chunk 3 of 3, pass 4 of 4 · 50 tok/s"
