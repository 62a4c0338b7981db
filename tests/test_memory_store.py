import errno
import json
import os
import stat
import subprocess
import sys

import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from dreamchat.errors import MemoryStoreError
from dreamchat.storage import atomic
from dreamchat.storage.journal import Journal
from dreamchat.storage.memory_store import MemoryStore, SnapshotMeta, state_sha256

BACKBONE, TOWER = "b" * 64, "t" * 64
SHAPES = {"block0.S": (2, 4, 4), "block1.S": (2, 4, 4)}


def make_state(fill: float) -> dict[str, torch.Tensor]:
    return {name: torch.full(shape, float(fill)) + torch.arange(shape[-1]) for name, shape in SHAPES.items()}


def meta(**kw) -> SnapshotMeta:
    return SnapshotMeta(**{"backbone_fingerprint": BACKBONE, "tower_fingerprint": TOWER, "passes": 2,
                           "tokens": 100, "backbone_name": "SmolLM2-135M-Instruct", **kw})


def load(store, **kw):
    return store.load_latest(**{"backbone_fingerprint": BACKBONE, "tower_fingerprint": TOWER,
                                "shapes": SHAPES, **kw})


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def store(tmp_path):
    return MemoryStore(tmp_path / "memory", keep=3)


def test_empty_store(store):
    assert load(store) is None
    assert store.list() == [] and store.current() is None


def test_save_and_load_round_trip_with_metadata(store):
    state = make_state(1.0)
    snap = store.save(state, meta(sleep_id=4, layout="[H, K, V] per block"))
    assert snap.id == "night-0001" and snap.path.name == "night-0001.safetensors"
    assert (snap.night, snap.passes, snap.tokens, snap.sleep_id, snap.is_current) == (1, 2, 100, 4, True)
    assert snap.fingerprint == state_sha256(state) and snap.size_bytes == snap.path.stat().st_size
    assert stat.S_IMODE(os.stat(snap.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.folder).st_mode) == 0o700
    with safe_open(str(snap.path), framework="pt") as f:
        header = f.metadata()
    assert all(isinstance(v, str) for v in header.values())
    assert header["backbone_fingerprint"] == BACKBONE and header["tower_fingerprint"] == TOWER
    assert header["layout"] == "[H, K, V] per block" and header["format_version"] == "1"
    assert json.loads(header["shapes"])["block0.S"] == {"shape": [2, 4, 4], "dtype": "float32"}
    loaded = load(store)
    assert same(loaded.state, state) and loaded.warning is None and loaded.snapshot.id == "night-0001"


def test_a_snapshot_lists_the_sleeps_it_holds(store):
    assert store.save(make_state(1), meta(sleep_id=3, sleeps=(1, 3))).sleeps == (1, 3)
    assert store.list()[0].sleeps == (1, 3)
    assert store.save(make_state(2), meta(sleep_id=4)).sleeps is None  # unknown (older dreamchat)


def test_one_snapshot_loads_by_id_and_others_can_be_removed(store):
    first = store.save(make_state(1), meta())
    store.save(make_state(2), meta())
    state = store.load(first.id, backbone_fingerprint=BACKBONE, tower_fingerprint=TOWER, template=make_state(0))
    assert same(state, make_state(1))
    with pytest.raises(MemoryStoreError, match="another memory tower"):
        store.load(first.id, backbone_fingerprint=BACKBONE, tower_fingerprint="x" * 64, template=make_state(0))
    with pytest.raises(MemoryStoreError, match="is the memory in use"):
        store.remove({"night-0002"}, reason="forget")
    assert store.remove({"night-0001", "night-0009"}, reason="forget") == ["night-0001"]
    assert [s.id for s in store.list()] == ["night-0002"] and same(load(store).state, make_state(2))
    entry = json.loads((store.folder / "current.json").read_text())["log"][-1]
    assert entry["action"] == "forget: removed night-0001" and entry["current"] == "night-0002"


def test_night_counts_up_from_the_current_snapshot(store):
    assert store.save(make_state(1), meta()).night == 1
    assert store.save(make_state(2), meta()).night == 2
    assert store.save(make_state(3), meta(night=10)).night == 10  # the caller may say
    store.rollback("night-0001")
    snap = store.save(make_state(4), meta())
    assert (snap.id, snap.night, snap.parent) == ("night-0004", 2, "night-0001")


