"""How long `dreamchat backup` and `dreamchat restore` take on a home in long use.

Builds a home with a journal of --days days of --messages messages each (text of a realistic
length, FTS index included) and --snapshots memory snapshots of the shipped memory's size, then
times a backup and a restore into a new home, side by side in one run.

    python benchmarks/bench_backup.py                     # a year: 365 days x 60 messages
    python benchmarks/bench_backup.py --days 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from dreamchat.backup import backup, restore
from dreamchat.paths import Paths
from dreamchat.storage.journal import Journal

WORDS = ("the a my and to of is it that was for on with you we they this have at be from or what "
         "cat dog sister brother work Lisbon coffee train garden music book river code meeting "
         "tomorrow yesterday weekend birthday dinner recipe project deadline holiday").split()
SNAPSHOT_BYTES = 1_147_984  # a night-NNNN.safetensors of the shipped memory tower


def build_home(home: Path, days: int, per_day: int, snapshots: int) -> None:
    paths = Paths.for_home(home)
    home.mkdir(parents=True)
    rng = random.Random(0)
    with Journal(paths.journal_file) as journal:
        with journal._writing():  # one transaction: building a year one exchange at a time takes minutes
            for day in range(days):
                for i in range(per_day):
                    text = " ".join(rng.choices(WORDS, k=rng.randint(8, 60)))
                    journal.db.execute("INSERT INTO messages (role, text, tokens, created) VALUES (?, ?, ?, ?)",
                                       ["user" if i % 2 == 0 else "assistant", text, len(text) // 4,
                                        f"2026-01-01T{day % 24:02d}:00:00+00:00"])
    paths.memory_dir.mkdir()
    for n in range(1, snapshots + 1):
        (paths.memory_dir / f"night-{n:04d}.safetensors").write_bytes(os.urandom(SNAPSHOT_BYTES))
    (paths.memory_dir / "current.json").write_text(json.dumps({"current": f"night-{snapshots:04d}",
                                                               "next": snapshots + 1, "log": []}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--messages", type=int, default=60, help="messages a day")
    parser.add_argument("--snapshots", type=int, default=7, help="memory snapshots kept (sleep.keep_snapshots)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        build_home(scratch / "home", args.days, args.messages, args.snapshots)
        journal_mb = (scratch / "home" / "dreamchat.db").stat().st_size / 1e6
        started = time.perf_counter()
        done = backup(Paths.for_home(scratch / "home"), scratch / "home.tar.gz")
        backup_s = time.perf_counter() - started
        started = time.perf_counter()
        restore(done.path, Paths.for_home(scratch / "restored"))
        restore_s = time.perf_counter() - started
    print(json.dumps({
        "messages": done.messages, "journal_mb": round(journal_mb, 1), "snapshots": done.snapshots,
        "archive_mb": round(done.size_bytes / 1e6, 1), "backup_s": round(backup_s, 2),
        "restore_s": round(restore_s, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
