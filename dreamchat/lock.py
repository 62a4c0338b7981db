"""One writing dreamchat per home.

Two processes appending to one day, or one sleeping while the other chats, would interleave turns
and consolidate a day twice. Commands that write (the TUI, `send`, `sleep`, `memory reset`) hold an
`InstanceLock`; read-only ones (`history`, `doctor`, `memory list`) do not take it.

The lock is `fcntl.flock` on `<home>/dreamchat.lock`: the kernel drops it when the process dies, so
a crash never leaves a stale lock behind. The file holds the owner's pid for the error message; it
is never deleted (deleting a lock file races with a process that has just opened it).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

from dreamchat.errors import BusyError, DreamchatError
from dreamchat.paths import PRIVATE_FILE_MODE, Paths

log = logging.getLogger(__name__)


class InstanceLock:
    """Non-blocking exclusive lock on a home. Use as a context manager or acquire()/release().

        with InstanceLock(paths):
            ...  # BusyError was raised if another dreamchat holds this home
    """

    def __init__(self, paths: Paths):
        self.paths = paths
        self.path: Path = paths.lock_file
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "InstanceLock":
        """Take the lock now or raise BusyError naming the home and the other process's pid."""
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        except OSError as err:
            raise DreamchatError(f"cannot open lock file {self.path}: {err.strerror}; "
                                 "pass --home to a writable folder") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DreamchatError(f"cannot lock {self.path}: {err.strerror}; "
                                     "pass --home to a local folder") from err
            pid = read_lock_pid(self.path)
            who = f" (pid {pid})" if pid else ""
            raise BusyError(f"another dreamchat is running with home {self.paths.home}{who}; "
                            "close it or use --home") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as err:
            # The pid only names the holder in another process's message; the lock itself is held.
            # A full disk is reported by the journal or the memory store, at the write that matters.
            log.debug("could not write the pid into %s: %s", self.path, err.strerror)
        self._fd = fd
        log.debug("locked %s", self.path)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale pid for the next reader
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        log.debug("unlocked %s", self.path)

    def __enter__(self) -> "InstanceLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def read_lock_pid(path: Path) -> int | None:
    """The pid written by the lock holder, or None (no file, empty, or being rewritten)."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
