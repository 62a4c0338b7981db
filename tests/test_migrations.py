import sqlite3

import pytest
from sqlite_utils import Database

from dreamchat.errors import JournalError
from dreamchat.storage import migrations as mig
from dreamchat.storage.journal import Journal


def db_after(*fns):
    db = Database(memory=True, execute_plugins=False)
    db.execute("PRAGMA foreign_keys=ON")
    for fn in fns:
        fn(db)
    return db


def test_m001_sleeps():
    db = db_after(mig.m001_sleeps)
    assert set(db["sleeps"].columns_dict) == {"id", "started", "finished", "passes", "tokens",
                                              "duration_s", "snapshot", "status", "kind", "error"}
    db.execute("INSERT INTO sleeps (started, passes) VALUES ('t', 2)")
    assert db.execute("SELECT status, kind, tokens FROM sleeps").fetchone() == ("running", "night", 0)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO sleeps (started, passes, status) VALUES ('t', 2, 'asleep')")


def test_m002_messages():
    db = db_after(mig.m001_sleeps, mig.m002_messages)
    assert set(db["messages"].columns_dict) == {"id", "role", "text", "tokens", "created", "sleep_id"}
    assert [fk.other_table for fk in db["messages"].foreign_keys] == ["sleeps"]
    assert [ix.columns for ix in db["messages"].indexes] == [["sleep_id"]]
    with pytest.raises(sqlite3.IntegrityError):  # roles are checked
        db.execute("INSERT INTO messages (role, text, created) VALUES ('robot', 'x', 't')")
    with pytest.raises(sqlite3.IntegrityError):  # sleep_id must name a sleep
        db.execute("INSERT INTO messages (role, text, created, sleep_id) VALUES ('user', 'x', 't', 42)")


def test_m003_messages_fts():
    db = db_after(mig.m001_sleeps, mig.m002_messages, mig.m003_messages_fts)
    db.execute("INSERT INTO messages (role, text, created) VALUES ('user', 'the cats sleep', 't')")
    found = db.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'cat'").fetchall()
    assert found == [(1,)]  # triggers keep the index in sync; porter stems cats -> cat
    db.execute("UPDATE messages SET text = 'dogs' WHERE id = 1")
    assert db.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'cat'").fetchone() == (0,)


def test_m004_settings():
    db = db_after(mig.m004_settings)
    db.execute("INSERT INTO settings VALUES ('a', 'b')")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO settings VALUES ('a', 'c')")


def test_m005_sleeps_pid():
    db = db_after(mig.m001_sleeps, mig.m005_sleeps_pid)
    db.execute("INSERT INTO sleeps (started, passes, pid) VALUES ('t', 2, 1234)")
    assert db.execute("SELECT pid FROM sleeps").fetchone() == (1234,)


def test_m006_recollections():
    db = db_after(mig.m001_sleeps, mig.m002_messages, mig.m006_recollections)
    db.execute("INSERT INTO messages (role, text, created) VALUES ('assistant', 'It is Pickle.', 't')")
    db.execute("INSERT INTO recollections (message_id, text) VALUES (1, 'Pickle')")   # no source
    assert db.execute("SELECT source_id, snippet FROM recollections").fetchone() == (None, None)
    assert [ix.columns for ix in db["recollections"].indexes] == [["message_id"]]
    with pytest.raises(sqlite3.IntegrityError):  # a recollection belongs to a message
        db.execute("INSERT INTO recollections (message_id, text) VALUES (42, 'x')")


def test_migrations_are_named_in_order_and_all_tested():
    names = [fn.__name__ for fn in mig.MIGRATIONS]
    assert names == sorted(names) and len(set(names)) == len(names) == mig.SCHEMA_VERSION
    for name in names:  # one test per migration, by convention
        assert f"test_{name}" in globals(), name


def test_migrate_records_names_and_version_and_is_idempotent():
    db = Database(memory=True, execute_plugins=False)
    assert mig.migrate(db) == [fn.__name__ for fn in mig.MIGRATIONS]
    assert mig.applied_migrations(db) == [fn.__name__ for fn in mig.MIGRATIONS]
    assert db.execute("PRAGMA user_version").fetchone()[0] == mig.SCHEMA_VERSION
    assert mig.migrate(db) == []


def test_partially_migrated_database_runs_only_the_rest(tmp_path, monkeypatch):
    path = tmp_path / "dreamchat.db"
    monkeypatch.setattr(mig, "MIGRATIONS", mig.MIGRATIONS[:2])
    monkeypatch.setattr(mig, "SCHEMA_VERSION", 2)
    assert mig.migrate(Database(path, execute_plugins=False)) == ["m001_sleeps", "m002_messages"]
    monkeypatch.undo()
    with Journal(path) as j:  # the old file upgrades on open
        assert mig.applied_migrations(j.db)[2:] == [fn.__name__ for fn in mig.MIGRATIONS[2:]]
        j.append_exchange("searchable", "yes", 1, 1)
        assert j.search("searchable")


def test_journal_from_a_newer_dreamchat_is_refused_untouched(tmp_path):
    path = tmp_path / "dreamchat.db"
    with Journal(path) as j:
        j.db.execute("INSERT INTO _migrations VALUES ('m099_future_thing', 't')")
        j.db.execute(f"PRAGMA user_version = {mig.SCHEMA_VERSION + 1}")
        j.db.conn.commit()
    with pytest.raises(JournalError) as err:
        Journal(path)
    assert "newer dreamchat" in str(err.value) and "upgrade dreamchat" in str(err.value)
    assert str(path) in str(err.value)
    db = Database(path, execute_plugins=False)
    assert "m099_future_thing" in mig.applied_migrations(db)


def test_higher_user_version_alone_is_refused(tmp_path):
    path = tmp_path / "dreamchat.db"
    Journal(path).close()
    db = Database(path, execute_plugins=False)
    db.execute(f"PRAGMA user_version = {mig.SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(JournalError, match="newer dreamchat"):
        Journal(path)
