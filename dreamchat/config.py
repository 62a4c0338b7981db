"""dreamchat's settings: config.toml <-> frozen dataclasses, validated at the boundary.

Every setting is declared once, with `setting(default, help, ...)`: the help text is the comment on
the default, the line above it in config.toml, and the explanation `/set` shows; the allowed range
or choices are checked when the file is read and when `/set KEY VALUE` changes a value at run time.

    load_config(path)             missing file -> defaults; any problem -> ConfigError (file, key, fix)
    config.with_setting(k, v)     `/set sampling.temperature 0.3` -> a new Config
    save_config(config, path)     writes TOML atomically, 0600; defaults stay commented out
    default_config_toml()         the commented template for first run and `dreamchat doctor`
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from dreamchat.errors import ConfigError
from dreamchat.paths import make_private_dir
from dreamchat.storage.atomic import atomic_write_text

_UNSET_WORDS = {"none", "default", "random", "unset", ""}  # `/set sampling.seed random` -> None
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")  # 24-hour "HH:MM"


def setting(default: Any, help: str, *, range: tuple | None = None, choices: tuple | None = None,
            time: bool = False, example: Any = None) -> Any:
    """A dataclass field with its documentation and its allowed values.

    range: (low, high) inclusive for numbers; choices: allowed strings; time: "HH:MM";
    example: shown in the config template for settings whose default is "not set".
    """
    meta = {"help": help, "range": range, "choices": choices, "time": time, "example": example}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = setting(0.7, "Randomness of replies; 0 always picks the most likely token.",
                                 range=(0.0, 2.0))
    top_p: float = setting(0.9, "Nucleus sampling: keep the most likely tokens that make up this much "
                           "probability; 1 turns it off.", range=(0.0, 1.0))
    top_k: int = setting(40, "Keep only this many most likely tokens; 0 turns it off.",
                         range=(0, 100_000))
    min_p: float = setting(0.05, "Drop tokens less likely than this fraction of the most likely one; "
                           "0 turns it off.", range=(0.0, 1.0))
    repeat_penalty: float = setting(1.1, "Make recently used tokens less likely; 1 turns it off.",
                                    range=(1.0, 2.0))
    seed: int | None = setting(None, "Random seed for reproducible replies; not set = a new seed "
                               "every run.", range=(0, 2**32 - 1), example=42)
    max_tokens: int = setting(512, "Longest reply, in tokens.", range=(1, 32_768))
    stop_loops: bool = setting(True, "Stop a reply that keeps repeating itself (the same 8 tokens a "
                               "fourth time) instead of letting it run to max_tokens.")


@dataclass(frozen=True)
class ModelSettings:
    path: str | None = setting(None, "GGUF chat model file; not set = the default model "
                               "(SmolLM2-135M-Instruct). --model overrides it.",
                               example="/path/to/model.gguf")
    n_ctx: int = setting(4096, "Context window in tokens: how much of today the model sees at once; "
                         "when it fills up, dreamchat naps.", range=(256, 1_048_576))
    threads: int = setting(0, "CPU threads for the model; 0 = all physical cores.", range=(0, 1024))
    gpu_layers: int = setting(-1, "Model layers to put on the GPU when llama.cpp was built with CUDA; "
                              "-1 = all, 0 = none.", range=(-1, 10_000))


@dataclass(frozen=True)
class SleepSettings:
    passes: int = setting(2, "How many times a sleep re-reads the day (the paper's N); more passes "
                          "remember better and take longer.", range=(1, 16))
    keep_snapshots: int = setting(7, "How many nightly memory snapshots to keep for rollback.",
                                  range=(1, 1000))
    night_start: str = setting("01:00", "Sleep automatically from this time (24-hour HH:MM) ...",
                               time=True)
    night_end: str = setting("06:00", "... until this time, once dreamchat has been idle long enough.",
                             time=True)
    idle_minutes: int = setting(20, "Minutes without a message before the night's sleep starts.",
                                range=(1, 1440))
    on_morning: str = setting("ask", "When the TUI opens with a day that was never slept: ask = offer "
                              "to sleep first, auto = sleep first, never = carry on.",
                              choices=("ask", "auto", "never"))
    nap_keep_tokens: int = setting(512, "When the context fills up, a nap consolidates the oldest part; "
                                   "this many most recent tokens stay in context.",
                                   range=(0, 1_048_576))


@dataclass(frozen=True)
class TuiSettings:
    theme: str = setting("textual-dark", "Textual theme name (textual-dark, textual-light, nord, "
                         "gruvbox, ...).")
    bindings: dict[str, str] = setting({}, "Key overrides: action = \"key\" pairs, e.g. "
                                       "quit = \"ctrl+q\"; empty = the built-in keys.")
    memory_sources: bool = setting(True, "Under a reply, show the words the memory supplied and the "
                                   "message where they were said (the memory can mix facts up).")


@dataclass(frozen=True)
class Config:
    system_prompt: str = setting("You are a helpful assistant.",
                                 "The instructions the assistant reads before every conversation.")
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    sleep: SleepSettings = field(default_factory=SleepSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)

    def get(self, key: str) -> Any:
        """The value of a dotted setting ("sampling.temperature", or a unique bare name)."""
        section, name = _resolve_key(key)
        return getattr(getattr(self, section) if section else self, name)

    def with_setting(self, key: str, value: str) -> "Config":
        """A copy with one setting changed from its text form, as typed after `/set`.

        `tui.bindings.ACTION KEY` sets one key binding (an empty KEY drops the override). Raises
        ConfigError naming the key and the allowed values.
        """
        parts = key.strip().split(".")
        if len(parts) == 3 and parts[:2] == ["tui", "bindings"]:
            bindings = {**self.tui.bindings, parts[2]: value.strip()}
            if not value.strip():
                del bindings[parts[2]]
            return dataclasses.replace(self, tui=dataclasses.replace(self.tui, bindings=bindings))
        section, name = _resolve_key(key)
        owner = getattr(self, section) if section else self
        spec = _fields(type(owner))[name]
        dotted = f"{section}.{name}" if section else name
        parsed = _check(dotted, _parse_text(dotted, value, spec.hint), spec)
        changed = dataclasses.replace(owner, **{name: parsed})
        return dataclasses.replace(self, **{section: changed}) if section else changed


SECTIONS = {"sampling": SamplingSettings, "model": ModelSettings, "sleep": SleepSettings,
            "tui": TuiSettings}


# ----------------------------------------------------------------------------------------------
# field introspection and validation


@dataclass(frozen=True)
class _Spec:
    name: str
    hint: Any  # the resolved type annotation
    meta: typing.Mapping[str, Any]


def _fields(cls: type) -> dict[str, _Spec]:
    hints = typing.get_type_hints(cls)
    return {f.name: _Spec(f.name, hints[f.name], f.metadata)
            for f in dataclasses.fields(cls) if f.name not in SECTIONS}


def setting_keys() -> list[str]:
    """Every dotted setting name, in file order (for `/set` completion and error messages)."""
    keys = list(_fields(Config))
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{name}" for name in _fields(cls)]
    return keys


def setting_help(key: str) -> str:
    """The help text of a setting, with its allowed values."""
    section, name = _resolve_key(key)
    spec = _fields(SECTIONS[section] if section else Config)[name]
    return f"{spec.meta['help']} {_allowed(spec)}".strip()


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _resolve_key(key: str) -> tuple[str | None, str]:
    """'sampling.temperature' -> ('sampling', 'temperature'); a bare unique name works too."""
    key = key.strip()
    keys = setting_keys()
    if key in keys:
        return tuple(key.split(".")) if "." in key else (None, key)  # type: ignore[return-value]
    matches = [k for k in keys if k.split(".")[-1] == key]
    if len(matches) == 1:
        return _resolve_key(matches[0])
    raise ConfigError(f"unknown setting '{key}'; {_suggest(key, keys)}valid settings: {', '.join(keys)}")


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if type(None) in args:
        (base,) = [a for a in args if a is not type(None)]
        return base, True
    return hint, False


def _allowed(spec: _Spec) -> str:
    meta = spec.meta
    base, optional = _unwrap_optional(spec.hint)
    unset = " (or not set)" if optional else ""
    if meta["range"]:
        lo, hi = meta["range"]
        kind = "a whole number" if base is int else "a number"
        return f"Allowed: {kind} from {lo} to {hi}{unset}."
    if meta["choices"]:
        return f"Allowed: {', '.join(meta['choices'])}."
    if meta["time"]:
        return "Allowed: a 24-hour time HH:MM."
    return ""


def _type_name(base: Any) -> str:
    return {float: "a number", int: "a whole number", str: "text", bool: "true or false"}.get(
        base, "a table of \"name\" = \"text\" pairs")


def _check(key: str, value: Any, spec: _Spec) -> Any:
    """Validate one value read from TOML (or parsed from /set); return it in its final type."""
    base, optional = _unwrap_optional(spec.hint)
    meta = spec.meta

    def bad(problem: str) -> ConfigError:
        return ConfigError(f"{key} = {value!r} {problem}; {_allowed(spec) or 'use ' + _type_name(base)}")

    if optional and (value is None or value == ""):
        return None  # TOML has no null: an empty string means "not set"
    if value is None:
        raise bad("must be set")
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise bad("is not a finite number")
    elif base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("is not a whole number")
    elif base is bool:
        if not isinstance(value, bool):
            raise bad("is not true or false")
    elif base is str:
        if not isinstance(value, str):
            raise bad("is not text (put it in double quotes)")
        if meta["choices"] and value not in meta["choices"]:
            raise bad("is not one of the choices")
        if meta["time"] and not _TIME.match(value):
            raise bad("is not a time")
    else:  # dict[str, str]
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise bad("is not a table of \"name\" = \"text\" pairs")
        value = dict(value)
    if meta["range"]:
        lo, hi = meta["range"]
        if not lo <= value <= hi:
            raise bad("is out of range")
    return value


def _parse_text(key: str, text: str, hint: Any) -> Any:
    """Turn the text after `/set KEY` into a value of the setting's type (validated later)."""
    base, optional = _unwrap_optional(hint)
    text = text.strip()
    if optional and text.lower() in _UNSET_WORDS:
        return None
    try:
        if base is float:
            return float(text)
        if base is int:
            return int(text)
    except ValueError:
        raise ConfigError(f"{key} needs {_type_name(base)}, got '{text}'") from None
    if base is bool:
        words = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
        if text.lower() not in words:
            raise ConfigError(f"{key} needs true or false, got '{text}'")
        return words[text.lower()]
    if base is str:
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1]  # /set system_prompt "Be brief." -> Be brief.
        return text
    raise ConfigError(f"{key} is a table: set one entry with `{key}.NAME VALUE`, or edit config.toml")


