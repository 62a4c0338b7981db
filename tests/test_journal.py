import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from dreamchat.errors import JournalError
from dreamchat.storage.journal import INTERRUPTED, Journal, Message, Sleep, fts_query


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "dreamchat.db") as j:
        yield j


def test_fresh_journal_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "dreamchat.db"
    with Journal(path) as j:
        j.append_exchange("hi", "hello", 3, 4)
        assert j.db.journal_mode == "wal"
        assert j.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        side_files = [p for p in tmp_path.iterdir() if p.name != "dreamchat.db"]
        assert {p.name for p in side_files} == {"dreamchat.db-wal", "dreamchat.db-shm"}
        for p in [path, *side_files]:
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p.name


def test_append_exchange_and_unslept(journal):
    ids = journal.append_exchange("My cat is called Pickle.", "Nice name!", 12, 5)
    assert ids[1] == ids[0] + 1
    msgs = journal.unslept_messages()
    assert [(m.role, m.text, m.tokens, m.sleep_id) for m in msgs] == [
        ("user", "My cat is called Pickle.", 12, None), ("assistant", "Nice name!", 5, None)]
    assert msgs[0].created.tzinfo == timezone.utc
    assert abs((datetime.now(timezone.utc) - msgs[0].created).total_seconds()) < 60
    raw = journal.db.execute("SELECT created FROM messages").fetchone()[0]
    assert raw.endswith("+00:00") and raw[10] == "T"  # stored as ISO-8601 UTC text
    assert journal.message_count() == 2


def test_append_exchange_is_one_transaction(journal):
    journal.append_exchange("a", "b", 1, 1)
    with pytest.raises(sqlite3.IntegrityError):
        journal.append_exchange("user turn", None, 1, 1)  # NOT NULL fails on the second insert
    assert [m.text for m in journal.messages()] == ["a", "b"]  # the user turn was rolled back too


def test_full_disk_is_a_journal_error_and_writes_nothing(tmp_path):
    path = tmp_path / "dreamchat.db"
    with Journal(path) as j:
        j.append_exchange("small", "ok", 1, 1)
        page_count = j.db.execute("PRAGMA page_count").fetchone()[0]
        j.db.execute(f"PRAGMA max_page_count = {page_count}")  # the "disk" is now full
        with pytest.raises(JournalError, match="full.*free some disk space"):
            j.append_exchange("x" * 100_000, "y" * 100_000, 1, 1)
        assert [m.text for m in j.messages()] == ["small", "ok"]


def test_messages_paging(journal):
    for i in range(5):
        journal.append_exchange(f"q{i}", f"a{i}", 1, 1)
    assert [m.text for m in journal.messages(limit=3)] == ["a3", "q4", "a4"]  # the latest, in order
    assert [m.text for m in journal.messages(limit=2, offset=2)] == ["q3", "a3"]  # one page back
    assert [m.text for m in journal.messages(limit=5, offset=8)] == ["q0", "a0"]
    assert [m.text for m in journal.messages()] == [f"{w}{i}" for i in range(5) for w in "qa"]


def test_sleep_lifecycle(journal):
    journal.append_exchange("one", "two", 2, 3)
    sleep_id = journal.begin_sleep(passes=2, kind="night")
    journal.append_exchange("after", "sleep started", 1, 1)  # chatting on while it sleeps
    first_ids = [m.id for m in journal.unslept_messages()[:2]]
    journal.finish_sleep(sleep_id, first_ids, tokens=5, duration=1.5, snapshot="night-0001.safetensors")
    assert [m.text for m in journal.unslept_messages()] == ["after", "sleep started"]
    (sleep,) = journal.sleeps()
    assert sleep == Sleep(id=sleep_id, started=sleep.started, finished=sleep.finished, passes=2,
                          tokens=5, duration_s=1.5, snapshot="night-0001.safetensors", status="done",
                          kind="night", error=None, n_messages=2)
    assert sleep.finished >= sleep.started
    assert journal.last_sleep() == sleep
    assert [m.sleep_id for m in journal.messages()] == [sleep_id, sleep_id, None, None]


