"""The journal: every turn of every day, and every sleep, in one SQLite file.

`Journal` is the only code that touches SQL. It owns one sqlite-utils `Database` with write-ahead
logging (a reader such as `dreamchat history` never blocks the chat) and foreign keys on, runs the
migrations in `migrations.py` once at open, and exposes methods named for what they do. Writes that
belong together (the two turns of an exchange; marking a day slept and recording the sleep) are one
transaction.

The file is private (0600) and so are SQLite's -wal/-shm side files. A file that is not a readable
SQLite database is never modified or replaced: the error says where it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from dreamchat.errors import JournalError
from dreamchat.paths import PRIVATE_FILE_MODE, private_umask
from dreamchat.storage.atomic import disk_full
from dreamchat.storage.migrations import SCHEMA_VERSION, check_not_newer, migrate

log = logging.getLogger(__name__)

SLEEP_KINDS = ("night", "manual", "nap")
INTERRUPTED = "interrupted: dreamchat stopped before this sleep finished"
_FULL_BELOW_BYTES = 1 << 20  # SQLite needs room for a few pages and its -wal/-shm files to open


def utc_now() -> str:
    """The journal's timestamp format: ISO-8601, UTC, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Message:
    id: int
    role: str  # "user" | "assistant" | "system"
    text: str
    tokens: int  # backbone tokens of the chat-formatted turn
    created: datetime  # aware, UTC (stored as ISO-8601 text)
    sleep_id: int | None  # None = not yet consolidated: part of today


@dataclass(frozen=True)
class SearchHit(Message):
    snippet: str = ""  # the matching part of the text, matches in [brackets]
    rank: float = 0.0  # FTS5 bm25 rank: lower is better


@dataclass(frozen=True)
class Recalled:
    """Words the memory supplied to a reply, and the slept message that held them (if any)."""

    message_id: int  # the reply
    text: str
    source_id: int | None
    source_role: str | None
    source_created: datetime | None  # aware, UTC
    snippet: str | None  # the source around the words, matches in [brackets]


@dataclass(frozen=True)
class Sleep:
    id: int
    started: datetime  # aware, UTC
    finished: datetime | None  # None while running
    passes: int
    tokens: int
    duration_s: float | None
    snapshot: str | None  # file name of the memory snapshot it wrote
    status: str  # "running" | "done" | "failed" | "cancelled"
    kind: str  # "night" | "manual" | "nap"
    error: str | None
    n_messages: int = 0  # messages consolidated by this sleep


def fts_query(text: str) -> str:
    """User text -> a safe FTS5 query: the words (runs of letters and digits, as the index splits
    them) each quoted, all of them required. Punctuation is dropped, so `pickle's "cat` or `AND(`
    can never be FTS5 syntax; quoting turns AND/OR/NOT/NEAR into plain words."""
    return " ".join(f'"{word}"' for word in re.findall(r"\w+", text))


def _process_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (a reused pid errs on the side of "alive";
    begin_sleep cleans up such a row later)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _folder_full(folder: Path) -> bool:
    """Whether the folder's disk has (next to) no room left. SQLite reports a full disk at open as
    a bare "disk I/O error" (it cannot create its -wal and -shm files), so ask the disk itself."""
    try:
        return shutil.disk_usage(folder).free < _FULL_BELOW_BYTES
    except OSError:
        return False


def _no_space(path: Path) -> JournalError:
    return JournalError(f"no space left on {path.parent} to open the journal; free some disk space and "
                        "start dreamchat again (nothing was lost)")