def _build(cls: type, table: dict, where: str) -> Any:
    """Build a settings dataclass from a TOML table, rejecting unknown keys."""
    specs = _fields(cls)
    values = {}
    for name, value in table.items():
        dotted = f"{where}.{name}" if where else name
        if name not in specs:
            raise ConfigError(f"unknown setting '{dotted}'; {_suggest(name, list(specs))}"
                              f"valid keys{' in [' + where + ']' if where else ''}: {', '.join(specs)}")
        values[name] = _check(dotted, value, specs[name])
    return cls(**values)


def config_from_dict(data: dict) -> Config:
    """Build and validate a Config from parsed TOML (a dict of dicts). Raises ConfigError."""
    valid = [*_fields(Config), *SECTIONS]
    for name in data:
        if name not in valid:
            raise ConfigError(f"unknown setting '{name}'; {_suggest(name, valid)}"
                              f"valid keys and sections: {', '.join(valid)}")
    config = _build(Config, {k: v for k, v in data.items() if k not in SECTIONS}, "")
    sections = {}
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"'{name}' must be a section [{name}], not a value")
        sections[name] = _build(cls, table, name)
    return dataclasses.replace(config, **sections)


# ----------------------------------------------------------------------------------------------
# reading and writing config.toml


def load_config(path: str | Path) -> Config:
    """Read config.toml; a missing file gives the defaults. Raises ConfigError naming file and fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}; fix its permissions or encoding (UTF-8)") from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # tomllib's message ends with "(at line L, column C)"; put the place first.
        msg = str(err)
        where = re.search(r"\(at (line \d+, column \d+|end of document)\)$", msg)
        if where:
            msg = f"{where.group(1)}: {msg[:where.start()].strip()}"
        raise ConfigError(f"{path}: {msg}; fix that line (TOML syntax) or delete the file") from None
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _toml_string(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr(0.7) == "0.7", repr(1.0) == "1.0": valid TOML floats
    return _toml_string(str(value))


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text.strip(), width=98)]


def _render_fields(obj: Any, lines: list[str]) -> None:
    """Append `# help` and `key = value` lines; values equal to the default stay commented out."""
    defaults = type(obj)()
    for name, spec in _fields(type(obj)).items():
        value, default = getattr(obj, name), getattr(defaults, name)
        if isinstance(value, dict):
            continue  # rendered as its own [section.name] table by the caller
        lines += _comment(f"{spec.meta['help']} {_allowed(spec)}")
        shown = value if value is not None else (spec.meta["example"] if default is None else default)
        prefix = "# " if value == default else ""
        lines.append(f"{prefix}{name} = {_toml_value(shown)}")
        lines.append("")


def render_config_toml(config: Config) -> str:
    """config.toml text for `config`: every setting documented, only changed values active."""
    lines = ["# dreamchat configuration. A line '# key = value' shows the default (or an example,",
             "# where the default is 'not set'); remove the '#' and change the value to override it.",
             ""]
    _render_fields(config, lines)
    for section in SECTIONS:
        obj = getattr(config, section)
        lines += [f"[{section}]", ""]
        _render_fields(obj, lines)
        for name, spec in _fields(type(obj)).items():
            value = getattr(obj, name)
            if isinstance(value, dict):
                lines += [f"[{section}.{name}]", *_comment(spec.meta["help"])]
                lines += [f"{_toml_key(k)} = {_toml_string(v)}" for k, v in sorted(value.items())]
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def default_config_toml() -> str:
    """The commented template written on first run and shown by `dreamchat doctor`."""
    return render_config_toml(Config())


def save_config(config: Config, path: str | Path) -> None:
    """Write config.toml atomically with mode 0600 (the system prompt may be personal)."""
    path = Path(path)
    try:
        make_private_dir(path.parent)
        atomic_write_text(path, render_config_toml(config), mode=0o600)
    except OSError as err:
        raise ConfigError(f"cannot write {path}: {err.strerror or err}; check the folder's "
                          "permissions and free space") from err
