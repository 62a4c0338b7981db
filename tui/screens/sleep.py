"""The sleep modal: watch a consolidation happen, cancel it, read its report.

The app's sleep worker drives it: `show_progress` for every SleepProgress, then exactly one of
`show_report`, `show_cancelled`, `show_failed`, `show_nothing`. Esc (or the button) while running
asks the app to cancel; once finished, the same key closes the modal. The memory rebuild after a
tower upgrade (`job="rebuild"`) and forgetting some messages (`job="forget"`) use the same modal,
driven by `show_steps` (one step per day slept again).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, ProgressBar

from dreamchat.events import ForgetReport, SleepProgress, SleepReport


@dataclass(frozen=True)
class Job:
    """What the modal says for one kind of job."""

    running: str
    cancelled: str
    cancelled_detail: str
    failed: str
    failed_detail: str  # after the error message


JOBS = {
    "sleep": Job("Sleeping…", "Sleep cancelled", "Memory is unchanged; today's conversation is still here.",
                 "Sleep failed", "Memory is unchanged."),
    "rebuild": Job("Rebuilding memory…", "Rebuild cancelled", "The memory is as it was.",
                   "Rebuild failed", "Memory is unchanged."),
    "forget": Job("Forgetting…", "Forgetting cancelled", "The journal and the memory are as they were.",
                  "Forgetting failed", "Nothing you keep was lost; run /forget again to finish."),
}


def progress_steps(p: SleepProgress) -> tuple[int, int]:
    """(done, total) steps of a whole sleep: one per chunk read, one per pass over each chunk."""
    total = p.chunks * (p.passes + 1)
    if p.phase == "reading":
        return p.chunk, total
    return p.chunks + (p.chunk - 1) * p.passes + p.pass_, total


def progress_text(p: SleepProgress) -> str:
    speed = f" · {p.tokens_per_s:,.0f} tok/s" if p.tokens_per_s > 0 else ""
    if p.phase == "reading":
        return f"Reading the day: chunk {p.chunk} of {p.chunks}{speed}"
    return f"Consolidating: chunk {p.chunk} of {p.chunks}, pass {p.pass_} of {p.passes}{speed}"


class SleepScreen(ModalScreen[SleepReport | ForgetReport | None]):
    BINDINGS = [Binding("escape", "cancel_or_close", "Cancel", id="sleep_cancel")]

    class CancelRequested(Message):
        """The user wants the running sleep stopped (memory stays as it was)."""

    def __init__(self, passes: int | None, *, reason: str = "", job: str = "sleep") -> None:
        super().__init__()
        self.passes = passes
        self.reason = reason
        self.job = JOBS[job]
        self.finished = False
        self.report: SleepReport | ForgetReport | None = None

    def compose(self):
        with Vertical(id="sleep-dialog", classes="dialog"):
            yield Label(self.job.running, id="sleep-title", classes="dialog-title")
            if self.reason:
                yield Label(self.reason, id="sleep-reason")
            yield ProgressBar(total=None, show_eta=False, id="sleep-progress")
            yield Label("Starting…", id="sleep-detail")
            yield Button("Cancel", id="sleep-button", variant="error")

    def show_progress(self, progress: SleepProgress) -> None:
        self.show_steps(*progress_steps(progress), progress_text(progress))

    def show_steps(self, done: int, total: int, text: str) -> None:
        if self.finished:
            return
        self.query_one(ProgressBar).update(total=total, progress=done)
        self.query_one("#sleep-detail", Label).update(text)

    def _finish(self, title: str, detail: str, *, ok: bool) -> None:
        self.finished = True
        self.query_one("#sleep-title", Label).update(title)
        self.query_one("#sleep-detail", Label).update(detail)
        bar = self.query_one(ProgressBar)
        if ok:
            bar.update(total=1, progress=1)
        else:
            bar.display = False
        button = self.query_one(Button)
        button.label = "Close"
        button.variant = "primary"
        button.focus()

    def show_report(self, report: SleepReport | ForgetReport) -> None:
        self.report = report
        if isinstance(report, ForgetReport):
            title = "Forgotten"
        else:
            title = "Memory rebuilt" if report.kind in ("rebuild", "repair") else f"Night {report.night} slept"
        self._finish(title, report.summary(), ok=True)

    def show_nothing(self) -> None:
        self._finish("Nothing to sleep on", "Today's context is empty; memory is unchanged.", ok=True)

    def show_cancelled(self) -> None:
        self._finish(self.job.cancelled, self.job.cancelled_detail, ok=False)

    def show_failed(self, message: str) -> None:
        self._finish(self.job.failed, f"{message}\n{self.job.failed_detail}", ok=False)

    def action_cancel_or_close(self) -> None:
        if self.finished:
            self.dismiss(self.report)
            return
        self.query_one("#sleep-detail", Label).update("Cancelling… (finishing the current step)")
        self.query_one(Button).disabled = True
        self.post_message(self.CancelRequested())

    @on(Button.Pressed, "#sleep-button")
    def _button(self) -> None:
        self.action_cancel_or_close()
