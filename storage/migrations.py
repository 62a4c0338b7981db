"""The journal's schema, as a list of small migrations (in the style of Simon Willison's `llm`).

A fresh database runs them all in order; an existing one runs only those not yet recorded in the
`_migrations` table. Each runs in its own transaction. Never edit a migration once it has shipped:
add a new one. The schema version is the number of migrations applied, also kept in
`PRAGMA user_version` so that an older dreamchat can tell it is looking at a newer journal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlite_utils import Database

from dreamchat.errors import JournalError

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration. (Unlike `llm`'s bare `MIGRATIONS.append`, this returns the function,
    so tests can import and run one migration on its own.)"""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_sleeps(db: Database) -> None:
    # One row per consolidation: a night, a manual /sleep or a nap when the context fills up.
    db.execute("""
        CREATE TABLE sleeps (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,            -- ISO-8601 UTC
            finished TEXT,                    -- NULL while running
            passes INTEGER NOT NULL,          -- N, the times the tower re-read the day
            tokens INTEGER NOT NULL DEFAULT 0,
            duration_s REAL,
            snapshot TEXT,                    -- memory snapshot file written by this sleep
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
            kind TEXT NOT NULL DEFAULT 'night' CHECK (kind IN ('night', 'manual', 'nap')),
            error TEXT
        )
    """)


@migration
def m002_messages(db: Database) -> None:
    # Every turn, as the backbone saw it. sleep_id is NULL until a sleep consolidates the message:
    # "today" is simply the unslept messages.
    db.execute("""
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            text TEXT NOT NULL,
            tokens INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,            -- ISO-8601 UTC
            sleep_id INTEGER REFERENCES sleeps(id)
        )
    """)
    db["messages"].create_index(["sleep_id"])


@migration
def m003_messages_fts(db: Database) -> None:
    # Full-text search over message text, kept in sync by triggers; porter stemming so that
    # "cats" finds "cat".
    db["messages"].enable_fts(["text"], create_triggers=True, tokenize="porter")


@migration
def m004_settings(db: Database) -> None:
    # Small key/value state that belongs with the journal (e.g. when the user last said "not now"
    # to a morning sleep).
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migration
def m005_sleeps_pid(db: Database) -> None:
    # The process that runs a sleep, so that opening the journal can tell a sleep that is still
    # running in another process from one whose process died.
    db["sleeps"].add_column("pid", int)


@migration
def m006_recollections(db: Database) -> None:
    # What the memory supplied to a reply and the slept message that held it (the "from memory"
    # line under a reply), kept so a restarted app and an export still show it.
    db.execute("""
        CREATE TABLE recollections (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id),  -- the reply
            text TEXT NOT NULL,                                   -- the words the memory supplied
            source_id INTEGER REFERENCES messages(id),            -- the message that held them; NULL: none
            snippet TEXT                                          -- that message around them, [bracketed]
        )
    """)
    db["recollections"].create_index(["message_id"])


SCHEMA_VERSION = len(MIGRATIONS)


def applied_migrations(db: Database) -> list[str]:
    if not db["_migrations"].exists():
        return []
    return [row["name"] for row in db.query("SELECT name FROM _migrations ORDER BY rowid")]


def check_not_newer(db: Database, where: str = "the journal") -> None:
    """Raise JournalError, changing nothing, when a newer dreamchat wrote this database: it applied
    migrations this version does not know, or its schema version is higher."""
    applied = applied_migrations(db)
    known = {fn.__name__ for fn in MIGRATIONS}
    unknown = [name for name in applied if name not in known]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if unknown or version > SCHEMA_VERSION:
        raise JournalError(f"{where} was written by a newer dreamchat (schema {max(version, len(applied))}, "
                           f"this one knows {SCHEMA_VERSION}); upgrade dreamchat")


def migrate(db: Database, where: str = "the journal") -> list[str]:
    """Apply the pending migrations; return their names. Refuses a newer journal (check_not_newer)."""
    check_not_newer(db, where)
    applied = applied_migrations(db)
    done = []
    with db.atomic():
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    for fn in MIGRATIONS:
        if fn.__name__ in applied:
            continue
        with db.atomic():  # a migration and its record commit together or not at all
            fn(db)
            db.execute("INSERT INTO _migrations (name, applied) VALUES (?, ?)",
                       [fn.__name__, datetime.now(timezone.utc).isoformat(timespec="seconds")])
            db.execute(f"PRAGMA user_version = {len(applied) + len(done) + 1}")
        done.append(fn.__name__)
    return done
