"""The memory store: the fast weights S, one safetensors snapshot per sleep.

    memory/
      night-0007.safetensors   a snapshot: the state tensors + string metadata (below)
      night-0008.safetensors
      current.json             which snapshot is live ("current": "night-0008" | null), the next
                               number to use, and a short log of saves / rollbacks / resets

Snapshots are numbered by a counter that only grows (never reused, even after pruning or a reset),
and are never edited: a sleep writes a new one, `rollback` and `reset` only move the pointer. Every
write is atomic (see atomic.py), so a crash or a full disk leaves yesterday's memory as it was.

Loading checks that the memory belongs to this backbone and this tower (their fingerprints are in
the metadata), that the tensor names and shapes are what the tower expects, and that the bytes are
the ones written (a sha256 in the metadata). A damaged current snapshot is kept on disk, and the
newest older one that is intact is used instead, with a warning saying so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open

from dreamchat.errors import MemoryStoreError, NoIntactMemory, TowerMismatch
from dreamchat.paths import make_private_dir
from dreamchat.storage.atomic import atomic_write_bytes, atomic_write_text, disk_full, is_temp_file

log = logging.getLogger(__name__)

FORMAT = "dreamchat-memory"
FORMAT_VERSION = 1
POINTER_FILE = "current.json"
_SNAPSHOT_NAME = re.compile(r"^night-(\d{4,})\.safetensors$")
_LOG_LENGTH = 100  # pointer history entries kept in current.json


def snapshot_id(number: int) -> str:
    return f"night-{number:04d}"


@dataclass(frozen=True)
class SnapshotMeta:
    """What the caller knows about a new snapshot; the store adds ids, times and checksums."""

    backbone_fingerprint: str
    tower_fingerprint: str
    passes: int = 0
    tokens: int = 0
    night: int | None = None  # nights of memory in this state; None = one more than the current one
    sleep_id: int | None = None  # the journal's sleep that wrote it (see discard_unfinished)
    backbone_name: str = ""  # shown when the memory is refused for another model
    layout: str = ""  # the tower's state layout, e.g. "[H, K, V] per GDN block"
    sleeps: tuple[int, ...] | None = None  # every journal sleep consolidated into this state, in order


@dataclass(frozen=True)
class Snapshot:
    id: str  # "night-0007"
    number: int  # 7
    path: Path
    created: datetime  # UTC
    size_bytes: int
    passes: int
    tokens: int
    night: int
    backbone_fingerprint: str
    tower_fingerprint: str
    backbone_name: str
    sleep_id: int | None
    parent: str | None  # the snapshot that was current when this one was written
    fingerprint: str  # sha256 of the state tensors: identifies this memory's content
    is_current: bool
    problem: str | None = None  # why the file cannot be read; None = the header is fine
    # The journal sleeps whose days this memory holds, oldest first; None for snapshots written
    # before dreamchat recorded them (and for damaged files).
    sleeps: tuple[int, ...] | None = None


@dataclass
class LoadedMemory:
    state: dict[str, torch.Tensor]
    snapshot: Snapshot
    warning: str | None = None  # set when a damaged newer snapshot was skipped


class _Unusable(Exception):
    """A snapshot file that cannot be used: damaged, truncated or not what the tower expects."""


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over tensor names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read_header(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise _Unusable("the file is missing") from None
    except Exception as err:  # safetensors raises its own SafetensorError for bad headers
        raise _Unusable(f"bad header: {err}") from None
    if meta.get("format") != FORMAT:
        raise _Unusable("not a dreamchat memory snapshot")
    try:
        version = int(meta["format_version"])
        for key in ("night", "passes", "tokens"):
            int(meta[key])
        datetime.fromisoformat(meta["created"])
    except (KeyError, ValueError) as err:
        raise _Unusable(f"bad metadata ({err})") from None
    if version > FORMAT_VERSION:
        raise MemoryStoreError(f"memory snapshot {path} was written by a newer dreamchat; upgrade dreamchat")
    return meta


def _sleeps(meta: Mapping[str, str]) -> tuple[int, ...] | None:
    try:
        return tuple(int(i) for i in json.loads(meta["sleeps"]))
    except (KeyError, ValueError, TypeError):  # older snapshots (no field) or a damaged one
        return None


class MemoryStore:
    """Fast-weight snapshots of one home. Only the process holding the instance lock writes."""

    def __init__(self, folder: str | Path, keep: int = 7):
        if keep < 1:
            raise ValueError(f"keep must be at least 1 snapshot, got {keep}")
        self.folder = Path(folder)
        self.keep = keep

    # -- the pointer --------------------------------------------------------------------------

    def _files(self) -> dict[int, Path]:
        if not self.folder.is_dir():
            return {}
        found = {}
        for path in self.folder.iterdir():
            m = _SNAPSHOT_NAME.match(path.name)
            if m:
                found[int(m.group(1))] = path
        return dict(sorted(found.items()))

    def _pointer(self) -> dict:
        path = self.folder / POINTER_FILE
        files = self._files()
        fallback = {"current": snapshot_id(max(files)) if files else None, "next": 1, "log": []}
        try:
            pointer = json.loads(path.read_text())
            pointer["current"], pointer["next"], pointer["log"]  # noqa: B018 - all three must exist
        except FileNotFoundError:
            return fallback
        except (ValueError, KeyError, TypeError, OSError) as err:
            log.warning("%s is unreadable (%s); using the newest snapshot", path, err)
            return fallback
        return pointer

    def _set_pointer(self, current: str | None, action: str, next_number: int | None = None) -> None:
        pointer = self._pointer()
        files = self._files()
        pointer["next"] = max(pointer["next"], next_number or 0, max(files, default=0) + 1)
        pointer["current"] = current
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        pointer["log"] = [*pointer["log"], {"at": when, "action": action, "current": current}][-_LOG_LENGTH:]
        atomic_write_text(self.folder / POINTER_FILE, json.dumps(pointer, indent=1) + "\n")

    def _resolve(self, ref: str | int) -> tuple[int, Path]:
        """'night-0007', 'night-0007.safetensors', '7' or 7 -> (7, path)."""
        text = str(ref).strip().removesuffix(".safetensors").removeprefix("night-")
        files = self._files()
        if not text.isdigit() or int(text) not in files:
            have = ", ".join(snapshot_id(n) for n in files) or "none"
            raise MemoryStoreError(f"no memory snapshot '{ref}' in {self.folder}; available: {have}")
        return int(text), files[int(text)]

    # -- reading --------------------------------------------------------------------------------

    def _snapshot(self, number: int, path: Path, current: str | None) -> Snapshot:
        """A snapshot's description from its header; a damaged file gets `problem` set."""
        stat = path.stat()
        try:
            meta, problem = _read_header(path), None
        except _Unusable as err:
            meta, problem = {}, str(err)
        created = meta.get("created")
        return Snapshot(
            id=snapshot_id(number), number=number, path=path,
            created=(datetime.fromisoformat(created) if created
                     else datetime.fromtimestamp(stat.st_mtime, timezone.utc)),
            size_bytes=stat.st_size, passes=int(meta.get("passes", 0)), tokens=int(meta.get("tokens", 0)),
            night=int(meta.get("night", 0)), backbone_fingerprint=meta.get("backbone_fingerprint", ""),
            tower_fingerprint=meta.get("tower_fingerprint", ""), backbone_name=meta.get("backbone_name", ""),
            sleep_id=int(meta["sleep_id"]) if meta.get("sleep_id") else None,
            parent=meta.get("parent") or None, fingerprint=meta.get("sha256", ""),
            is_current=snapshot_id(number) == current, problem=problem, sleeps=_sleeps(meta))

    def list(self) -> list[Snapshot]:
        """Every snapshot on disk, oldest first (damaged ones included, with `problem` set)."""
        current = self._pointer()["current"]
        return [self._snapshot(n, p, current) for n, p in self._files().items()]

    def current(self) -> Snapshot | None:
        return next((s for s in self.list() if s.is_current), None)

    @property
    def current_id(self) -> str | None:
        """The snapshot the pointer names, whose file may be damaged or gone; None: an empty memory."""
        return self._pointer()["current"]

    def base(self) -> Snapshot | None:
        """The snapshot whose state is the memory in use: the current one, or the intact one before
        it that loading falls back to; None for an empty memory."""
        return self._base(self._pointer()["current"])

    def _base(self, current: str | None) -> Snapshot | None:
        """The memory a new snapshot grows from: the current one, or (when its file is damaged) the
        newest readable one before it, as load_latest would fall back to."""
        if current is None:
            return None
        limit = int(current.removeprefix("night-"))
        readable = [s for s in self.list() if s.number <= limit and s.problem is None]
        return readable[-1] if readable else None

    def _load(self, path: Path, expected: Mapping[str, tuple[int, ...]] | None) -> dict[str, torch.Tensor]:
        """Read every tensor and check names, shapes, values and the checksum; _Unusable if not."""
        meta = _read_header(path)
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                state = {name: f.get_tensor(name) for name in f.keys()}
        except Exception as err:
            raise _Unusable(f"bad tensor data: {err}") from None
        if expected is not None:
            if set(state) != set(expected):
                missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
                raise _Unusable(f"tensor names differ from the tower's (missing {missing}, unexpected {extra})")
            for name, shape in expected.items():
                if tuple(state[name].shape) != tuple(shape):
                    raise _Unusable(f"tensor {name} has shape {tuple(state[name].shape)}, the tower "
                                    f"expects {tuple(shape)}")
        for name, t in state.items():
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise _Unusable(f"tensor {name} holds non-finite values")
        if meta.get("sha256") != state_sha256(state):
            raise _Unusable("checksum mismatch: the file was changed or damaged after it was written")
        return state

    def _check_fingerprints(self, snap: Snapshot, backbone_fingerprint: str, tower_fingerprint: str,
                            compatible_towers: Collection[str] = ()) -> None:
        if snap.backbone_fingerprint != backbone_fingerprint:
            name = snap.backbone_name or "another model"
            raise MemoryStoreError(
                f"memory in {self.folder} was made for model {name} (fingerprint "
                f"{snap.backbone_fingerprint[:12]}); run with that model, or `dreamchat memory reset`")
        if snap.tower_fingerprint != tower_fingerprint and snap.tower_fingerprint not in compatible_towers:
            raise TowerMismatch(
                f"memory in {self.folder} was made by another memory tower (fingerprint "
                f"{snap.tower_fingerprint[:12]}, this one is {tower_fingerprint[:12]}); "
                "run `dreamchat memory rebuild` to sleep again on your journal with this tower, or use "
                "the tower it was made with")

    def load_latest(self, *, backbone_fingerprint: str, tower_fingerprint: str,
                    compatible_towers: Collection[str] = (),
                    shapes: Mapping[str, Sequence[int]] | None = None,
                    template: Mapping[str, torch.Tensor] | None = None) -> LoadedMemory | None:
        """The current memory, or None when there is none yet (fresh home or after a reset).

        shapes (or template, a state whose names, shapes, dtype and device the result takes) say
        what the tower expects. A memory made for another backbone or tower raises MemoryStoreError,
        except a tower in compatible_towers (earlier weights whose memories this tower reads unchanged).
        A damaged current snapshot falls back to the newest intact older one (the warning says so);
        when none is intact, MemoryStoreError says what to do.
        """
        if template is not None:
            shapes = {name: tuple(t.shape) for name, t in template.items()}
        expected = None if shapes is None else {k: tuple(v) for k, v in shapes.items()}
        current = self._pointer()["current"]
        if current is None:
            return None
        by_id = {s.id: s for s in self.list()}
        if current not in by_id:
            problems = [f"{current}: the file is missing"]
            candidates = [s for s in by_id.values() if s.number < int(current.removeprefix("night-"))]
        else:
            problems = []
            candidates = [s for s in by_id.values() if s.number <= by_id[current].number]
        for snap in sorted(candidates, key=lambda s: -s.number):
            if snap.problem is None:
                try:
                    self._check_fingerprints(snap, backbone_fingerprint, tower_fingerprint, compatible_towers)
                except MemoryStoreError:
                    if snap.id == current:
                        raise  # the live memory is someone else's: refuse, do not guess
                    problems.append(f"{snap.id}: made for another model or tower")
                    continue
                try:
                    state = self._load(snap.path, expected)
                except _Unusable as err:
                    problems.append(f"{snap.id}: {err}")
                    continue
            else:
                problems.append(f"{snap.id}: {snap.problem}")
                continue
            if template is not None:
                state = {k: v.to(device=template[k].device, dtype=template[k].dtype) for k, v in state.items()}
            warning = None
            if problems:
                warning = (f"memory snapshot {'; '.join(problems)}; using {snap.id} (night {snap.night}, "
                           f"{snap.created:%Y-%m-%d %H:%M} UTC) instead; the damaged file is kept in {self.folder}")
            return LoadedMemory(state=state, snapshot=snap, warning=warning)
        raise NoIntactMemory(f"no intact memory snapshot in {self.folder} ({'; '.join(problems)}); "
                             "`dreamchat memory rebuild` sleeps again on your journal's days (nothing is lost), "
                             "or `dreamchat memory rollback ID` to an intact one, or `dreamchat memory reset`")

    def load(self, snapshot_ref: str | int, *, backbone_fingerprint: str, tower_fingerprint: str,
             compatible_towers: Collection[str] = (),
             template: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The state of one snapshot (not necessarily the current one), checked as `load_latest`
        checks it; MemoryStoreError when it cannot be used with this backbone and tower."""
        number, path = self._resolve(snapshot_ref)
        snap = self._snapshot(number, path, None)
        if snap.problem:
            raise MemoryStoreError(f"memory snapshot {snap.id} cannot be read: {snap.problem}")
        self._check_fingerprints(snap, backbone_fingerprint, tower_fingerprint, compatible_towers)
        try:
            state = self._load(path, {name: tuple(t.shape) for name, t in template.items()})
        except _Unusable as err:
            raise MemoryStoreError(f"memory snapshot {snap.id} cannot be read: {err}") from None
        return {k: v.to(device=template[k].device, dtype=template[k].dtype) for k, v in state.items()}

    # -- writing --------------------------------------------------------------------------------

    def save(self, state: Mapping[str, torch.Tensor], meta: SnapshotMeta) -> Snapshot:
        """Write `state` as a new snapshot and make it current, atomically; then prune old ones."""
        for name, t in state.items():
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"state tensor {name!r} must be a torch.Tensor")
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise MemoryStoreError(f"the new memory has non-finite values (NaN or inf) in {name}; it was "
                                       "not saved and yesterday's memory is untouched")
        make_private_dir(self.folder)
        for leftover in self.folder.iterdir():  # temp files of a crashed save
            if is_temp_file(leftover):
                leftover.unlink(missing_ok=True)
        tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
        pointer = self._pointer()
        number = max(pointer["next"], max(self._files(), default=0) + 1)
        base = self._base(pointer["current"])
        parent = base.id if base else None
        night = meta.night if meta.night is not None else (base.night + 1 if base else 1)
        header = {
            "format": FORMAT, "format_version": str(FORMAT_VERSION),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "backbone_fingerprint": meta.backbone_fingerprint, "tower_fingerprint": meta.tower_fingerprint,
            "backbone_name": meta.backbone_name, "night": str(night), "passes": str(meta.passes),
            "tokens": str(meta.tokens), "sleep_id": "" if meta.sleep_id is None else str(meta.sleep_id),
            "parent": parent or "", "sha256": state_sha256(tensors), "layout": meta.layout,
            "sleeps": "" if meta.sleeps is None else json.dumps(list(meta.sleeps)),
            "shapes": json.dumps({k: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
                                  for k, t in sorted(tensors.items())}),
        }
        path = self.folder / f"{snapshot_id(number)}.safetensors"
        try:
            # Serialised in memory and written by Python (not save_file) so that a full disk surfaces
            # as OSError(ENOSPC) rather than an opaque Rust error; fast weights are a few MB.
            atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=header))
            try:
                self._set_pointer(snapshot_id(number), "save", next_number=number + 1)
            except OSError:
                path.unlink(missing_ok=True)  # never current: remove it so the folder stays as it was
                raise
        except OSError as err:
            if disk_full(err):
                raise MemoryStoreError(f"no space left on {self.folder}; free some space and sleep again; "
                                       "yesterday's memory is untouched") from err
            raise MemoryStoreError(f"cannot write a memory snapshot in {self.folder}: "
                                   f"{err.strerror or err}; yesterday's memory is untouched") from err
        log.info("memory snapshot %s written (night %d, %d tokens)", path.name, night, meta.tokens)
        self.prune()
        return self._snapshot(number, path, snapshot_id(number))

    def rollback(self, snapshot_ref: str | int, *, backbone_fingerprint: str | None = None,
                 tower_fingerprint: str | None = None, compatible_towers: Collection[str] = ()) -> Snapshot:
        """Make an older (intact) snapshot current. Nothing is deleted. With the fingerprints given,
        a snapshot made for another backbone or tower is refused before anything changes."""
        number, path = self._resolve(snapshot_ref)
        try:
            self._load(path, None)
        except _Unusable as err:
            raise MemoryStoreError(f"cannot roll back to {snapshot_id(number)}: {err}; pick another "
                                   "snapshot (`dreamchat memory`)") from None
        if backbone_fingerprint is not None and tower_fingerprint is not None:
            self._check_fingerprints(self._snapshot(number, path, None), backbone_fingerprint, tower_fingerprint,
                                     compatible_towers)
        self._set_pointer(snapshot_id(number), "rollback")
        log.info("memory rolled back to %s", snapshot_id(number))
        return self._snapshot(number, path, snapshot_id(number))

    def reset(self) -> None:
        """Start from an empty memory. Old snapshots stay (for rollback) until pruned."""
        make_private_dir(self.folder)
        self._set_pointer(None, "reset")
        log.info("memory reset to empty")
        self.prune()

    def discard_unfinished(self, finished_sleep_ids: Collection[int]) -> Snapshot | None:
        """Undo a snapshot whose sleep never finished (the process died between writing the snapshot
        and recording the sleep in the journal): make its parent current again. Returns the snapshot
        undone, if any. The file is kept until pruned.

        Only a snapshot written by a sleep newer than every finished one is undone, so a journal that
        was moved away and started afresh cannot make the store throw its memory away.
        """
        current = self.current()
        if (current is None or current.sleep_id is None or not finished_sleep_ids
                or current.sleep_id in finished_sleep_ids or current.sleep_id < max(finished_sleep_ids)):
            return None
        # Back to what was current before the save: its parent, unless that pointed at a damaged
        # snapshot (the parent is then the older one in use, which lacks the days the damaged one held).
        history = self._pointer()["log"]
        before = current.parent
        if len(history) >= 2 and history[-1].get("action") == "save" and history[-1].get("current") == current.id:
            before = history[-2].get("current")
        log.warning("memory snapshot %s was written by sleep %d, which never finished; using %s",
                    current.id, current.sleep_id, before or "an empty memory")
        self._set_pointer(before, "discard")
        return current

    def remove(self, snapshot_ids: Collection[str], reason: str) -> list[str]:
        """Delete these snapshots for good (to forget what they hold: a rollback could bring it
        back). The current one cannot be removed; write its replacement first. Returns the ids
        deleted; the pointer's log records them with `reason`, never what they held."""
        current = self._pointer()["current"]
        if current in snapshot_ids:
            raise MemoryStoreError(f"{current} is the memory in use; it cannot be removed")
        removed = []
        for number, path in self._files().items():
            if snapshot_id(number) in snapshot_ids:
                path.unlink(missing_ok=True)
                removed.append(snapshot_id(number))
        if removed:
            self._set_pointer(current, f"{reason}: removed {', '.join(removed)}")
            log.info("removed memory snapshots %s (%s)", ", ".join(removed), reason)
        return removed

    def prune(self) -> list[Path]:
        """Delete all but the newest `keep` snapshots; the current one and its parent always stay."""
        files = self._files()
        current = self.current()
        protected = {current.id, current.parent} if current else set()
        removed = []
        for number in list(files)[:-self.keep]:
            if snapshot_id(number) not in protected:
                files[number].unlink(missing_ok=True)
                removed.append(files[number])
        if removed:
            log.info("pruned memory snapshots %s", ", ".join(p.name for p in removed))
        return removed
