import os
import re
import stat
import tomllib

import pytest

from dreamchat.config import (
    Config,
    SamplingSettings,
    default_config_toml,
    load_config,
    save_config,
    setting_help,
    setting_keys,
)
from dreamchat.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_gives_defaults(tmp_path):
    config = load_config(tmp_path / "nope.toml")
    assert config == Config()
    assert config.sampling.temperature == 0.7
    assert config.sampling.seed is None
    assert config.model.gpu_layers == -1
    assert config.sleep.passes == 2
    assert config.sleep.on_morning == "ask"
    assert config.tui.bindings == {}
    assert config.system_prompt == "You are a helpful assistant."


def test_values_are_read_and_ints_accepted_for_floats(tmp_path):
    path = write(tmp_path, """
system_prompt = "Be brief."
[sampling]
temperature = 0
seed = 7
[sleep]
passes = 4
night_start = "23:30"
[tui.bindings]
quit = "ctrl+q"
""")
    config = load_config(path)
    assert config.system_prompt == "Be brief."
    assert config.sampling.temperature == 0.0 and isinstance(config.sampling.temperature, float)
    assert config.sampling.seed == 7
    assert config.sleep.passes == 4
    assert config.sleep.night_start == "23:30"
    assert config.tui.bindings == {"quit": "ctrl+q"}
    assert config.sampling.top_p == 0.9  # untouched keys keep their defaults
    assert load_config(write(tmp_path, '[model]\npath = ""\n')).model.path is None  # "" = not set


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "[sampling]\ntemperature = 0.5\ntop_p = = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "line 3" in msg and "\n" not in msg


def test_unknown_key_suggests_close_match_and_lists_valid_keys(tmp_path):
    path = write(tmp_path, "[sampling]\ntemprature = 0.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "sampling.temprature" in msg
    assert "did you mean 'temperature'" in msg
    assert "top_p" in msg and "max_tokens" in msg


def test_unknown_section_and_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'sampler'.*did you mean 'sampling'"):
        load_config(write(tmp_path, "[sampler]\ntemperature = 0.5\n"))
    with pytest.raises(ConfigError, match="unknown setting 'system_promt'.*system_prompt"):
        load_config(write(tmp_path, 'system_promt = "x"\n'))


@pytest.mark.parametrize("text, key, fragment", [
    ("[sampling]\ntemperature = 7.5", "sampling.temperature", "from 0.0 to 2.0"),
    ("[sampling]\ntemperature = \"hot\"", "sampling.temperature", "is not a number"),
    ("[sampling]\ntop_k = 2.5", "sampling.top_k", "is not a whole number"),
    ("[sampling]\nmax_tokens = true", "sampling.max_tokens", "is not a whole number"),
    ("[sampling]\nseed = -1", "sampling.seed", "or not set"),
    ("[sleep]\npasses = 0", "sleep.passes", "from 1 to 16"),
    ("[sleep]\non_morning = \"sometimes\"", "sleep.on_morning", "ask, auto, never"),
    ("[sleep]\nnight_start = \"25:00\"", "sleep.night_start", "HH:MM"),
    ("[model]\nn_ctx = 10", "model.n_ctx", "from 256"),
    ("[model]\ngpu_layers = -2", "model.gpu_layers", "from -1"),
    ("[tui.bindings]\nquit = 3", "tui.bindings", "pairs"),
    ("[tui.bindings]\nquit = \"\"", "tui.bindings", "pairs"),
    ("sampling = 3", "sampling", "must be a section"),
])
def test_bad_values_name_key_value_and_range(tmp_path, text, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text + "\n"))
    msg = str(err.value)
    assert key in msg and fragment in msg and "\n" not in msg


def test_with_setting_parses_and_validates():
    config = Config()
    hot = config.with_setting("sampling.temperature", "1.2")
    assert hot.sampling.temperature == 1.2
    assert config.sampling.temperature == 0.7  # frozen: the original is unchanged
    assert config.with_setting("passes", "3").sleep.passes == 3  # a unique bare name works
    assert config.with_setting("sampling.seed", "42").sampling.seed == 42
    assert config.with_setting("sampling.seed", "42").with_setting("seed", "random").sampling.seed is None
    assert config.with_setting("system_prompt", '"Talk like a pirate."').system_prompt == "Talk like a pirate."
    assert config.with_setting("sleep.on_morning", "never").sleep.on_morning == "never"
    assert config.with_setting("tui.bindings.quit", "ctrl+x").tui.bindings == {"quit": "ctrl+x"}
    assert config.with_setting("tui.bindings.quit", "ctrl+x").with_setting("tui.bindings.quit", "") == config
    assert config.with_setting("model.path", "/m/x.gguf").get("model.path") == "/m/x.gguf"


@pytest.mark.parametrize("key, value, fragment", [
    ("sampling.temperature", "hot", "needs a number"),
    ("sampling.temperature", "9", "out of range"),
    ("sampling.top_k", "1.5", "needs a whole number"),
    ("sleep.on_morning", "maybe", "ask, auto, never"),
    ("temprature", "0.1", "did you mean 'sampling.temperature'"),
    ("tui.bindings", "x", "tui.bindings.NAME VALUE"),
])
def test_with_setting_rejects(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config().with_setting(key, value)


def test_save_and_load_round_trip_private(tmp_path):
    config = (Config().with_setting("system_prompt", 'Say "hi" \\ then\ttab\nnewline \x7f é')
              .with_setting("sampling.temperature", "0.25").with_setting("seed", "3")
              .with_setting("tui.bindings.send", "ctrl+j").with_setting("tui.bindings.odd key", "f2")
              .with_setting("model.path", "/tmp/my model.gguf"))
    path = tmp_path / "config.toml"
    save_config(config, path)
    assert load_config(path) == config
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp file left behind


def test_save_creates_the_folder_and_writes_through_a_symlink(tmp_path):
    save_config(Config(), tmp_path / "new" / "config.toml")
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700
    real = tmp_path / "dotfiles.toml"
    real.write_text("")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    save_config(Config().with_setting("passes", "3"), link)
    assert link.is_symlink() and load_config(real).sleep.passes == 3


def test_saved_defaults_stay_commented_out(tmp_path):
    path = tmp_path / "config.toml"
    save_config(Config().with_setting("sleep.passes", "5"), path)
    text = path.read_text()
    assert "\npasses = 5\n" in text
    assert "\n# temperature = 0.7\n" in text
    assert tomllib.loads(text) == {"sampling": {}, "model": {}, "sleep": {"passes": 5},
                                  "tui": {"bindings": {}}}


def test_default_template_documents_every_setting_and_loads_to_defaults(tmp_path):
    text = default_config_toml()
    assert load_config(write(tmp_path, text)) == Config()
    for key in setting_keys():
        assert f"{key.split('.')[-1]} = " in text or key == "tui.bindings", key
    # Uncommenting every "# key = value" line still gives the defaults (examples aside).
    active = "\n".join(line[2:] if re.match(r"^# [a-z_]+ = ", line) else line
                       for line in text.splitlines())
    config = load_config(write(tmp_path, active))
    assert config.sampling == SamplingSettings(seed=42)
    assert config.model.path == "/path/to/model.gguf"
    assert config.sleep == Config().sleep


def test_setting_help_mentions_allowed_values():
    assert "0.0 to 2.0" in setting_help("sampling.temperature")
    assert "ask, auto, never" in setting_help("on_morning")
