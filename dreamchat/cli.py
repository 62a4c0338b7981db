"""The `dreamchat` command line.

`dreamchat` alone opens the TUI; the sub-commands are for scripts and quick use (the contract in
docs/design.md). Every user-facing failure is a `DreamchatError` and is printed as one line on
stderr; stdout carries only what was asked for (the reply of `send`, a report, an export).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from dreamchat import __version__
from dreamchat.errors import DreamchatError

log = logging.getLogger("dreamchat")


# Commands whose arguments (and heavy imports: training, research) live in their own modules.
MODULE_COMMANDS = {"train": "dreamchat.models.train", "eval": "dreamchat.models.evaluate",
                   "research": "dreamchat.models.research_cli"}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the arguments of train/eval/research are only loaded when `argv` names them."""
    wanted = next((a for a in (argv or []) if a in MODULE_COMMANDS), None)
    parser = argparse.ArgumentParser(
        prog="dreamchat",
        description="A local chat assistant that remembers across days by sleeping.",
    )
    parser.add_argument("--version", action="version", version=f"dreamchat {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help="keep this user's config, journal and memory under DIR (or set DREAMCHAT_HOME)")
    common.add_argument("--model", metavar="PATH", default=argparse.SUPPRESS,
                        help="a local GGUF chat model (default: SmolLM2-135M-Instruct, fetched once)")
    common.add_argument("--weights", metavar="PATH", default=argparse.SUPPRESS,
                        help="memory-tower slow weights for this model (default: the shipped ones)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log what happens on stderr")
    # The same options work before and after the sub-command.
    for action in common._actions:
        if action.dest != "help":
            parser._add_action(action)
    parser.add_argument("--plain", action="store_true", help="a plain read-eval loop instead of the TUI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    send = sub.add_parser("send", parents=[common], help="send one message and print the reply")
    send.add_argument("text", nargs="*", help="the message ('-' reads it from stdin)")
    send.add_argument("--retry", action="store_true",
                      help="instead, a new reply to today's last message (it replaces the old one)")

    sub.add_parser("undo", parents=[common],
                   help="take back today's last message and its reply (printed, then deleted)")

    backup = sub.add_parser("backup", parents=[common],
                            help="write the journal, the memory and config.toml to one file")
    backup.add_argument("path", nargs="?", metavar="PATH",
                        help="where (default: dreamchat-backup-DATE.tar.gz here); works while dreamchat runs")
    restore = sub.add_parser("restore", parents=[common],
                             help="put a backup into a home that holds nothing yet (a new machine, --home DIR)")
    restore.add_argument("archive", metavar="ARCHIVE", help="a file `dreamchat backup` wrote")

    sleep = sub.add_parser("sleep", parents=[common], help="consolidate today's conversation into memory")
    sleep.add_argument("--passes", type=int, default=None, metavar="N", help="sleep passes (default: config)")
    sleep.add_argument("--json", action="store_true", help="print a machine-readable report")

    history = sub.add_parser("history", parents=[common], help="show, search or export the conversation")
    history.add_argument("--search", metavar="TEXT", help="full-text search of the journal")
    history.add_argument("--export", choices=["md", "json"], help="export the whole journal")
    history.add_argument("--output", "-o", metavar="PATH", help="write the export to PATH")
    history.add_argument("--limit", type=int, default=None, metavar="N", help="only the last N messages")
    history.add_argument("--ids", action="store_true", help="show each message's id (for memory forget --id)")

    sub.add_parser("doctor", parents=[common], help="check the installation, model, journal and memory")

    memory = sub.add_parser("memory", parents=[common], help="nights slept and memory snapshots")
    memory_sub = memory.add_subparsers(dest="memory_command", metavar="ACTION")
    rollback = memory_sub.add_parser("rollback", parents=[common], help="return to an earlier snapshot")
    rollback.add_argument("snapshot", metavar="ID")
    reset = memory_sub.add_parser("reset", parents=[common], help="start again from an empty memory")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    memory_sub.add_parser("rebuild", parents=[common],
                          help="sleep again on every slept day with the current memory tower (after an upgrade)")
    forget = memory_sub.add_parser("forget", parents=[common],
                                   help="forget every message that matches TEXT: journal, memory and snapshots")
    forget.add_argument("text", nargs="*", metavar="TEXT", help="words the messages contain (all of them)")
    forget.add_argument("--id", type=int, action="append", default=[], metavar="N", dest="ids",
                        help="forget message N and its exchange (ids: dreamchat history --ids); repeatable")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    train = sub.add_parser("train", parents=[common], help="train the memory tower's slow weights")
    _add_module_arguments(train, "train", wanted)

    evaluate = sub.add_parser("eval", parents=[common], help="benchmarks")
    eval_sub = evaluate.add_subparsers(dest="eval_command", metavar="BENCHMARK")
    eval_memory = eval_sub.add_parser("memory", parents=[common], help="multi-day recall benchmark")
    _add_module_arguments(eval_memory, "eval", wanted)

    research = sub.add_parser("research", parents=[common],
                              help="reproduce the paper's sleep experiments (Rule 110, Depo, arithmetic)")
    _add_module_arguments(research, "research", wanted)
    return parser


def _add_module_arguments(parser: argparse.ArgumentParser, command: str, wanted: str | None) -> None:
    """Import the command's module (torch, training code) only when that command runs."""
    import importlib

    module = MODULE_COMMANDS[command]
    parser.set_defaults(module=module)
    if command != wanted:
        return
    try:
        importlib.import_module(module).add_arguments(parser)
    except ImportError as err:  # pragma: no cover - a broken install
        parser.set_defaults(import_error=str(err))


class _OneLine(logging.Formatter):
    """A warning reads as the errors do: "dreamchat: warning: ..." (--verbose names the module too)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"dreamchat: {record.levelname.lower()}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    home = getattr(args, "home", None)
    model = getattr(args, "model", None)
    verbose = getattr(args, "verbose", False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if verbose else _OneLine())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    try:
        if args.command is None:
            from dreamchat.tui.app import run_tui

            return run_tui(home=home, model=model, weights=getattr(args, "weights", None), plain=args.plain)
        handler = COMMANDS[args.command]
        return handler(args, home, model)
    except DreamchatError as err:
        print(f"dreamchat: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dreamchat: interrupted; nothing half-done was saved", file=sys.stderr)
        return 130


def _open(args, home, model, **kwargs):
    from dreamchat.assistant import Assistant

    return Assistant.open(home=home, model=model, weights=getattr(args, "weights", None),
                          progress=sys.stderr.isatty(), **kwargs)


def cmd_send(args, home, model) -> int:
    from dreamchat.events import NapStarted, ReplyDone, ReplyPiece

    text = " ".join(args.text)
    if args.retry and text:
        raise DreamchatError("send --retry takes no message: it replies again to today's last one")
    if not args.retry and not text:
        raise DreamchatError("send needs a message, e.g. dreamchat send \"Hello\" (or --retry)")
    if text == "-":
        text = sys.stdin.read()
    with _open(args, home, model) as assistant:
        for event in assistant.retry() if args.retry else assistant.send(text):
            if isinstance(event, ReplyPiece):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, NapStarted):
                print(f"(context full: napping on {event.tokens:,} older tokens)", file=sys.stderr)
            elif isinstance(event, ReplyDone):
                sys.stdout.write("\n")
                if sys.stderr.isatty() and assistant.config.tui.memory_sources:  # stdout: the reply alone
                    from dreamchat.tui.formatting import recollection_lines

                    for line in recollection_lines(event.recalled):
                        print(f"({line})", file=sys.stderr)
                if sys.stderr.isatty() and event.finish_reason in _CUT_REPLY:
                    print(_CUT_REPLY[event.finish_reason], file=sys.stderr)
    return 0


_CUT_REPLY = {  # under a reply that did not end by itself, for a person at a terminal
    "length": "(the reply hit max_tokens and was cut; raise sampling.max_tokens in config.toml)",
    "loop": "(the reply kept repeating itself and was stopped; `dreamchat send --retry` draws another)",
}


def cmd_undo(args, home, model) -> int:
    with _open(args, home, model) as assistant:
        message = assistant.take_back()
    print(message.text)  # what was taken back: stdout, to edit and send again
    return 0


def cmd_backup(args, home, model) -> int:
    from dreamchat.backup import backup
    from dreamchat.paths import Paths

    done = backup(Paths.for_home(home), args.path)
    print(f"Backed up {done.describe()} to {done.path} ({done.size_bytes / 1e6:.1f} MB).")
    return 0


def cmd_restore(args, home, model) -> int:
    from dreamchat.backup import restore
    from dreamchat.paths import Paths

    paths = Paths.for_home(home)
    summary, config_note = restore(args.archive, paths)
    print(f"Restored {summary.describe()} (backed up {summary.taken()}) into {paths.home}. {config_note}")
    return 0


def cmd_sleep(args, home, model) -> int:
    with _open(args, home, model) as assistant:
        printer = SleepProgressPrinter(sys.stderr) if sys.stderr.isatty() and not args.json else None
        report = assistant.sleep(args.passes, on_progress=printer)
        if printer:
            printer.close()
        if report is None:
            message = "Nothing to sleep on: no new messages since the last sleep."
            print(json.dumps({"slept": False, "reason": message}) if args.json else message)
            return 0
        if args.json:
            print(json.dumps({"slept": True, **_report_dict(report)}))
        else:
            print(report.summary())
            if not report.snapshot:
                print("(no memory tower for this model: the day was archived, not consolidated)")
    return 0


class SleepProgressPrinter:
    """One self-overwriting status line on a terminal while a sleep runs."""

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, p) -> None:
        step = f"pass {p.pass_}/{p.passes}" if p.phase == "consolidating" else "reading"
        self.stream.write(f"\rsleeping: chunk {p.chunk}/{p.chunks}, {step}, "
                          f"{p.tokens_done:,}/{p.tokens_total:,} tokens, {p.tokens_per_s:,.0f} tok/s   ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _report_dict(report) -> dict:
    return {
        "sleep_id": report.sleep_id, "kind": report.kind, "tokens": report.tokens,
        "messages": report.messages, "passes": report.passes,
        "duration_s": round(report.duration_s, 3), "snapshot": report.snapshot, "night": report.night,
    }


def cmd_history(args, home, model) -> int:
    from dreamchat.assistant import Assistant

    assistant = Assistant.open_journal_only(home)
    try:
        if args.export:
            out = assistant.export(args.export, args.output)
            print(f"wrote {out}" if args.output else out, end="\n" if args.output else "")
            return 0
        messages = assistant.search(args.search) if args.search else assistant.history(args.limit)
        if not messages:
            print("No matching messages." if args.search else "No messages yet.")
        for message in messages:
            stamp = message.created.astimezone().strftime("%Y-%m-%d %H:%M")
            slept = "" if message.sleep_id is None else " (slept)"
            ident = f"#{message.id} " if args.ids else ""
            print(f"{ident}[{stamp}] {message.role}{slept}: {message.text}")
    finally:
        assistant.close()
    return 0


def cmd_memory(args, home, model) -> int:
    from dreamchat.assistant import Assistant

    action = getattr(args, "memory_command", None)
    if action is None:
        assistant = Assistant.open_journal_only(home)
        try:
            print(_format_memory(assistant.memory_status()))
        finally:
            assistant.close()
        return 0
    # Maintenance must work on a memory this tower cannot load (e.g. after an upgrade): open without it.
    with _open(args, home, model, load_memory=False) as assistant:
        if action == "rebuild":
            return _rebuild(assistant)
        if action == "forget":
            return _forget(assistant, " ".join(args.text), args.yes, args.ids)
        if action == "rollback":
            assistant.rollback(args.snapshot)
            print(f"Memory rolled back to {args.snapshot}.")
        elif action == "reset":
            if not args.yes:
                if not sys.stdin.isatty():
                    raise DreamchatError("refusing to reset memory without confirmation; pass --yes")
                answer = input("Forget everything learned in past nights? The journal is kept. [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("Memory kept.")
                    return 0
            assistant.reset_memory()
            print("Memory reset: the next night starts from an empty memory.")
    return 0


def _rebuild(assistant) -> int:
    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rrebuilding memory: day {done}/{total}   ")
        sys.stderr.flush()

    report = assistant.rebuild_memory(on_progress=progress if sys.stderr.isatty() else None)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if report is None:
        print("Nothing to rebuild: the journal has no slept days.")
    elif report.kind == "repair":
        print(f"Memory repaired. {report.summary()} Snapshot {report.snapshot}.")
    else:
        print(f"Memory rebuilt with this tower from the journal's slept days ({report.messages:,} messages, "
              f"{report.tokens:,} tokens) in {report.duration_s:.1f} s: snapshot {report.snapshot}.")
    return 0


def _forget(assistant, query: str, yes: bool, ids: list[int]) -> int:
    from dreamchat.tui.formatting import forget_question

    if bool(query) == bool(ids):
        raise DreamchatError("name what to forget: words the messages contain, or --id N (not both)")
    plan = assistant.plan_forget(query, message_ids=ids)
    if not plan.messages:
        print(f"No messages match “{query}”; nothing to forget." if query else
              f"No message with id {', '.join(map(str, ids))}; see dreamchat history --ids.")
        return 0
    # Asking: the question and what it is about go to stderr; with --yes they are the report.
    print(forget_question(plan), file=sys.stdout if yes else sys.stderr)
    if not yes:
        if not sys.stdin.isatty():
            raise DreamchatError("refusing to forget without confirmation; pass --yes")
        if input("Forget them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing was forgotten.")
            return 0

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rforgetting: sleeping again, day {done}/{total}   ")
        sys.stderr.flush()

    interactive = sys.stderr.isatty() and plan.replay_days > 0
    report = assistant.forget(plan, on_progress=progress if interactive else None)
    if interactive:
        sys.stderr.write("\n")
    print(report.summary())
    return 0


def _format_memory(status) -> str:
    last = status.last_sleep.astimezone().strftime("%Y-%m-%d %H:%M") if status.last_sleep else "never"
    damaged_current = any(s.is_current and s.problem for s in status.snapshots)
    fingerprint = status.fingerprint or ("(damaged, see below)" if damaged_current else "(empty memory)")
    lines = [f"Nights slept: {status.nights}", f"Last sleep: {last}",
             f"Current snapshot fingerprint: {fingerprint}"]
    if status.snapshots:
        lines.append("Snapshots:")
        for s in status.snapshots:
            mark = "*" if s.is_current else " "
            if s.problem:
                lines.append(f" {mark} {s.id}  {s.created.astimezone():%Y-%m-%d %H:%M}  "
                             f"{s.size_bytes / 1e6:.1f} MB  DAMAGED: {s.problem}")
                continue
            lines.append(f" {mark} {s.id}  {s.created.astimezone():%Y-%m-%d %H:%M}  "
                         f"{s.size_bytes / 1e6:.1f} MB  night {s.night}  {s.passes} passes  {s.tokens:,} tokens")
    else:
        lines.append("Snapshots: none yet")
    if status.damage_note():
        lines.append(status.damage_note())
    return "\n".join(lines)


def cmd_doctor(args, home, model) -> int:
    from dreamchat.doctor import run_doctor

    return run_doctor(home=home, model=model, weights=getattr(args, "weights", None))


def cmd_module(args, home, model) -> int:
    """train / eval memory / research run their own module's `run(args)`."""
    import importlib

    if getattr(args, "import_error", None):
        raise DreamchatError(f"this command is unavailable ({args.import_error}); reinstall dreamchat")
    if args.command == "eval" and getattr(args, "eval_command", None) is None:
        raise DreamchatError("name a benchmark: dreamchat eval memory")
    return importlib.import_module(args.module).run(args)


COMMANDS = {
    "send": cmd_send,
    "undo": cmd_undo,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "sleep": cmd_sleep,
    "history": cmd_history,
    "memory": cmd_memory,
    "doctor": cmd_doctor,
    "train": cmd_module,
    "eval": cmd_module,
    "research": cmd_module,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