def test_finish_sleep_is_atomic_and_checks_ids(journal):
    a, b = journal.append_exchange("one", "two", 1, 1)
    sleep_id = journal.begin_sleep(2)
    with pytest.raises(ValueError, match="missing or already slept"):
        journal.finish_sleep(sleep_id, [a, b, 999], 2, 1.0, "x")
    assert len(journal.unslept_messages()) == 2  # nothing marked
    assert journal.sleeps()[0].status == "running"
    journal.finish_sleep(sleep_id, [a, b], 2, 1.0, "x")
    with pytest.raises(ValueError, match="not running"):
        journal.finish_sleep(sleep_id, [], 0, 0.0, None)


def test_fail_and_cancel_keep_messages_in_today(journal):
    journal.append_exchange("one", "two", 1, 1)
    s1 = journal.begin_sleep(2, kind="manual")
    journal.fail_sleep(s1, "failed", "out of memory")
    s2 = journal.begin_sleep(2, kind="nap")
    journal.fail_sleep(s2, "cancelled", "user pressed Escape")
    with pytest.raises(ValueError, match="status must be"):
        journal.fail_sleep(journal.begin_sleep(2), "out of memory", "oops")
    assert [(s.status, s.error, s.kind) for s in journal.sleeps()[:2]] == [
        ("failed", "out of memory", "manual"), ("cancelled", "user pressed Escape", "nap")]
    assert len(journal.unslept_messages()) == 2
    assert journal.last_sleep() is None
    assert journal.last_sleep(include_failed=True).id == s2 + 1
    with pytest.raises(ValueError):
        journal.begin_sleep(2, kind="siesta")


CRASHING_SLEEPER = """
import os, sys
from dreamchat.storage.journal import Journal
j = Journal(sys.argv[1])
j.append_exchange("one", "two", 1, 1)
print(j.begin_sleep(2), flush=True)
os._exit(9)  # dies in the middle of the sleep
"""


def test_interrupted_sleep_is_marked_failed_at_next_open(tmp_path):
    path = tmp_path / "dreamchat.db"
    out = subprocess.run([sys.executable, "-c", CRASHING_SLEEPER, str(path)], capture_output=True,
                         text=True, timeout=60)
    sleep_id = int(out.stdout)
    with Journal(path, recover_interrupted=False) as reader:
        assert reader.sleeps()[0].status == "running"
    with Journal(path) as j:
        (sleep,) = j.sleeps()
        assert (sleep.id, sleep.status, sleep.error) == (sleep_id, "failed", INTERRUPTED)
        assert len(j.unslept_messages()) == 2


def test_a_sleep_running_in_a_live_process_is_left_alone(tmp_path):
    path = tmp_path / "dreamchat.db"
    with Journal(path) as sleeper:  # e.g. the TUI, sleeping
        sleeper.append_exchange("one", "two", 1, 1)
        sleep_id = sleeper.begin_sleep(2)
        with Journal(path) as reader:  # e.g. `dreamchat history` meanwhile
            assert reader.sleeps()[0].status == "running"
        sleeper.finish_sleep(sleep_id, [m.id for m in sleeper.unslept_messages()], 2, 1.0, None)
        assert sleeper.last_sleep().id == sleep_id


def test_begin_sleep_fails_any_sleep_still_marked_running(journal):
    stale = journal.begin_sleep(2)  # the lock holder starts a new sleep: the old one cannot be running
    fresh = journal.begin_sleep(2)
    assert [(s.id, s.status, s.error) for s in journal.sleeps()] == [
        (stale, "failed", INTERRUPTED), (fresh, "running", None)]


@pytest.mark.parametrize("query", ['pickle\'s "cat', "AND", "NOT OR (", '"', "*", "cat:", "NEAR(a b)",
                                   "-x", "^start", "{col}", "a'b", "   "])
def test_search_survives_any_user_text(journal, query):
    journal.append_exchange("My cat Pickle's bowl", "The AND gate", 1, 1)
    assert isinstance(journal.search(query), list)


def test_search_ranks_and_snippets(journal):
    journal.append_exchange("I have two cats and a dog", "Cats are lovely.", 1, 1)
    journal.append_exchange("The weather is nice", "Indeed, sunny all day.", 1, 1)
    journal.append_exchange("My cat's name is Pickle", "Pickle the cat, noted.", 1, 1)
    hits = journal.search("cat")  # porter stemming: "cats" matches too
    assert {h.text for h in hits} == {"I have two cats and a dog", "Cats are lovely.",
                                      "My cat's name is Pickle", "Pickle the cat, noted."}
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)
    assert all("[" in h.snippet and "]" in h.snippet for h in hits)
    hits = journal.search("pickle's")
    assert hits and all("Pickle" in h.text for h in hits)
    assert journal.search("pickle cat", limit=1)[0].text in {"My cat's name is Pickle",
                                                             "Pickle the cat, noted."}
    assert journal.search("weather sunny") == []  # every word must appear in the same message
    assert journal.search("") == []


