import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dreamchat import paths as paths_mod
from dreamchat.errors import BusyError, DreamchatError
from dreamchat.lock import InstanceLock, read_lock_pid
from dreamchat.paths import Paths, models_dir, resolve_config_file, resolve_home


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("DREAMCHAT_HOME", raising=False)
    monkeypatch.delenv("DREAMCHAT_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_home_precedence(clean_env, monkeypatch, tmp_path):
    default = resolve_home(None)
    assert default == tmp_path / "xdg-data" / "dreamchat"
    assert resolve_config_file(None) == tmp_path / "xdg-config" / "dreamchat" / "config.toml"
    monkeypatch.setenv("DREAMCHAT_HOME", str(tmp_path / "env-home"))
    assert resolve_home(None) == tmp_path / "env-home"
    assert resolve_config_file(None) == tmp_path / "env-home" / "config.toml"
    assert resolve_home(tmp_path / "cli-home") == tmp_path / "cli-home"
    assert resolve_config_file(str(tmp_path / "cli-home")) == tmp_path / "cli-home" / "config.toml"


def test_paths_layout_and_shared_models_dir(clean_env, monkeypatch, tmp_path):
    p = Paths.for_home(tmp_path / "h")
    assert p.journal_file == tmp_path / "h" / "dreamchat.db"
    assert p.memory_dir == tmp_path / "h" / "memory"
    assert p.config_file == tmp_path / "h" / "config.toml"
    assert p.lock_file.parent == p.home and p.runs_dir.parent == p.home
    assert models_dir() == tmp_path / "xdg-cache" / "dreamchat" / "models"
    assert Paths.for_home(tmp_path / "other").models_dir == p.models_dir  # shared by all homes
    monkeypatch.setenv("DREAMCHAT_MODELS_DIR", str(tmp_path / "gguf"))
    assert models_dir() == tmp_path / "gguf"


def test_ensure_creates_private_folders(clean_env, tmp_path):
    p = Paths.for_home(tmp_path / "a" / "home").ensure()
    assert mode(p.home) == 0o700 and mode(p.memory_dir) == 0o700
    assert mode(tmp_path / "a") == 0o700  # parents created on the way are private too
    assert list(p.home.iterdir()) == [p.memory_dir]  # the write test left nothing behind
    Paths.for_home(None).ensure()  # platform default: config folder is created as well
    assert mode(tmp_path / "xdg-config" / "dreamchat") == 0o700


def test_ensure_unwritable_home_says_what_to_do(clean_env, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DreamchatError, match="cannot write to home folder .*pass --home"):
        Paths.for_home(blocker / "home").ensure()

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths_mod.tempfile, "mkstemp", denied)
    with pytest.raises(DreamchatError) as err:
        Paths.for_home(tmp_path / "h").ensure()
    assert str(err.value) == (f"cannot write to home folder {tmp_path / 'h'}: permission denied; "
                              "pass --home to a writable folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_ensure_read_only_home(clean_env, tmp_path):
    home = tmp_path / "ro"
    home.mkdir(mode=0o500)
    with pytest.raises(DreamchatError, match="permission denied"):
        Paths.for_home(home).ensure()


HOLDER = textwrap.dedent("""
    import sys, time
    from dreamchat.lock import InstanceLock
    from dreamchat.paths import Paths
    with InstanceLock(Paths.for_home(sys.argv[1]).ensure()):
        print("locked", flush=True)
        sys.stdin.readline()   # hold the lock until the test closes our stdin
""")


def test_second_process_is_refused_with_pid(tmp_path):
    paths = Paths.for_home(tmp_path / "home").ensure()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(paths.home)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BusyError) as err:
            InstanceLock(paths).acquire()
        assert str(err.value) == (f"another dreamchat is running with home {paths.home} "
                                  f"(pid {holder.pid}); close it or use --home")
        assert mode(paths.lock_file) == 0o600
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with InstanceLock(paths) as lock:  # released when the holder exits
        assert lock.held and read_lock_pid(paths.lock_file) == os.getpid()
    assert not lock.held and read_lock_pid(paths.lock_file) is None


def test_lock_is_freed_when_holder_is_killed(tmp_path):
    paths = Paths.for_home(tmp_path / "home").ensure()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(paths.home)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait(timeout=30)
    holder.stdin.close()
    holder.stdout.close()
    with InstanceLock(paths):  # no stale lock after a crash
        pass


def test_lock_in_same_process_and_reacquire(tmp_path):
    paths = Paths.for_home(tmp_path / "home").ensure()
    first = InstanceLock(paths).acquire()
    assert first.acquire() is first  # idempotent
    with pytest.raises(BusyError):
        InstanceLock(paths).acquire()
    first.release()
    first.release()  # idempotent
    with InstanceLock(paths):
        pass


def test_lock_is_held_even_when_a_full_disk_refuses_the_pid(tmp_path, monkeypatch):
    paths = Paths.for_home(tmp_path / "home").ensure()

    def full(fd, data):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", full)
        lock = InstanceLock(paths).acquire()
    assert lock.held and read_lock_pid(paths.lock_file) is None
    with pytest.raises(BusyError):  # another dreamchat is still kept out, without the pid to name
        InstanceLock(paths).acquire()
    lock.release()
