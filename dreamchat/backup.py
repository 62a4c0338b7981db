"""One file that holds a home: `dreamchat backup` writes it, `dreamchat restore` reads it back.

Months of conversation and the memory slept from them live in two places, the journal (SQLite) and
the memory snapshots (safetensors), plus config.toml. A backup is one gzip'd tar of them with a
manifest of checksums, private to the user like the home itself:

    dreamchat-backup/manifest.json      format, version, counts, sha256 of every other member
    dreamchat-backup/dreamchat.db       the journal, copied with SQLite's online backup
    dreamchat-backup/memory/...         current.json and every snapshot
    dreamchat-backup/config.toml        when there is one

A backup does not need dreamchat to be closed. The journal is copied first, in one consistent read,
and the memory after it: a sleep that finishes in between leaves a snapshot the copied journal does
not know as finished, and the restored assistant rolls it back on opening (as after a crash), so the
day is slept again rather than lost. The memory is copied again if its files change while they are
being read.

A restore writes only into a home with nothing in it yet (no messages, no snapshots), so it cannot
overwrite anyone's days; it checks every checksum before anything is moved into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from dreamchat import __version__
from dreamchat.errors import DreamchatError
from dreamchat.lock import InstanceLock
from dreamchat.paths import Paths, make_private_dir, private_umask
from dreamchat.storage.atomic import atomic_write, disk_full, is_temp_file

FORMAT = 1
ROOT = "dreamchat-backup"
JOURNAL = "dreamchat.db"
CONFIG = "config.toml"
MEMORY = "memory"
COPY_TRIES = 3  # times the memory is copied again when a sleep changes it meanwhile


class BackupError(DreamchatError):
    """A backup that cannot be written or read back."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    created: str  # ISO-8601 UTC, when the backup was taken
    messages: int
    nights: int  # sleeps done
    snapshots: int
    config: bool  # whether config.toml is in it
    size_bytes: int = 0

    def taken(self) -> str:
        """When the backup was taken, in local time."""
        try:
            return datetime.fromisoformat(self.created).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return self.created or "at an unknown time"

    def describe(self) -> str:
        parts = [f"{self.messages:,} message{'s' if self.messages != 1 else ''}",
                 f"{self.nights:,} night{'s' if self.nights != 1 else ''} slept",
                 f"{self.snapshots} memory snapshot{'s' if self.snapshots != 1 else ''}"]
        if self.config:
            parts.append("config.toml")
        return ", ".join(parts[:-1]) + " and " + parts[-1]


def default_backup_path(now: datetime | None = None) -> Path:
    now = now or datetime.now()
    return Path.cwd() / f"dreamchat-backup-{now:%Y-%m-%d-%H%M}.tar.gz"


# -- writing ------------------------------------------------------------------------------------


def backup(paths: Paths, target: str | Path | None = None) -> BackupSummary:
    """Write the home of `paths` to one archive at `target` (default: dreamchat-backup-DATE.tar.gz
    in the current folder). The archive appears whole or not at all."""
    if not paths.journal_file.is_file():
        raise BackupError(f"nothing to back up: {paths.home} has no journal yet (pass --home to "
                          "the home you use)")
    target = Path(target).expanduser() if target else default_backup_path()
    if target.is_dir():
        target = target / default_backup_path().name
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="dreamchat-backup-") as scratch:
        journal_copy = Path(scratch) / JOURNAL
        messages, nights = _copy_journal(paths.journal_file, journal_copy)
        memory = _read_memory(paths.memory_dir)
        config = paths.config_file.read_bytes() if paths.config_file.is_file() else None
        journal = journal_copy.read_bytes()
        files = {JOURNAL: _sha256(journal)}
        files.update({f"{MEMORY}/{name}": _sha256(data) for name, data in memory.items()})
        if config is not None:
            files[CONFIG] = _sha256(config)
        manifest = {"format": FORMAT, "dreamchat": __version__, "created": created,
                    "messages": messages, "nights": nights,
                    "snapshots": sum(name.endswith(".safetensors") for name in memory), "files": files}

        def write(tmp: Path) -> None:
            with tarfile.open(tmp, "w:gz") as tar:
                _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode() + b"\n")
                _add(tar, JOURNAL, journal)
                for name, data in memory.items():
                    _add(tar, f"{MEMORY}/{name}", data)
                if config is not None:
                    _add(tar, CONFIG, config)

        try:
            make_private_dir(target.parent)
            atomic_write(target, write)
        except OSError as err:
            raise BackupError(f"cannot write the backup {target}: {err.strerror or err}; "
                              + ("free some disk space and try again" if disk_full(err)
                                 else "choose another path")) from err
    return BackupSummary(target, created, messages, nights, manifest["snapshots"], config is not None,
                         target.stat().st_size)