def test_search_of_slept_messages_puts_the_newest_first(journal):
    journal.append_exchange("My cat is Pickle", "Pickle, noted.", 1, 1)
    journal.append_exchange("Pickle sleeps all day", "Cats do.", 1, 1)
    sleep = journal.begin_sleep(2)
    journal.finish_sleep(sleep, [m.id for m in journal.unslept_messages()], 4, 1.0, "night-0001")
    journal.append_exchange("Pickle again today", "Ok.", 1, 1)                  # not slept
    assert [h.text for h in journal.search_slept("pickle")] == [
        "Pickle sleeps all day", "Pickle, noted.", "My cat is Pickle"]
    assert [h.text for h in journal.search_slept("pickle", limit=1)] == ["Pickle sleeps all day"]
    assert journal.search_slept("!!") == []


def test_what_the_memory_supplied_is_kept_with_the_reply_and_exported(journal):
    told, _ = journal.append_exchange("My cat is Pickle", "Noted.", 1, 1)
    sleep = journal.begin_sleep(2)
    journal.finish_sleep(sleep, [m.id for m in journal.unslept_messages()], 4, 1.0, "night-0001")
    _, reply = journal.append_exchange("Cat?", "It's Pickle, or Hilac.", 1, 1,
                                       [("Pickle", told, "My cat is [Pickle]"), ("Hilac", None, None)])
    pickle, hilac = journal.recalled([reply])
    assert (pickle.text, pickle.source_id, pickle.source_role, pickle.snippet) == ("Pickle", told, "user",
                                                                                   "My cat is [Pickle]")
    assert pickle.source_created == journal.messages()[0].created
    assert (hilac.source_id, hilac.source_role, hilac.source_created) == (None, None, None)
    assert journal.recalled([]) == [] and journal.recalled([told]) == [] and len(journal.recalled()) == 2
    exported = json.loads(journal.export("json"))["recollections"]
    assert [(r["message_id"], r["text"], r["source_id"]) for r in exported] == [
        (reply, "Pickle", told), (reply, "Hilac", None)]
    markdown = journal.export("md")
    assert "> from memory: “Pickle”: you, " in markdown and "“My cat is [Pickle]”" in markdown
    assert "> from memory: “Hilac”: in nothing slept before" in markdown


def test_forgetting_finds_whole_exchanges(journal):
    journal.append_exchange("My dog is called Biscuit.", "What a lovely name!", 1, 1)
    journal.append_exchange("The weather is grey.", "Biscuit would love a walk anyway.", 1, 1)
    journal.append_exchange("I work at the bakery.", "Nice.", 1, 1)
    found = journal.exchanges_matching("biscuit")
    assert [m.text for m in found] == ["My dog is called Biscuit.", "What a lovely name!",
                                       "The weather is grey.", "Biscuit would love a walk anyway."]
    assert journal.exchanges_matching("nothing like it") == [] and journal.exchanges_matching("!!") == []
    assert [m.text for m in journal.messages_by_id([found[2].id, 999, found[0].id])] == [
        "My dog is called Biscuit.", "The weather is grey."]


def test_forgotten_messages_leave_no_trace_in_the_files(tmp_path):
    path = tmp_path / "dreamchat.db"
    with Journal(path) as journal:
        told, _ = journal.append_exchange("My PIN is Zanzibar4471.", "Noted.", 1, 1)
        journal.append_exchange("I like tea.", "Tea is good.", 1, 1)
        sleep = journal.begin_sleep(2)
        journal.finish_sleep(sleep, [m.id for m in journal.unslept_messages()], 4, 1.0, "night-0001")
        _, reply = journal.append_exchange("Tea?", "You like tea.", 1, 1, [("tea", told + 2, "I like [tea]")])
        _, quoting = journal.append_exchange("PIN?", "It is 4471.", 1, 1,
                                             [("4471", told, "My PIN is [Zanzibar4471]")])
        forget = {m.id for m in journal.exchanges_matching("Zanzibar4471")}
        assert forget == {told, told + 1}
        assert journal.forget(forget) == 2
        assert [m.text for m in journal.messages()] == ["I like tea.", "Tea is good.", "Tea?", "You like tea.",
                                                        "PIN?", "It is 4471."]
        # The line under a later reply quoted the forgotten message: it goes too; others stay.
        assert [(r.message_id, r.text) for r in journal.recalled()] == [(reply, "tea")]
        assert journal.search("Zanzibar4471") == [] and journal.sleeps()[0].tokens == 4
    for file in tmp_path.iterdir():  # nor in free pages, the FTS index (lower case) or the WAL
        assert b"zanzibar4471" not in file.read_bytes().lower(), file.name
    with Journal(path) as journal:
        assert journal.message_count() == 6 and journal.search("tea")