def test_template_sets_dtype_and_checks_shapes(store):
    store.save(make_state(1), meta())
    template = {k: torch.zeros(v, dtype=torch.float64) for k, v in SHAPES.items()}
    assert all(t.dtype == torch.float64 for t in load(store, shapes=None, template=template).state.values())


def test_refuses_memory_of_another_backbone_or_tower(store):
    store.save(make_state(1), meta())
    with pytest.raises(MemoryStoreError) as err:
        load(store, backbone_fingerprint="x" * 64)
    assert str(err.value) == (f"memory in {store.folder} was made for model SmolLM2-135M-Instruct "
                              f"(fingerprint {'b' * 12}); run with that model, or `dreamchat memory reset`")
    with pytest.raises(MemoryStoreError, match="another memory tower.*`dreamchat memory rebuild`"):
        load(store, tower_fingerprint="y" * 64)


def test_a_tower_that_reads_earlier_memories_loads_them_and_rolls_back_to_them(store):
    first = store.save(make_state(1), meta())
    store.save(make_state(2), meta())
    assert load(store, tower_fingerprint="y" * 64, compatible_towers=[TOWER]).snapshot.night == 2
    store.rollback(first.id, backbone_fingerprint=BACKBONE, tower_fingerprint="y" * 64, compatible_towers=[TOWER])
    assert store.current().id == first.id
    with pytest.raises(MemoryStoreError, match="another memory tower"):
        store.rollback(first.id, backbone_fingerprint=BACKBONE, tower_fingerprint="y" * 64,
                       compatible_towers=["z" * 64])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "delete"])
def test_damaged_latest_falls_back_to_previous_and_keeps_the_file(store, damage):
    good = make_state(1.0)
    store.save(good, meta())
    latest = store.save(make_state(2.0), meta())
    data = latest.path.read_bytes()
    if damage == "truncate":
        latest.path.write_bytes(data[: len(data) - 20])
    elif damage == "garbage":
        latest.path.write_bytes(b"\x00garbage" * 10)
    elif damage == "flip":  # one byte of tensor data: only the checksum can tell
        latest.path.write_bytes(data[:-3] + bytes([data[-3] ^ 0x40]) + data[-2:])
    else:
        latest.path.unlink()
    loaded = load(store)
    assert same(loaded.state, good) and loaded.snapshot.id == "night-0001"
    assert "night-0002" in loaded.warning and "using night-0001" in loaded.warning
    if damage != "delete":
        assert latest.path.exists()  # never deleted
        listed = {s.id: s for s in store.list()}
        assert listed["night-0002"].is_current
    assert store.current() is None or store.current().id == "night-0002"  # pointer not moved


def test_after_a_fallback_the_next_snapshot_grows_from_the_intact_one(store):
    store.save(make_state(1.0), meta())
    damaged = store.save(make_state(2.0), meta())
    damaged.path.write_bytes(b"junk")
    snap = store.save(make_state(3.0), meta())
    assert (snap.night, snap.parent) == (2, "night-0001")
    assert damaged.path.exists()


def test_bad_metadata_values_mark_the_snapshot_damaged(store):
    snap = store.save(make_state(1.0), meta())
    with safe_open(str(snap.path), framework="pt") as f:
        header = {**f.metadata(), "night": "many"}
    snap.path.write_bytes(safetensors.torch.save(make_state(1.0), metadata=header))
    (listed,) = store.list()
    assert listed.problem.startswith("bad metadata")
    with pytest.raises(MemoryStoreError, match="no intact memory snapshot"):
        load(store)


def test_wrong_shapes_or_names_fall_back(store):
    store.save(make_state(1.0), meta())
    store.save({"block0.S": torch.zeros(2, 4, 5), "block1.S": torch.zeros(2, 4, 4)}, meta())
    loaded = load(store)
    assert loaded.snapshot.id == "night-0001" and "shape (2, 4, 5)" in loaded.warning
    store.save({"other": torch.zeros(1)}, meta())
    assert "tensor names differ" in load(store).warning


def test_save_rejects_non_tensor_state(store):
    with pytest.raises(ValueError, match="torch.Tensor"):
        store.save({"S": [0.0, 1.0]}, meta())
    assert store.list() == []