def _copy_journal(source: Path, target: Path) -> tuple[int, int]:
    """A consistent copy of the journal, even while dreamchat writes to it; (messages, nights)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)) as src, \
                contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            messages = dst.execute("SELECT count(*) FROM messages").fetchone()[0]
            nights = dst.execute("SELECT count(*) FROM sleeps WHERE status = 'done'").fetchone()[0]
    except sqlite3.DatabaseError as err:
        if "full" in str(err):  # the scratch copy's disk (the temporary folder)
            raise BackupError(f"cannot copy the journal {source}: {err}; free some disk space in "
                              f"{tempfile.gettempdir()} and try again") from err
        raise BackupError(f"cannot read the journal {source}: {err}; run `dreamchat doctor`") from err
    return messages, nights


def _read_memory(folder: Path) -> dict[str, bytes]:
    """The memory folder's files by name, read while they stood still (a sleep writes new ones)."""
    for _ in range(COPY_TRIES):
        before = _listing(folder)
        contents = {}
        for name in before:
            with contextlib.suppress(FileNotFoundError):  # pruned meanwhile: the listing changes
                contents[name] = (folder / name).read_bytes()
        if _listing(folder) == before and contents.keys() == before.keys():
            return contents
    raise BackupError(f"the memory in {folder} kept changing while it was copied (a sleep?); "
                      "try again when it has finished")


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
            if p.is_file() and not is_temp_file(p)}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """A private file (0600, no owner names) under the archive's root."""
    info = tarfile.TarInfo(f"{ROOT}/{name}")
    info.size, info.mode = len(data), 0o600
    info.mtime = int(datetime.now(timezone.utc).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- reading back -------------------------------------------------------------------------------


def read_backup(archive: str | Path) -> tuple[dict, dict[str, bytes]]:
    """The manifest and every member (name -> bytes), checked against the manifest's checksums."""
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise BackupError(f"no backup at {archive}; give the path of a file `dreamchat backup` wrote")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = {}
            for info in tar.getmembers():
                name = PurePosixPath(info.name)
                if not info.isfile() or name.parts[:1] != (ROOT,) or ".." in name.parts:
                    continue  # only plain files under the root are ever read; nothing is extracted
                members[str(name.relative_to(ROOT))] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError, ValueError) as err:
        raise BackupError(f"{archive} is not a readable dreamchat backup ({err}); it may be damaged "
                          "or cut short: use another copy") from err
    try:
        manifest = json.loads(members.pop("manifest.json"))
        files, version = manifest["files"], manifest["format"]
    except (KeyError, ValueError, TypeError) as err:
        raise BackupError(f"{archive} has no valid manifest: it was not written by `dreamchat "
                          "backup`, or it is damaged") from err
    if version != FORMAT:
        raise BackupError(f"{archive} is a backup of format {version}, this dreamchat reads format "
                          f"{FORMAT}; upgrade dreamchat")
    for name, digest in files.items():
        if name not in members:
            raise BackupError(f"{archive} lacks {name}: it is damaged or cut short; use another copy")
        if _sha256(members[name]) != digest:
            raise BackupError(f"{archive}: {name} does not match its checksum; the backup is "
                              "damaged, use another copy")
    unlisted = set(members) - set(files)
    if unlisted or JOURNAL not in files or any(not _safe_memory_name(n) for n in files if n.startswith(MEMORY)):
        raise BackupError(f"{archive} holds files its manifest does not list or allow "
                          f"({', '.join(sorted(unlisted)) or 'names'}); it was not written by dreamchat")
    return manifest, {name: members[name] for name in files}


