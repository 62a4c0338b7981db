"""The slash commands: one table that builds the parser, `/help`, completion, key bindings and the
command palette, for the TUI and the `--plain` loop alike.

Each front end implements one method per command, named by `Command.handler` (`cmd_sleep(n)`,
`cmd_search(text)` ...), taking the parsed arguments in table order. A test checks that both front
ends implement every handler, so a command added here cannot be forgotten in one of them.

    parse("/sleep 4")      -> Invocation(COMMANDS_BY_NAME["sleep"], (4,))
    parse("/slep")         -> CommandError("unknown command /slep; did you mean /sleep? ...")
    complete("/se")        -> [search, set]
    help_markdown()        -> the /help page (commands, keys, input tips)
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from dreamchat.errors import DreamchatError


class CommandError(DreamchatError):
    """A slash command that is unknown or has bad arguments (shown inline, never a crash)."""


@dataclass(frozen=True)
class Arg:
    """One argument of a command, as shown in its usage line."""

    name: str  # shown in usage: N, ID, TEXT ...
    kind: type = str  # int arguments must be whole numbers >= 1
    optional: bool = False
    rest: bool = False  # takes the rest of the line, spaces included (text, paths)
    choices: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        shown = "|".join(self.choices) if self.choices else self.name
        return f"[{shown}]" if self.optional else shown

    def convert(self, word: str, command: "Command") -> Any:
        if self.choices and word.lower() not in self.choices:
            raise CommandError(f"/{command.name}: {self.name} must be one of "
                               f"{', '.join(self.choices)}, not '{word}'; usage: {command.usage}")
        if self.kind is int:
            if not word.isdigit() or int(word) < 1:
                raise CommandError(f"/{command.name}: {self.name} must be a whole number of at least "
                                   f"1, not '{word}'; usage: {command.usage}")
            return int(word)
        return word.lower() if self.choices else word


@dataclass(frozen=True)
class Command:
    """One slash command. `key` is its default key binding in the TUI (its binding id is `name`)."""

    name: str
    args: tuple[Arg, ...]
    help: str
    handler: str  # method name on each front end: cmd_<name>
    label: str  # short title for the footer and the command palette
    key: str | None = None  # None: typed or picked from the palette only
    needs_model: bool = True  # False: works before the model has loaded (or if it failed)

    @property
    def usage(self) -> str:
        return " ".join([f"/{self.name}", *(a.usage for a in self.args)])

    @property
    def needs_input(self) -> bool:
        """Whether the command cannot run without an argument (the palette then pre-fills it)."""
        return any(not a.optional for a in self.args)


COMMANDS: tuple[Command, ...] = (
    Command("help", (), "Show the commands, keys and input tips.", "cmd_help", "Help", "f1",
            needs_model=False),
    Command("retry", (), "Write a new reply to your last message; the old reply is replaced once "
            "the new one is done (Esc keeps it).", "cmd_retry", "Retry", "ctrl+r"),
    Command("undo", (), "Take back your last message and its reply (deleted for good); your message "
            "returns to the input, to edit and send again.", "cmd_undo", "Undo"),
    Command("sleep", (Arg("N", int, optional=True),),
            "Consolidate today's conversation into long-term memory now, with N passes "
            "(default: sleep.passes), then clear the context.", "cmd_sleep", "Sleep", "f5"),
    Command("memory", (), "Show nights slept, memory snapshots and the last sleep report.",
            "cmd_memory", "Memory", "f2"),
    Command("rollback", (Arg("ID"),), "Go back to an earlier memory snapshot (ids in /memory).",
            "cmd_rollback", "Roll back memory"),
    Command("forget", (Arg("TEXT", optional=True, rest=True),),
            "Forget every message that matches TEXT: from the journal, the memory and its snapshots "
            "(after a confirmation). /forget alone erases all long-term memory.", "cmd_forget", "Forget"),
    Command("history", (Arg("N", int, optional=True),),
            "Show the last N messages of the journal (default 50).", "cmd_history", "History", "f3"),
    Command("search", (Arg("TEXT", rest=True),), "Full-text search of every message in the journal.",
            "cmd_search", "Search", "f4"),
    Command("export", (Arg("FORMAT", choices=("md", "json")), Arg("PATH", optional=True, rest=True)),
            "Export the journal as Markdown or JSON to PATH (default: dreamchat-export.FORMAT here).",
            "cmd_export", "Export"),
    Command("backup", (Arg("PATH", optional=True, rest=True),),
            "Write the journal, the memory and config.toml to one private file at PATH (default: "
            "dreamchat-backup-DATE.tar.gz here); `dreamchat restore` reads it back.", "cmd_backup", "Back up"),
    Command("system", (Arg("TEXT", rest=True),),
            "Set the system prompt (saved; takes effect from the next day, after a sleep).",
            "cmd_system", "System prompt"),
    Command("model", (Arg("PATH", rest=True),), "Switch to another GGUF chat model.", "cmd_model",
            "Switch model"),
    Command("set", (Arg("KEY", optional=True), Arg("VALUE", optional=True, rest=True)),
            "Change a setting, e.g. /set temperature 0.2 (saved). /set alone lists them; "
            "/set KEY explains one.", "cmd_set", "Settings", needs_model=False),
    Command("quit", (), "Leave dreamchat (the day is kept; it is slept on later).", "cmd_quit",
            "Quit", "ctrl+q", needs_model=False),
)

COMMANDS_BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}

# Keys that are not slash commands; their binding ids can be remapped in [tui.bindings] too.
OTHER_KEYS: tuple[tuple[str, str, str], ...] = (
    # (binding id, default key, what it does)
    ("cancel", "escape", "Cancel the reply being written (nothing of it is saved) or the sleep"),
    ("command_palette", "ctrl+p", "Command palette: every command, searchable"),
)

# Keys of the prompt and of a focused message, shown in /help (fixed, not remappable).
INPUT_TIPS: tuple[tuple[str, str], ...] = (
    ("Enter", "Send the message (or run the /command)"),
    ("Shift+Enter, Ctrl+J", "New line (Ctrl+J works in every terminal)"),
    ("↑ / ↓", "Earlier / later prompts (on the first / last line of the input)"),
    ("Tab", "Complete a /command"),
    ("Shift+Tab", "Focus the last message; then ↑/↓ move, c copies it, Esc goes back"),
    ("//text", "Send a message that starts with a slash"),
)

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Invocation:
    command: Command
    args: tuple[Any, ...]


def is_command(text: str) -> bool:
    """A line is a command when it starts with one slash (`//` escapes a literal slash)."""
    text = text.lstrip()
    return text.startswith("/") and not text.startswith("//")


def unescape(text: str) -> str:
    """`//etc/hosts is...` -> `/etc/hosts is...` (the message a user meant to send)."""
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


def parse(line: str) -> Invocation:
    """Parse one slash command line; CommandError (one line, with the usage) on any problem."""
    body = line.strip()
    if not body.startswith("/"):
        raise CommandError(f"'{body}' is not a command; commands start with /, try /help")
    name, rest = (_SPACE.split(body[1:], maxsplit=1) + [""])[:2]
    command = COMMANDS_BY_NAME.get(name.lower())
    if command is None:
        close = difflib.get_close_matches(name.lower(), COMMANDS_BY_NAME, n=1)
        hint = f"did you mean /{close[0]}? " if close else ""
        raise CommandError(f"unknown command /{name}; {hint}type /help for the list")
    return Invocation(command, _parse_args(command, rest.strip()))


def _parse_args(command: Command, rest: str) -> tuple[Any, ...]:
    values: list[Any] = []
    for arg in command.args:
        if not rest:
            if not arg.optional:
                raise CommandError(f"/{command.name} needs {arg.name}; usage: {command.usage}")
            values.append(None)
            continue
        if arg.rest:
            word, rest = rest, ""
        else:
            word, rest = (_SPACE.split(rest, maxsplit=1) + [""])[:2]
        values.append(arg.convert(word, command))
    if rest:
        raise CommandError(f"/{command.name}: unexpected '{rest}'; usage: {command.usage}")
    return tuple(values)


def complete(text: str) -> list[Command]:
    """The commands a partly typed `/na` could become (none once an argument is being typed)."""
    text = text.lstrip()
    if not is_command(text) or _SPACE.search(text):
        return []
    prefix = text[1:].lower()
    return [c for c in COMMANDS if c.name.startswith(prefix)]


def completion(text: str) -> str | None:
    """What Tab turns `text` into: the whole command (plus a space when it takes arguments) for a
    single match, the longest common prefix for several, None when there is nothing to add."""
    matches = complete(text)
    if not matches:
        return None
    if len(matches) == 1:
        command = matches[0]
        return f"/{command.name}" + (" " if command.args else "")
    common = _common_prefix([c.name for c in matches])
    return f"/{common}" if len(common) > len(text.strip()) - 1 else None


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _key_label(key: str) -> str:
    """'ctrl+q' -> 'Ctrl+Q', 'f5' -> 'F5', 'escape' -> 'Esc' (for help pages)."""
    named = {"escape": "Esc", "enter": "Enter", "tab": "Tab"}
    return "+".join(named.get(p, p.upper() if len(p) <= 3 else p.capitalize()) for p in key.split("+"))


def help_markdown(keys: dict[str, str] | None = None) -> str:
    """The /help page. `keys` maps binding ids to the keys in use (after config overrides)."""
    keys = keys or {}

    def key_of(binding_id: str, default: str | None) -> str:
        key = keys.get(binding_id, default)
        return _key_label(key.split(",")[0]) if key else ""

    lines = ["## Commands", ""]
    for c in COMMANDS:
        key = key_of(c.name, c.key)
        lines.append(f"- `{c.usage}`{f' **{key}**' if key else ''} — {c.help}")
    lines += ["", "## Keys", ""]
    for binding_id, default, what in OTHER_KEYS:
        lines.append(f"- **{key_of(binding_id, default)}** — {what}")
    for key, what in INPUT_TIPS:
        lines.append(f"- **{key}** — {what}")
    lines += ["", "Keys can be changed in config.toml under `[tui.bindings]`, by binding id "
              "(the command name, `cancel`, `copy`), e.g. `sleep = \"ctrl+s\"`."]
    return "\n".join(lines)


def help_text() -> str:
    """The /help page for the plain loop (no keys, no tables)."""
    width = max(len(c.usage) for c in COMMANDS)
    lines = ["Commands:"]
    lines += [f"  {c.usage.ljust(width)}  {c.help}" for c in COMMANDS]
    lines += ["", "End a line with \\ to continue the message on the next line; start a message "
              "with // to send a literal slash. Ctrl+C cancels a reply, Ctrl+D quits."]
    return "\n".join(lines)


class SlashCommandProvider(Provider):
    """Command palette (Ctrl+P) entries for every slash command, built from the same table.

    Picking a command that needs an argument puts `/name ` in the prompt; the others run at once.
    The app provides `run_palette_command(command)`.
    """

    async def discover(self) -> Hits:
        for command in COMMANDS:
            yield DiscoveryHit(command.label, partial(self.app.run_palette_command, command),
                               help=f"{command.usage} — {command.help}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            text = f"{command.label} /{command.name}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.app.run_palette_command, command),
                          help=f"{command.usage} — {command.help}")