def _open_error(path: Path, err: sqlite3.DatabaseError) -> JournalError:
    if isinstance(err, sqlite3.OperationalError) and _folder_full(path.parent):
        return _no_space(path)
    if isinstance(err, sqlite3.OperationalError):  # locked, unreadable, ...: the file may be fine
        return JournalError(f"cannot open the journal {path}: {err}; close other dreamchat processes "
                            "and check the folder's permissions")
    return JournalError(f"{path} is not a readable dreamchat journal ({err}); it was left untouched: "
                        "move it away to start a new journal, or pass --home")


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating it privately) and validate the SQLite file. Never alters a bad file."""
    try:
        with private_umask():  # the -wal and -shm files SQLite creates are private too
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE))
            # check_same_thread=False: long sleeps run in a worker thread; Journal serialises access.
            conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
            try:
                # Reads only: a file that is not SQLite fails here, before anything is written.
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                problem = conn.execute("PRAGMA quick_check").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(problem)
            except BaseException:
                conn.close()
                raise
    except sqlite3.DatabaseError as err:
        raise _open_error(path, err) from err
    except OSError as err:
        if disk_full(err):
            raise _no_space(path) from err
        raise JournalError(f"cannot open the journal {path}: {err.strerror}; pass --home to a "
                           "writable folder") from err
    conn.execute("PRAGMA foreign_keys=ON")
    # Deleted rows (`Journal.forget`) are overwritten with zeros, not left in free pages.
    conn.execute("PRAGMA secure_delete=ON")
    return conn


class Journal:
    """All turns and sleeps of one home.

    recover_interrupted: at open, mark sleeps left 'running' by a process that no longer exists as
    failed (a sleep still running in a live process, e.g. the TUI while `dreamchat history` reads,
    is left alone).
    """

    def __init__(self, path: str | Path, *, recover_interrupted: bool = True):
        self.path = Path(path)
        self._lock = threading.RLock()
        self.db = Database(_connect(self.path), execute_plugins=False)
        try:
            check_not_newer(self.db, where=str(self.path))  # before WAL: a newer file stays as it is
            with private_umask():
                self.db.enable_wal()
            applied = migrate(self.db, where=str(self.path))
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise _open_error(self.path, err) from err
        except BaseException:
            self.db.close()
            raise
        if applied:
            log.info("journal %s: applied migrations %s", self.path, ", ".join(applied))
        if recover_interrupted:
            self._fail_interrupted_sleeps()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction, serialised between threads; a full disk or a lock held too long by
        another process becomes a JournalError that says what to do (nothing is half-written)."""
        with self._lock:
            try:
                with self.db.atomic():
                    yield
            except sqlite3.OperationalError as err:
                text = str(err)
                fix = ("free some disk space and try again" if "full" in text else
                       "close the other dreamchat using this home and try again" if "locked" in text else
                       "check the folder's permissions and free space")
                raise JournalError(f"cannot write to the journal {self.path}: {text}; {fix}") from err

    # -- messages ---------------------------------------------------------------------------

    def append_exchange(self, user_text: str, assistant_text: str, user_tokens: int,
                        assistant_tokens: int,
                        recalled: Iterable[tuple[str, int | None, str | None]] = (),
                        replacing: Iterable[int] = ()) -> tuple[int, int]:
        """Store a user turn and the reply to it, both or neither, with what the memory supplied to
        the reply: (words, source message id or None, snippet or None) each. Returns their ids.
        `replacing`: messages (an earlier try at this exchange) deleted in the same transaction."""
        now = utc_now()
        with self._writing():
            self._delete(replacing)
            ids = tuple(
                self.db.execute("INSERT INTO messages (role, text, tokens, created) VALUES (?, ?, ?, ?)",
                                [role, text, int(tokens), now]).lastrowid
                for role, text, tokens in (("user", user_text, user_tokens),
                                           ("assistant", assistant_text, assistant_tokens)))
            for text, source_id, snippet in recalled:
                self.db.execute("INSERT INTO recollections (message_id, text, source_id, snippet) "
                                "VALUES (?, ?, ?, ?)", [ids[1], text, source_id, snippet])
        return ids  # type: ignore[return-value]

    def recalled(self, message_ids: Iterable[int] | None = None) -> list[Recalled]:
        """What the memory supplied to these replies (None: to every reply), in the order stored."""
        sql = """
            SELECT r.message_id, r.text, r.source_id, s.role, s.created, r.snippet
            FROM recollections r LEFT JOIN messages s ON s.id = r.source_id
        """
        params: list[int] = []
        if message_ids is not None:
            params = [int(i) for i in message_ids]
            if not params:
                return []
            sql += f" WHERE r.message_id IN ({', '.join('?' * len(params))})"
        with self._lock:
            return [Recalled(*_with_times(row, 4)) for row in self.db.execute(sql + " ORDER BY r.id", params)]

    def unslept_messages(self) -> list[Message]:
        """Today: every message no sleep has consolidated yet, oldest first."""
        return self._messages("WHERE sleep_id IS NULL ORDER BY id")

    def slept_messages(self, sleep_id: int) -> list[Message]:
        """The messages one sleep consolidated, oldest first."""
        return self._messages("WHERE sleep_id = ? ORDER BY id", [sleep_id])

    def messages(self, limit: int | None = None, offset: int = 0) -> list[Message]:
        """Messages in chronological order: the latest `limit` (all when None), leaving out the
        `offset` most recent ones, so that `offset` pages back through history."""
        newest_first = self._messages("ORDER BY id DESC LIMIT ? OFFSET ?",
                                      [-1 if limit is None else limit, offset])
        return newest_first[::-1]

    def message_count(self) -> int:
        with self._lock:
            return self.db.execute("SELECT count(*) FROM messages").fetchone()[0]

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search, best matches first. Any user text is a safe query."""
        return self._search(query, "", "messages_fts.rank", limit)

    def search_slept(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Full-text search of the messages a sleep consolidated (what the memory can have learned),
        newest first: where a remembered word was most recently said. Newest first is the FTS
        index's own order (descending rowid), so a word said in thousands of messages costs no
        sort of them all."""
        return self._search(query, "AND m.sleep_id IS NOT NULL", "messages_fts.rowid DESC", limit)

    def exchanges_matching(self, query: str) -> list[Message]:
        """Every message whose text matches `query` (as `search` does), with the other half of its
        exchange (a user turn and the reply to it), oldest first: what `forget` would delete."""
        match = fts_query(query)
        if not match:
            return []
        with self._lock:
            hits = [row[0] for row in self.db.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", [match])]
        return self.exchanges_of(hits)

    def exchanges_of(self, message_ids: Iterable[int]) -> list[Message]:
        """These messages with the other half of each one's exchange, oldest first."""
        return self.messages_by_id(self._with_partners(message_ids))

    def _with_partners(self, ids: Iterable[int]) -> set[int]:
        """ids plus the other turn of each one's exchange: the reply after a user turn, the user
        turn before a reply (append_exchange writes the two together)."""
        wanted = set(ids)
        with self._lock:
            for message_id in list(wanted):
                role = self.db.execute("SELECT role FROM messages WHERE id = ?", [message_id]).fetchone()
                if role is None:
                    continue
                if role[0] == "user":
                    other = self.db.execute("SELECT id, role FROM messages WHERE id > ? ORDER BY id LIMIT 1",
                                            [message_id]).fetchone()
                    partner = "assistant"
                else:
                    other = self.db.execute("SELECT id, role FROM messages WHERE id < ? ORDER BY id DESC "
                                            "LIMIT 1", [message_id]).fetchone()
                    partner = "user"
                if other is not None and other[1] == partner:
                    wanted.add(other[0])
        return wanted

    def messages_by_id(self, ids: Iterable[int]) -> list[Message]:
        """These messages (those that exist), oldest first."""
        ids = sorted({int(i) for i in ids})
        found = []
        for start in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
            batch = ids[start:start + 500]
            found += self._messages(f"WHERE id IN ({', '.join('?' * len(batch))})", batch)
        return sorted(found, key=lambda m: m.id)

    def forget(self, message_ids: Iterable[int]) -> int:
        """Delete these messages for good, with every from-memory line of a reply that quotes one
        of them; returns how many messages were deleted. The full-text index is rebuilt without
        them and the write-ahead log emptied, so their words stay nowhere in the files (freed pages
        are zeroed: secure_delete). The sleeps that consolidated them keep their token counts."""
        with self._writing():
            deleted = self._delete(message_ids)
            # FTS5 keeps deleted words in its older segments until they are merged.
            self.db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        with self._lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def _delete(self, message_ids: Iterable[int]) -> int:
        """Delete these messages and every from-memory line of them or quoting them, inside the
        caller's transaction; returns how many messages were deleted."""
        ids = sorted({int(i) for i in message_ids})
        deleted = 0
        for start in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
            batch = ids[start:start + 500]
            marks = ", ".join("?" * len(batch))
            self.db.execute(f"DELETE FROM recollections WHERE message_id IN ({marks}) "
                            f"OR source_id IN ({marks})", batch + batch)
            deleted += self.db.execute(f"DELETE FROM messages WHERE id IN ({marks})", batch).rowcount
        return deleted

    def _search(self, query: str, where: str, order: str, limit: int) -> list[SearchHit]:
        match = fts_query(query)
        if not match:
            return []
        sql = f"""
            SELECT m.id, m.role, m.text, m.tokens, m.created, m.sleep_id,
                   snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet, messages_fts.rank AS rank
            FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
            WHERE messages_fts MATCH ? {where} ORDER BY {order} LIMIT ?
        """
        with self._lock:
            return [SearchHit(*_with_times(row, 4)) for row in self.db.execute(sql, [match, limit]).fetchall()]

    def _messages(self, where: str, params: Iterable[Any] = ()) -> list[Message]:
        sql = f"SELECT id, role, text, tokens, created, sleep_id FROM messages {where}"
        with self._lock:  # plain execute + positional fields: 10x faster than dict rows on big days
            return [Message(*_with_times(row, 4)) for row in self.db.execute(sql, list(params)).fetchall()]

    # -- sleeps -----------------------------------------------------------------------------

    def begin_sleep(self, passes: int, kind: str = "manual") -> int:
        """Record that a sleep started; returns its id for finish_sleep / fail_sleep.

        The caller holds the instance lock, so any other sleep still marked running was interrupted.
        """
        if kind not in SLEEP_KINDS:
            raise ValueError(f"sleep kind must be one of {SLEEP_KINDS}, got {kind!r}")
        with self._writing():
            self._fail_running_sleeps(only_dead=False)
            return self.db.execute("INSERT INTO sleeps (started, passes, kind, pid) VALUES (?, ?, ?, ?)",
                                   [utc_now(), int(passes), kind, os.getpid()]).lastrowid

    def finish_sleep(self, sleep_id: int, message_ids: Iterable[int], tokens: int, duration: float,
                     snapshot: str | None) -> None:
        """Mark the consolidated messages slept and the sleep done, in one transaction."""
        ids = list(message_ids)
        with self._writing():
            self._require_running(sleep_id)
            marked = 0
            for start in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
                chunk = ids[start:start + 500]
                marked += self.db.execute(
                    f"UPDATE messages SET sleep_id = ? WHERE sleep_id IS NULL AND id IN "
                    f"({', '.join('?' * len(chunk))})", [sleep_id, *chunk]).rowcount
            if marked != len(set(ids)):
                raise ValueError(f"sleep {sleep_id}: {len(set(ids)) - marked} of the messages are "
                                 "missing or already slept")
            self.db.execute("UPDATE sleeps SET status = 'done', finished = ?, tokens = ?, duration_s = ?, "
                            "snapshot = ? WHERE id = ?",
                            [utc_now(), int(tokens), float(duration), snapshot, sleep_id])

    def fail_sleep(self, sleep_id: int, status: Literal["failed", "cancelled"], reason: str) -> None:
        """Record that a sleep ended without consolidating; its messages stay in today."""
        if status not in ("failed", "cancelled"):
            raise ValueError(f"status must be 'failed' or 'cancelled', got {status!r}")
        with self._writing():
            self._require_running(sleep_id)
            self.db.execute("UPDATE sleeps SET status = ?, error = ?, finished = ? WHERE id = ?",
                            [status, reason, utc_now(), sleep_id])

    def sleeps(self) -> list[Sleep]:
        """Every sleep, oldest first."""
        return self._sleeps("ORDER BY s.id")

    def last_sleep(self, *, include_failed: bool = False) -> Sleep | None:
        """The most recent finished sleep (or the most recent of any status)."""
        where = "" if include_failed else "WHERE s.status = 'done'"
        found = self._sleeps(f"{where} ORDER BY s.id DESC LIMIT 1")
        return found[0] if found else None

    def _sleeps(self, tail: str) -> list[Sleep]:
        sql = f"""
            SELECT s.id, s.started, s.finished, s.passes, s.tokens, s.duration_s, s.snapshot, s.status,
                   s.kind, s.error, (SELECT count(*) FROM messages m WHERE m.sleep_id = s.id) AS n_messages
            FROM sleeps s {tail}
        """
        with self._lock:
            return [Sleep(*_with_times(row, 1, 2)) for row in self.db.execute(sql).fetchall()]

    def _require_running(self, sleep_id: int) -> None:
        row = self.db.execute("SELECT status FROM sleeps WHERE id = ?", [sleep_id]).fetchone()
        if row is None or row[0] != "running":
            raise ValueError(f"sleep {sleep_id} is {'unknown' if row is None else row[0]}, not running")

    def fail_running_sleeps(self) -> None:
        """Mark every sleep still 'running' failed, whatever process started it (a restored backup
        taken during a sleep: that sleep never finishes in this home)."""
        with self._writing():
            self._fail_running_sleeps(only_dead=False)

    def _fail_interrupted_sleeps(self) -> None:
        with self._writing():
            self._fail_running_sleeps(only_dead=True)

    def _fail_running_sleeps(self, *, only_dead: bool) -> None:
        """Mark 'running' sleeps failed; with only_dead, just those whose process has gone."""
        running = self.db.execute("SELECT id, pid FROM sleeps WHERE status = 'running'").fetchall()
        stale = [sleep_id for sleep_id, pid in running if not (only_dead and _process_alive(pid))]
        for sleep_id in stale:
            self.db.execute("UPDATE sleeps SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                            [INTERRUPTED, utc_now(), sleep_id])
        if stale:
            log.warning("journal %s: interrupted sleep(s) %s marked failed; their messages stay in today",
                        self.path, ", ".join(map(str, stale)))

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        with self._writing():
            self.db.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, str(value)])

    # -- export -----------------------------------------------------------------------------

    def export(self, fmt: Literal["md", "json"]) -> str:
        """The whole journal as Markdown (to read) or JSON (to keep; round-trips every field)."""
        if fmt == "json":
            return json.dumps({
                "format": "dreamchat-journal",
                "schema_version": SCHEMA_VERSION,
                "exported": utc_now(),
                "messages": [_as_dict(m) for m in self.messages()],
                "sleeps": [_as_dict(s) for s in self.sleeps()],
                "recollections": [_as_dict(r) for r in self.recalled()],
            }, ensure_ascii=False, indent=1)
        if fmt == "md":
            return _markdown(self.messages(), self.sleeps(), self.recalled())
        raise ValueError(f"export format must be 'md' or 'json', got {fmt!r}")