def test_fts_query_quotes_every_term():
    assert fts_query('pickle\'s "cat') == '"pickle" "s" "cat"'
    assert fts_query("NOT near(é_1)") == '"NOT" "near" "é_1"'
    assert fts_query("  ") == ""


def test_export_json_round_trips(journal):
    journal.append_exchange("hé \"quoted\"\nline", "ok", 3, 1)
    sleep_id = journal.begin_sleep(3, kind="night")
    journal.finish_sleep(sleep_id, [m.id for m in journal.unslept_messages()], 4, 2.0, "night-0001")
    journal.append_exchange("later", "yes", 1, 1)
    data = json.loads(journal.export("json"))
    assert data["format"] == "dreamchat-journal"
    def parsed(row, *times):
        return {k: datetime.fromisoformat(v) if k in times and v else v for k, v in row.items()}

    assert [Message(**parsed(m, "created")) for m in data["messages"]] == journal.messages()
    assert [Sleep(**parsed(s, "started", "finished")) for s in data["sleeps"]] == journal.sleeps()


def test_export_markdown(journal):
    journal.append_exchange("What is 2+2?", "4.", 1, 1)
    sleep_id = journal.begin_sleep(2, kind="night")
    journal.finish_sleep(sleep_id, [m.id for m in journal.unslept_messages()], 2, 0.5, "n1")
    text = journal.export("md")
    day = f"{journal.messages()[0].created.astimezone():%Y-%m-%d}"
    assert text.startswith("# dreamchat journal\n\n## " + day)
    assert "**You**" in text and "What is 2+2?" in text and "**Assistant**" in text
    assert "night sleep" in text and "2 messages" in text
    with pytest.raises(ValueError):
        journal.export("csv")


def test_settings(journal):
    assert journal.get_setting("k") is None and journal.get_setting("k", "d") == "d"
    journal.set_setting("k", "1")
    journal.set_setting("k", "2")
    assert journal.get_setting("k") == "2"


def test_corrupt_file_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "dreamchat.db"
    garbage = b"this is not a database at all\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(JournalError) as err:
        Journal(path)
    msg = str(err.value)
    assert str(path) in msg and "untouched" in msg and "\n" not in msg
    assert path.read_bytes() == garbage
    assert [p.name for p in tmp_path.iterdir()] == ["dreamchat.db"]


def test_truncated_database_is_reported(tmp_path):
    path = tmp_path / "dreamchat.db"
    with Journal(path) as j:
        for i in range(300):
            j.append_exchange(f"message number {i} " * 20, "reply " * 30, 1, 1)
        j.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JournalError, match="untouched"):
        Journal(path)
    assert len(path.read_bytes()) == len(data) // 2


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(JournalError, match="pass --home"):
        Journal(tmp_path / "no" / "such" / "dreamchat.db")


def test_usable_from_a_worker_thread(journal):
    errors = []

    def work():
        try:
            journal.append_exchange("from a thread", "ok", 1, 1)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors and journal.messages()[0].text == "from a thread"


@pytest.mark.parametrize("free, expected", [(0, "no space left on .* free some disk space"),
                                            (10 << 30, "cannot open the journal .* disk I/O error")])
def test_a_journal_that_cannot_open_on_a_full_disk_says_so(tmp_path, monkeypatch, free, expected):
    from collections import namedtuple

    from dreamchat.storage import journal as journal_module

    def failing_connect(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")  # what SQLite says when it cannot make -shm

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(journal_module.sqlite3, "connect", failing_connect)
    monkeypatch.setattr(journal_module.shutil, "disk_usage", lambda folder: usage(free + 1, 1, free))
    with pytest.raises(JournalError, match=expected):
        Journal(tmp_path / "dreamchat.db")