def _safe_memory_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return len(parts) == 2 and parts[0] == MEMORY and not parts[1].startswith(".")


def restore(archive: str | Path, paths: Paths) -> tuple[BackupSummary, str]:
    """Put a backup into the home of `paths`, which must hold no messages and no memory yet.
    Returns what was restored and a note on config.toml."""
    from dreamchat.storage.journal import Journal

    manifest, members = read_backup(archive)
    make_private_dir(paths.home)
    with InstanceLock(paths):
        _require_empty(paths)
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=paths.home) as scratch:
            staged = Path(scratch)
            try:
                with private_umask():
                    (staged / JOURNAL).write_bytes(members[JOURNAL])
                    (staged / MEMORY).mkdir()
                    for name, data in members.items():
                        if name.startswith(f"{MEMORY}/"):
                            (staged / name).write_bytes(data)
                # Open it once here: an older journal is migrated, a newer one refused, before any of
                # it is in place. A sleep that was running when the backup was taken never finishes
                # here (its snapshot is rolled back when the assistant opens; its day stays unslept).
                with Journal(staged / JOURNAL, recover_interrupted=False) as journal:
                    journal.fail_running_sleeps()
                for leftover in ("-wal", "-shm"):  # an empty journal's, now replaced
                    paths.journal_file.with_name(JOURNAL + leftover).unlink(missing_ok=True)
                if paths.memory_dir.exists():
                    shutil.rmtree(paths.memory_dir)  # empty: _require_empty checked
                (staged / MEMORY).rename(paths.memory_dir)
                (staged / JOURNAL).replace(paths.journal_file)
            except OSError as err:
                raise BackupError(f"cannot restore into {paths.home}: {err.strerror or err}; "
                                  + ("free some disk space and try again" if disk_full(err)
                                     else "check the folder's permissions")) from err
    config_note = _restore_config(members.get(CONFIG), paths.config_file)
    summary = BackupSummary(Path(archive), manifest.get("created", ""), int(manifest.get("messages", 0)),
                            int(manifest.get("nights", 0)), int(manifest.get("snapshots", 0)),
                            CONFIG in members)
    return summary, config_note


def _require_empty(paths: Paths) -> None:
    """Refuse a home that already holds days or memory: a restore never overwrites them."""
    from dreamchat.storage.journal import Journal
    from dreamchat.storage.memory_store import MemoryStore  # loads torch: restore only, not backup

    if paths.journal_file.exists():
        with Journal(paths.journal_file, recover_interrupted=False) as journal:
            count = journal.message_count()
        if count:
            raise BackupError(f"{paths.home} already holds a journal with {count:,} messages; restore "
                              "into a new home (--home DIR), or move this one away first")
    if MemoryStore(paths.memory_dir).list():
        raise BackupError(f"{paths.home} already holds memory snapshots; restore into a new home "
                          "(--home DIR), or move this one away first")


def _restore_config(data: bytes | None, config_file: Path) -> str:
    if data is None:
        return ("The backup has no config.toml; yours is kept." if config_file.is_file()
                else "The backup has no config.toml; the defaults apply.")
    if config_file.is_file():
        if config_file.read_bytes() == data:
            return f"config.toml is the same as the backup's ({config_file})."
        beside = config_file.with_name(CONFIG + ".from-backup")
        make_private_dir(beside.parent)
        atomic_write(beside, lambda tmp: tmp.write_bytes(data))
        return f"Kept your config.toml ({config_file}); the backup's is beside it as {beside.name}."
    make_private_dir(config_file.parent)
    atomic_write(config_file, lambda tmp: tmp.write_bytes(data))
    return f"config.toml restored to {config_file}."
