"""Atomic file writes: a reader (or the next start after a crash) sees the old file or the new one,
never half of one.

The recipe: write a temporary file in the *same* folder (os.replace is only atomic within one file
system), fsync it, os.replace it over the target, then fsync the folder so the rename itself
survives a power cut. Any failure removes the temporary file and leaves the target untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_MARKER = ".tmp-"  # temporary files are named ".<target name>.tmp-<random>"


def disk_full(err: OSError) -> bool:
    """Whether a write failed for want of space (a full disk or a used-up quota)."""
    return err.errno in (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk. A no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows: folders cannot be opened; NTFS journals renames anyway
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None], *, mode: int = 0o600) -> None:
    """Atomically create or replace `path` with what `write(temp_path)` writes to `temp_path`.

    `write` gets a path rather than a file object so that libraries that want a file name
    (safetensors' save_file) can use it. The result has permissions `mode`. Exceptions from
    `write` or the file system propagate after the temporary file is removed.
    """
    path = Path(os.path.realpath(path))  # write through a symlink (a config.toml kept in dotfiles)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARKER}", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        os.chmod(tmp, mode)
        write(tmp)
        with open(tmp, "rb+") as f:  # the writer may not have fsynced (save_file does not)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Atomically create or replace `path` with `data`."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data), mode=mode)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Atomically create or replace `path` with `text` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def is_temp_file(path: Path) -> bool:
    """True for a temporary file left behind by a crash inside `atomic_write`."""
    return path.name.startswith(".") and TEMP_MARKER in path.name