def test_integer_state_tensors_round_trip(store):
    # The copy memory keeps the set of token ids it has written as a uint8 mask beside its floats.
    state = {"S": torch.ones(2, 3), "written": torch.tensor([0, 1, 1, 0], dtype=torch.uint8)}
    store.save(state, meta())
    loaded = store.load_latest(backbone_fingerprint=meta().backbone_fingerprint,
                               tower_fingerprint=meta().tower_fingerprint, template=state)
    assert loaded.state["written"].dtype == torch.uint8
    assert torch.equal(loaded.state["written"], state["written"])


def test_non_finite_state_is_not_saved(store):
    store.save(make_state(1.0), meta())
    with pytest.raises(MemoryStoreError, match="NaN.*untouched"):
        store.save(make_state(float("nan")), meta())
    assert [s.id for s in store.list()] == ["night-0001"]


def test_no_intact_snapshot_says_what_to_do(store):
    snap = store.save(make_state(1.0), meta())
    snap.path.write_bytes(b"junk")
    with pytest.raises(MemoryStoreError, match="no intact memory snapshot.*memory reset"):
        load(store)
    assert snap.path.exists()


def test_pruning_keeps_newest_current_and_parent(store):
    for i in range(5):
        store.save(make_state(i), meta())
    assert [s.id for s in store.list()] == ["night-0003", "night-0004", "night-0005"]
    store.rollback("night-0003")
    for i in range(3):
        store.save(make_state(10 + i), meta())
    # keep=3 newest (6, 7, 8) plus the parent of the current (7 is the parent of 8, already kept)
    assert [s.id for s in store.list()] == ["night-0006", "night-0007", "night-0008"]


def test_rollback_moves_the_pointer_only(store):
    first = make_state(1.0)
    store.save(first, meta())
    store.save(make_state(2.0), meta())
    snap = store.rollback(1)
    assert snap.is_current and snap.id == "night-0001"
    assert same(load(store).state, first)
    assert [s.id for s in store.list()] == ["night-0001", "night-0002"]
    pointer = json.loads((store.folder / "current.json").read_text())
    assert [e["action"] for e in pointer["log"]] == ["save", "save", "rollback"]
    with pytest.raises(MemoryStoreError, match="no memory snapshot 'night-0042'.*night-0001, night-0002"):
        store.rollback("night-0042")


def test_rollback_refuses_a_damaged_snapshot(store):
    snap = store.save(make_state(1.0), meta())
    store.save(make_state(2.0), meta())
    snap.path.write_bytes(b"junk")
    with pytest.raises(MemoryStoreError, match="cannot roll back to night-0001"):
        store.rollback("night-0001")
    assert store.current().id == "night-0002"


def test_reset_keeps_history_and_numbers_never_repeat(store):
    store.save(make_state(1.0), meta())
    store.reset()
    assert load(store) is None
    assert [s.is_current for s in store.list()] == [False]
    snap = store.save(make_state(2.0), meta())
    assert (snap.id, snap.night, snap.parent) == ("night-0002", 1, None)
    store.rollback("night-0001")  # the memory from before the reset is still there
    assert load(store).snapshot.id == "night-0001"


def test_crash_between_write_and_rename_leaves_previous_state(store, monkeypatch):
    first = make_state(1.0)
    store.save(first, meta())
    before = sorted(p.name for p in store.folder.iterdir())

    def crash(src, dst):
        raise OSError(errno.EIO, "simulated crash")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(MemoryStoreError, match="untouched"):
        store.save(make_state(2.0), meta())
    monkeypatch.undo()
    assert sorted(p.name for p in store.folder.iterdir()) == before  # no temp file, no new snapshot
    assert same(load(store).state, first)


def test_crash_while_writing_the_pointer_removes_the_new_snapshot(store, monkeypatch):
    store.save(make_state(1.0), meta())
    real_replace = os.replace

    def crash_on_pointer(src, dst):
        if str(dst).endswith("current.json"):
            raise OSError(errno.EIO, "simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", crash_on_pointer)
    with pytest.raises(MemoryStoreError):
        store.save(make_state(2.0), meta())
    monkeypatch.undo()
    assert [s.id for s in store.list()] == ["night-0001"]
    assert store.save(make_state(3.0), meta()).id == "night-0002"


def test_disk_full_message_and_cleanup(store, monkeypatch):
    store.save(make_state(1.0), meta())

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(MemoryStoreError) as err:
        store.save(make_state(2.0), meta())
    assert str(err.value) == (f"no space left on {store.folder}; free some space and sleep again; "
                              "yesterday's memory is untouched")
    monkeypatch.undo()
    assert [p.name for p in store.folder.iterdir() if p.name.startswith(".")] == []
    assert load(store).snapshot.id == "night-0001"


