"""Text that both front ends show: memory status, message lists, settings (Markdown-friendly plain
text, so the TUI renders it and the plain loop prints it as is)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dreamchat.events import MemoryStatus, Recollection, ReplyDone
from dreamchat.tui.night import local_naive

SHOWN_SETTINGS = ("sampling.temperature", "sampling.top_p", "sampling.top_k", "sampling.min_p",
                  "sampling.repeat_penalty", "sampling.seed", "sampling.max_tokens", "sleep.passes",
                  "tui.theme", "tui.memory_sources")


def when(moment: datetime | str | None) -> str:
    """'2026-11-24 02:13' (minutes are enough for people), or 'never'."""
    if moment is None:
        return "never"
    return local_naive(moment).strftime("%Y-%m-%d %H:%M")


def size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def finish_note(done: ReplyDone) -> str | None:
    """What the TUI and the plain loop say under a reply that did not end by itself."""
    if done.finish_reason == "length":
        return "The reply hit max_tokens and was cut; raise it with /set max_tokens N."
    if done.finish_reason == "loop":
        return "The reply kept repeating itself and was stopped; /retry draws another."
    return None


def memory_markdown(status: MemoryStatus) -> str:
    """/memory: nights, last sleep, snapshots (the current one marked), last report."""
    lines = [f"**Memory:** {status.nights} night{'s' if status.nights != 1 else ''} slept, "
             f"last sleep {when(status.last_sleep)}."]
    if status.tower is None:
        lines.append("")
        lines.append("No memory tower is trained for this model: replies use the model alone.")
    if status.snapshots:
        lines += ["", "| snapshot | night | created | tokens | passes | size |",
                  "|---|---|---|---|---|---|"]
        for snap in status.snapshots:
            current = " (current)" if snap.is_current else ""
            if snap.problem:
                lines.append(f"| `{snap.id}`{current} | damaged: {snap.problem} | {when(snap.created)} | "
                             f"| | {size(snap.size_bytes)} |")
                continue
            lines.append(f"| `{snap.id}`{current} | {snap.night} | {when(snap.created)} | "
                         f"{snap.tokens:,} | {snap.passes} | {size(snap.size_bytes)} |")
        lines += ["", status.damage_note() or "Go back to one with `/rollback ID`."]
    else:
        lines += ["", "No snapshots yet: memory is empty until the first sleep."]
    if status.last_report is not None:
        lines += ["", f"Last sleep: {status.last_report.summary()}"]
    return "\n".join(lines)


def one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def recollection_lines(recalled: Sequence[Recollection]) -> list[str]:
    """Under a reply: 'from memory: “Pickle”: you, 2026-11-27 21:03: “my cat is called [Pickle]”'."""
    return [f"from memory: {r.describe(when(r.source_time) if r.source_time else '')}" for r in recalled]


def message_line(message: Any, width: int = 100) -> str:
    """'2026-11-24 21:03  you  what is the capital of …' for history and search lists."""
    who = "you" if message.role == "user" else "dreamchat" if message.role == "assistant" else message.role
    return f"{when(message.created)}  {who:<9}  {one_line(message.text, width)}"


def messages_text(messages: Sequence[Any], empty: str) -> str:
    return "\n".join(message_line(m) for m in messages) if messages else empty


FORGET_SHOWN = 12  # messages listed when asking to forget them; the rest are counted


def forget_question(plan: Any, width: int = 100) -> str:
    """Before forgetting: the messages that match (the first few, each cut to `width` characters of
    text) and what forgetting them does."""
    lines = [message_line(m, width) for m in plan.messages[:FORGET_SHOWN]]
    if len(plan.messages) > FORGET_SHOWN:
        lines.append(f"… and {len(plan.messages) - FORGET_SHOWN} more")
    return "\n".join([*lines, "", plan.consequences()])


def settings_text(config: Any) -> str:
    """/set with no arguments: the settings people change most, with their values."""
    lines = ["Settings (change one with /set KEY VALUE; /set KEY explains it):"]
    for key in SHOWN_SETTINGS:
        value = config.get(key)
        lines.append(f"  {key} = {'not set' if value is None else value}")
    return "\n".join(lines)


def setting_text(config: Any, key: str) -> str:
    """/set KEY: its value and what it does (ConfigError for an unknown key)."""
    from dreamchat.config import setting_help

    value = config.get(key)
    return f"{key} = {'not set' if value is None else value}\n{setting_help(key)}"
