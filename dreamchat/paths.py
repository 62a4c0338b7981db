"""Where dreamchat keeps its files.

One *home* holds everything that belongs to one user (or one profile, or one test): the journal,
the memory snapshots, the lock file, training runs and — when the home was chosen explicitly — the
configuration. Downloaded GGUF models live in a shared cache instead, so several homes share one
download.

    --home DIR  >  $DREAMCHAT_HOME  >  platformdirs user_data_dir("dreamchat")

Everything dreamchat creates is private: folders 0700, files 0600. The conversation and the memory
of it are the user's own; no other account on the machine should read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from dreamchat.errors import DreamchatError

log = logging.getLogger(__name__)

APP_NAME = "dreamchat"
HOME_ENV = "DREAMCHAT_HOME"
MODELS_ENV = "DREAMCHAT_MODELS_DIR"

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077  # new files rw for the owner only, new folders rwx for the owner only


def _explicit_home(cli_home: str | os.PathLike | None) -> Path | None:
    """The home the user chose (--home, then $DREAMCHAT_HOME), or None for the platform default."""
    if cli_home:
        return Path(cli_home).expanduser().absolute()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return None


def resolve_home(cli_home: str | os.PathLike | None = None) -> Path:
    """The home folder: `--home` > `$DREAMCHAT_HOME` > the platform's user data folder."""
    return _explicit_home(cli_home) or Path(platformdirs.user_data_dir(APP_NAME)).absolute()


def resolve_config_file(cli_home: str | os.PathLike | None = None) -> Path:
    """config.toml: inside an explicit home (so a home is self-contained), else the platform's
    user config folder (~/.config/dreamchat on Linux)."""
    home = _explicit_home(cli_home)
    folder = home if home is not None else Path(platformdirs.user_config_dir(APP_NAME)).absolute()
    return folder / "config.toml"


def models_dir() -> Path:
    """The GGUF cache shared by all homes: `$DREAMCHAT_MODELS_DIR` or <user cache>/dreamchat/models."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_cache_dir(APP_NAME)).absolute() / "models"


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Create files and folders private while inside the block (e.g. SQLite's -wal/-shm files).

    The umask is process-wide, so keep the block short.
    """
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def make_private_dir(folder: Path) -> Path:
    """mkdir -p with mode 0700 for every folder created (existing folders keep their mode)."""
    with private_umask():
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return folder


def _check_writable(folder: Path) -> None:
    """Create and delete a scratch file: the only honest test (os.access lies for root, ACLs, ro mounts)."""
    with private_umask():
        fd, name = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    os.close(fd)
    os.unlink(name)


@dataclass(frozen=True)
class Paths:
    """The files of one home. Build with `Paths.for_home(cli_home)`; call `ensure()` before writing."""

    home: Path
    config_file: Path

    @classmethod
    def for_home(cls, cli_home: str | os.PathLike | None = None) -> "Paths":
        return cls(home=resolve_home(cli_home), config_file=resolve_config_file(cli_home))

    @property
    def journal_file(self) -> Path:
        return self.home / "dreamchat.db"

    @property
    def memory_dir(self) -> Path:
        return self.home / "memory"

    @property
    def lock_file(self) -> Path:
        return self.home / "dreamchat.lock"

    @property
    def runs_dir(self) -> Path:
        """Training runs (checkpoints, logs) of `dreamchat train`."""
        return self.home / "runs"

    @property
    def models_dir(self) -> Path:
        return models_dir()

    def ensure(self) -> "Paths":
        """Create the home, memory and config folders (0700) and check that the home is writable.

        Raises DreamchatError with the fix when the home cannot be written.
        """
        for folder in (self.home, self.memory_dir, self.config_file.parent):
            try:
                make_private_dir(folder)
                _check_writable(folder)
            except OSError as err:
                reason = (err.strerror or str(err)).lower()
                what = "config folder" if folder == self.config_file.parent != self.home else "home folder"
                raise DreamchatError(
                    f"cannot write to {what} {folder}: {reason}; pass --home to a writable folder"
                ) from err
        return self