def _with_times(row: tuple, *columns: int) -> list:
    """A database row with its ISO-8601 text columns parsed to datetimes."""
    values = list(row)
    for i in columns:
        values[i] = None if values[i] is None else datetime.fromisoformat(values[i])
    return values


def _as_dict(row: Message | Sleep | Recalled) -> dict[str, Any]:
    """dataclasses.asdict, shallow (asdict deep-copies: slow on a whole journal), times as ISO-8601."""
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _markdown(messages: list[Message], sleeps: list[Sleep], recalled: list[Recalled] = ()) -> str:
    """Days as headings, turns as paragraphs (a reply with what the memory supplied to it), each
    finished sleep where it happened; local time."""
    by_reply: dict[int, list[Recalled]] = {}
    for r in recalled:
        by_reply.setdefault(r.message_id, []).append(r)
    events: list[tuple[datetime, str]] = [(m.created, _md_message(m, by_reply.get(m.id, ()))) for m in messages]
    events += [(s.finished, _md_sleep(s)) for s in sleeps if s.status == "done" and s.finished]
    events.sort(key=lambda e: e[0])
    lines, day = ["# dreamchat journal", ""], None
    for when, text in events:
        if f"{when.astimezone():%Y-%m-%d}" != day:
            day = f"{when.astimezone():%Y-%m-%d}"
            lines += [f"## {day}", ""]
        lines += [text, ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_message(m: Message, recalled: Iterable[Recalled] = ()) -> str:
    who = {"user": "You", "assistant": "Assistant", "system": "System"}[m.role]
    lines = [f"**{who}** ({m.created.astimezone():%H:%M}): {m.text}"]
    for r in recalled:
        source = (f"{'you' if r.source_role == 'user' else 'the assistant'}, "
                  f"{r.source_created.astimezone():%Y-%m-%d %H:%M}: “{r.snippet}”"
                  if r.source_created is not None else "in nothing slept before")
        lines.append(f"> from memory: “{r.text}”: {source}")
    return "\n".join(lines)


def _md_sleep(s: Sleep) -> str:
    return (f"*— {s.kind} sleep at {s.finished.astimezone():%H:%M}: {s.n_messages} messages, "
            f"{s.passes} passes, {s.tokens} tokens, {s.duration_s:.1f} s —*")
