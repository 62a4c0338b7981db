"""Rescale the copy read of a memory-weights file.

    python -m dreamchat.models.calibrate WEIGHTS --copy-scale 1.6 --out NEW_WEIGHTS

Training fits the copy read's scale (`copy_log_scale`: how hard a remembered token is pushed into
the backbone's logits) on synthetic episodes, where a fact is stated plainly and asked for plainly.
In natural conversation facts come in passing and are asked for sideways, the read is weaker, and
the trained scale lets the backbone's own guess win more often than it should: the shipped weights
recall more of the natural conversations with the read made 1.6 times stronger, and no less of the
synthetic ones (the model card's v12 section has the sweep and a check on conversations written
after it).

The scale acts only when memory is read, never when it is written, so a sleep gives the same state
before and after; every other tensor and the file's metadata are copied unchanged. The weights'
fingerprint changes, and the new file lists the old one's (and those the old one listed) under
`reads_memories_of`: a user's memories slept with the old weights keep loading, with no rebuild.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from dreamchat.errors import ModelError
from dreamchat.models.memory import (FORMAT_NAME, READS_MEMORIES_OF, MemoryConfig, memories_read,
                                     weights_fingerprint)

SCALE = "copy_log_scale"


def rescale_copy_read(path: str | Path, factor: float, out: str | Path) -> None:
    """Write `path` to `out` with the copy read's scale multiplied by `factor` (> 0)."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    if not math.isfinite(factor) or factor <= 0:
        raise ModelError(f"--copy-scale must be a positive number, not {factor}")
    path, out = Path(path), Path(out)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # missing or damaged: safetensors raises several types
        raise ModelError(f"cannot read memory weights at {path} ({exc.__class__.__name__}); "
                         f"give the path of a .memory.safetensors file") from exc
    if meta.get("format") != FORMAT_NAME or SCALE not in tensors:
        raise ModelError(f"{path} is not a dreamchat memory-weights file; give the path of a "
                         f".memory.safetensors file")
    try:
        before = weights_fingerprint(MemoryConfig.from_json(meta["config"]), tensors)
        earlier = memories_read(meta)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"memory weights at {path} have damaged metadata; give the path of an intact "
                         f".memory.safetensors file") from exc
    meta[READS_MEMORIES_OF] = json.dumps([before, *(f for f in earlier if f != before)])
    tensors[SCALE] = tensors[SCALE] + math.log(factor)
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(out)
    except OSError as exc:  # full disk, no permission: leave no half-written file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ModelError(f"cannot write {out} ({exc.strerror or exc}); free some space or choose "
                         f"another --out") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamchat.models.calibrate",
                                     description=__doc__.strip().split("\n")[0])
    parser.add_argument("weights", help="the memory-weights file to read")
    parser.add_argument("--copy-scale", type=float, required=True, metavar="F",
                        help="multiply the copy read's scale by F")
    parser.add_argument("--out", required=True, metavar="PATH", help="where to write the new weights")
    args = parser.parse_args(argv)
    try:
        rescale_copy_read(args.weights, args.copy_scale, args.out)
    except ModelError as err:
        print(f"dreamchat calibrate: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (copy read x{args.copy_scale:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
