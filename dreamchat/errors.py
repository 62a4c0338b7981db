"""The one error type the user sees.

Every failure a user can cause or meet (a bad model file, a malformed config, a second running
instance, a full disk) is raised as a `DreamchatError` whose message is one line that says what is
wrong and what to do. The command line and the TUI print that line and nothing else; any other
exception is a bug and keeps its traceback.
"""


class DreamchatError(Exception):
    """A user-facing failure: `str(err)` is one line naming the problem and the fix."""


class ConfigError(DreamchatError):
    """config.toml is unreadable or has a bad key or value."""


class ModelError(DreamchatError):
    """The GGUF model file is missing, unreadable, truncated or unusable for chat."""


class JournalError(DreamchatError):
    """The journal database cannot be opened, is from a newer version, or is corrupt."""


class MemoryStoreError(DreamchatError):
    """A fast-weight snapshot cannot be read, written, or does not fit this backbone/tower."""


class MemoryNeedsRebuild(MemoryStoreError):
    """The memory cannot be loaded as it is, but the journal still holds every slept day, so
    `Assistant.rebuild_memory` can make it again (front ends open without it and offer that)."""


class TowerMismatch(MemoryNeedsRebuild):
    """The memory was made by another memory tower (an upgrade, `--weights`)."""


class NoIntactMemory(MemoryNeedsRebuild):
    """Every snapshot the memory could fall back to is damaged or missing."""


class BusyError(DreamchatError):
    """Another dreamchat process is using the same home."""


class EmptyMessageError(DreamchatError):
    """The user sent an empty message."""


class ContextFullError(DreamchatError):
    """Today's context has no room left for the next turn; the assistant must nap first."""


class TakeBackError(DreamchatError):
    """A retry or an undo with no exchange of today's to act on (or, for a retry, no way to vary it)."""
