"""`dreamchat backup` / `restore`: one file that holds a home, written while dreamchat runs, read back
only into an empty home, every damage a one-line error. On the real Assistant with the tiny GGUF."""

from __future__ import annotations

import dataclasses
import errno
import gzip
import io
import sqlite3
import tarfile

import pytest
import torch

from dreamchat.assistant import Assistant
from dreamchat.backup import BackupError, backup, read_backup, restore
from dreamchat.cli import main
from dreamchat.config import Config
from dreamchat.paths import Paths

from test_cli import assert_one_line_error


def _config() -> Config:
    config = Config()
    return dataclasses.replace(
        config,
        sampling=dataclasses.replace(config.sampling, temperature=0.0, max_tokens=8, seed=1),
        model=dataclasses.replace(config.model, n_ctx=512, threads=2),
    )


@pytest.fixture
def open_home(tmp_path, tiny_gguf, tiny_weights):
    opened = []

    def _open(name: str) -> Assistant:
        assistant = Assistant.open(home=str(tmp_path / name), model=str(tiny_gguf), weights=str(tiny_weights),
                                   config=_config())
        opened.append(assistant)
        return assistant

    yield _open
    for assistant in opened:
        assistant.close()


def _say(assistant: Assistant, *texts: str) -> None:
    for text in texts:
        list(assistant.send(text))


def _rows(db_path, table: str, columns: str) -> list:
    with sqlite3.connect(db_path) as db:
        return db.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_home_backed_up_while_open_comes_back_whole_in_a_new_home(open_home, tmp_path):
    alice = open_home("alice")
    _say(alice, "My cat is called Pickle.", "I live in Lyon.")
    alice.sleep(passes=1)
    _say(alice, "My sister is Ingrid.")
    alice.paths.config_file.write_text("[sampling]\ntemperature = 0.3\n")
    # The TUI holds the home's lock all day: a backup must not need it. A folder gets a dated name.
    (tmp_path / "out").mkdir()
    summary = backup(alice.paths, tmp_path / "out")
    assert summary.path.parent == tmp_path / "out" and summary.path.name.endswith(".tar.gz")
    assert (summary.messages, summary.nights, summary.snapshots, summary.config) == (6, 1, 1, True)
    assert summary.path.stat().st_mode & 0o077 == 0  # the conversation stays private

    restored_paths = Paths.for_home(tmp_path / "bob")
    again, note = restore(summary.path, restored_paths)
    assert again.messages == 6 and "config.toml restored" in note
    assert restored_paths.config_file.read_text() == "[sampling]\ntemperature = 0.3\n"
    for table, columns in (("messages", "id, role, text, created, sleep_id"), ("sleeps", "id, status, snapshot")):
        assert _rows(restored_paths.journal_file, table, columns) == _rows(alice.paths.journal_file, table, columns)
    memory = {p.name: p.read_bytes() for p in alice.paths.memory_dir.iterdir()}
    assert {p.name: p.read_bytes() for p in restored_paths.memory_dir.iterdir()} == memory

    bob = open_home("bob")  # the restored home opens with the same memory and the same day
    assert _same_state(bob._state, alice._state)
    assert bob.backbone.tokens == alice._render(alice.journal.unslept_messages())
    _say(alice, "Still here.")  # and the original carries on
    assert len(alice.history()) == 8


def test_a_backup_taken_during_a_sleep_restores_the_memory_before_it(open_home, tmp_path, monkeypatch):
    alice = open_home("alice")
    _say(alice, "Day one.")
    alice.sleep(passes=1)
    before = {k: v.clone() for k, v in alice._state.items()}
    _say(alice, "Day two: my cat is called Pickle.")
    taken = []
    finish = alice.journal.finish_sleep

    def backup_then_finish(*args, **kwargs):
        # The new snapshot is on disk, the journal does not say the sleep finished yet.
        taken.append(backup(alice.paths, tmp_path / "mid-sleep.tar.gz"))
        return finish(*args, **kwargs)

    monkeypatch.setattr(alice.journal, "finish_sleep", backup_then_finish)
    alice.sleep(passes=1)
    assert taken[0].snapshots == 2 and taken[0].nights == 1
    restore(taken[0].path, Paths.for_home(tmp_path / "bob"))
    bob = open_home("bob")
    # The snapshot of the unfinished sleep is rolled back, and its day is still today's, to sleep again.
    assert _same_state(bob._state, before)
    assert [m.text for m in bob.journal.unslept_messages() if m.role == "user"] == ["Day two: my cat is called Pickle."]
    assert bob.journal.sleeps()[-1].status == "failed"
    assert bob.sleep(passes=1) is not None