def test_leftover_temp_files_are_cleaned_by_the_next_save(store):
    store.save(make_state(1.0), meta())
    stale = store.folder / ".night-0002.safetensors.tmp-abc123"
    stale.write_bytes(b"half written")
    store.save(make_state(2.0), meta())
    assert not stale.exists()


def test_discard_unfinished_restores_the_parent(store):
    store.save(make_state(1.0), meta(sleep_id=1))
    store.save(make_state(2.0), meta(sleep_id=2))  # sleep 2 died before the journal recorded it
    assert store.discard_unfinished({1}).id == "night-0002"
    assert store.current().id == "night-0001"
    assert store.discard_unfinished({1}) is None
    # A fresh journal (no finished sleeps) or an old sleep id never throws memory away.
    store.save(make_state(3.0), meta(sleep_id=1))
    assert store.discard_unfinished(set()) is None
    assert store.discard_unfinished({7, 8}) is None
    assert store.current().id == "night-0003"


def test_damaged_pointer_falls_back_to_newest(store):
    store.save(make_state(1.0), meta())
    store.save(make_state(2.0), meta())
    (store.folder / "current.json").write_text("{not json")
    assert load(store).snapshot.id == "night-0002"
    assert store.save(make_state(3.0), meta()).id == "night-0003"  # numbering survives


def test_newer_format_is_refused(store):
    snap = store.save(make_state(1.0), meta())
    with safe_open(str(snap.path), framework="pt") as f:
        header = {**f.metadata(), "format_version": "99"}
    snap.path.write_bytes(safetensors.torch.save(make_state(1.0), metadata=header))
    with pytest.raises(MemoryStoreError, match="newer dreamchat"):
        load(store)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_state_round_trip(store):
    state = {k: v.cuda() for k, v in make_state(1.0).items()}
    store.save(state, meta())
    template = {k: torch.zeros(v, device="cuda") for k, v in SHAPES.items()}
    loaded = load(store, shapes=None, template=template)
    assert all(t.is_cuda for t in loaded.state.values())
    assert same({k: v.cpu() for k, v in loaded.state.items()}, make_state(1.0))


CRASH_AFTER_SNAPSHOT = """
import os, sys, torch
from dreamchat.storage.journal import Journal
from dreamchat.storage.memory_store import MemoryStore, SnapshotMeta
home = sys.argv[1]
journal, store = Journal(home + "/dreamchat.db"), MemoryStore(home + "/memory", keep=3)
journal.append_exchange("Day two.", "Noted.", 3, 2)
sleep_id = journal.begin_sleep(2, "night")
store.save({"S": torch.full((2, 2), 2.0)}, SnapshotMeta("b", "t", sleep_id=sleep_id))
os._exit(9)  # dies before journal.finish_sleep
"""


def test_journal_and_store_recover_together_from_a_crash_mid_sleep(tmp_path):
    journal, store = Journal(tmp_path / "dreamchat.db"), MemoryStore(tmp_path / "memory", keep=3)
    journal.append_exchange("Day one.", "Hello.", 3, 2)
    first = journal.begin_sleep(2, "night")
    snap = store.save({"S": torch.full((2, 2), 1.0)}, SnapshotMeta("b", "t", sleep_id=first))
    journal.finish_sleep(first, [m.id for m in journal.unslept_messages()], 5, 0.1, snap.id)
    journal.close()

    subprocess.run([sys.executable, "-c", CRASH_AFTER_SNAPSHOT, str(tmp_path)], timeout=120)
    assert store.current().id == "night-0002"  # the crashed sleep's snapshot became current

    journal = Journal(tmp_path / "dreamchat.db")  # next start: the sleep is marked failed ...
    assert [s.status for s in journal.sleeps()] == ["done", "failed"]
    finished = {s.id for s in journal.sleeps() if s.status == "done"}
    assert store.discard_unfinished(finished).id == "night-0002"  # ... and its snapshot undone
    loaded = store.load_latest(backbone_fingerprint="b", tower_fingerprint="t", shapes={"S": (2, 2)})
    assert loaded.snapshot.id == snap.id and torch.equal(loaded.state["S"], torch.full((2, 2), 1.0))
    assert [m.text for m in journal.unslept_messages()] == ["Day two.", "Noted."]  # day two to redo
    journal.close()