def test_restore_never_writes_over_a_home_in_use(open_home, tmp_path, capsys):
    alice = open_home("alice")
    _say(alice, "Hello.")
    alice.paths.config_file.write_text("[sampling]\nseed = 1\n")
    archive = backup(alice.paths, tmp_path / "a.tar.gz").path
    carol = open_home("carol")
    _say(carol, "Carol's own day.")
    carol.close()
    before = _rows(carol.paths.journal_file, "messages", "id, text")
    assert main(["restore", str(archive), "--home", str(carol.paths.home)]) == 1
    assert_one_line_error(capsys.readouterr().err, "already holds a journal with 2 messages", "--home DIR")
    assert _rows(carol.paths.journal_file, "messages", "id, text") == before
    # A home whose memory has snapshots but whose journal is gone is refused too.
    carol.paths.journal_file.unlink()
    (carol.paths.memory_dir / "night-0001.safetensors").write_bytes(b"memory of something")
    with pytest.raises(BackupError, match="already holds memory snapshots"):
        restore(archive, carol.paths)
    # A home that only has settings (and an empty journal) is fine; its settings are kept.
    dave = Paths.for_home(tmp_path / "dave")
    dave.home.mkdir()
    dave.config_file.write_text("[sampling]\nseed = 3\n")
    _, note = restore(archive, dave)
    assert "Kept your config.toml" in note and dave.config_file.read_text() == "[sampling]\nseed = 3\n"
    assert dave.config_file.with_name("config.toml.from-backup").is_file()


def _tamper(archive, tmp_path, change) -> object:
    """A copy of `archive` with its members passed through change(name, data) -> data | None."""
    out = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for info in src.getmembers():
            data = change(info.name, src.extractfile(info).read())
            if data is not None:
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
    return out


def test_a_damaged_backup_is_refused_before_anything_is_written(open_home, tmp_path, capsys):
    alice = open_home("alice")
    _say(alice, "Hello.")
    alice.sleep(passes=1)
    archive = backup(alice.paths, tmp_path / "a.tar.gz").path
    target = tmp_path / "bob"

    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    flipped = _tamper(archive, tmp_path, lambda name, data: data[:-1] + bytes([data[-1] ^ 1])
                      if name.endswith(".safetensors") else data)
    cases = [
        (cut, "may be damaged or cut short"),
        (flipped, "does not match its checksum"),
        (tmp_path / "missing.tar.gz", "no backup at"),
    ]
    for path, needle in cases:
        assert main(["restore", str(path), "--home", str(target)]) == 1
        assert_one_line_error(capsys.readouterr().err, needle)
        assert not (target / "dreamchat.db").exists() and not (target / "memory").exists()

    no_manifest = _tamper(archive, tmp_path, lambda name, data: None if name.endswith("manifest.json") else data)
    with pytest.raises(BackupError, match="no valid manifest"):
        read_backup(no_manifest)
    not_tar = tmp_path / "notes.tar.gz"
    not_tar.write_bytes(gzip.compress(b"just some text"))
    with pytest.raises(BackupError, match="not a readable dreamchat backup"):
        read_backup(not_tar)
    # A member outside the manifest (say, ../../.bashrc) is never written anywhere.
    with tarfile.open(archive) as src, tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as dst:
        for info in src.getmembers():
            dst.addfile(info, src.extractfile(info))
        evil = tarfile.TarInfo("dreamchat-backup/memory/../../evil")
        evil.size = 4
        dst.addfile(evil, io.BytesIO(b"evil"))
    restore(tmp_path / "evil.tar.gz", Paths.for_home(tmp_path / "erin"))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "erin" / "evil").exists()


def test_backup_errors_are_one_line(open_home, tmp_path, capsys, monkeypatch):
    assert main(["backup", "--home", str(tmp_path / "nobody")]) == 1
    assert_one_line_error(capsys.readouterr().err, "nothing to back up")
    alice = open_home("alice")
    _say(alice, "Hello.")

    def full_disk(path, write, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dreamchat.backup.atomic_write", full_disk)
    assert main(["backup", str(tmp_path / "b.tar.gz"), "--home", str(alice.paths.home)]) == 1
    assert_one_line_error(capsys.readouterr().err, "free some disk space")
    assert not (tmp_path / "b.tar.gz").exists()
    monkeypatch.undo()
    assert main(["backup", str(tmp_path / "b.tar.gz"), "--home", str(alice.paths.home)]) == 0
    assert "Backed up 2 messages, 0 nights slept and 0 memory snapshots" in capsys.readouterr().out

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dreamchat.db").write_bytes(b"not a database at all" * 100)
    assert main(["backup", str(tmp_path / "c.tar.gz"), "--home", str(broken)]) == 1
    assert_one_line_error(capsys.readouterr().err, "cannot read the journal", "dreamchat doctor")
    assert not (tmp_path / "c.tar.gz").exists()
