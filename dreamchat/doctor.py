"""`dreamchat doctor`: what is installed, where things are, and whether each part works.

Each check prints one line, `ok` or `FAIL` with what to do; the exit status is non-zero when any
check failed. Checks never stop at the first failure: a user with a broken model still wants to
know whether the journal is fine.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from collections.abc import Callable

from dreamchat import __version__
from dreamchat.errors import DreamchatError

PACKAGES = ["llama-cpp-python", "torch", "gguf", "safetensors", "sqlite-utils", "textual", "platformdirs"]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_doctor(home: str | None, model: str | None, weights: str | None, out=None) -> int:
    def say(line: str) -> None:
        print(line, file=out or sys.stdout)  # looked up per call: sys.stdout may be replaced (tests, pipes)

    failures = 0

    def check(name: str, fn: Callable[[], str]) -> object:
        nonlocal failures
        try:
            detail = fn()
        except DreamchatError as err:
            failures += 1
            say(f"FAIL {name}: {err}")
            return None
        say(f"ok   {name}: {detail}")
        return detail

    say(f"dreamchat {__version__} on Python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    say("versions: " + ", ".join(f"{p} {_version(p)}" for p in PACKAGES))

    from dreamchat.config import load_config
    from dreamchat.default_model import default_models_dir
    from dreamchat.paths import Paths

    paths = Paths.for_home(home)
    say(f"home: {paths.home}")
    say(f"config: {paths.config_file}{'' if paths.config_file.exists() else ' (not written yet: defaults)'}")
    say(f"journal: {paths.journal_file}")
    say(f"memory: {paths.memory_dir}")
    say(f"models folder: {default_models_dir()}")

    check("home is writable", lambda: (paths.ensure(), str(paths.home))[1])
    config = check("config.toml", lambda: (load_config(paths.config_file), "valid")[1])
    config = load_config(paths.config_file) if config else None

    def journal_check() -> str:
        from dreamchat.storage.journal import Journal

        journal = Journal(paths.journal_file)
        try:
            n = len(journal.messages())
            unslept = len(journal.unslept_messages())
            nights = sum(1 for s in journal.sleeps() if s.status == "done")
        finally:
            journal.close()
        return f"opens; {n} messages ({unslept} not slept yet), {nights} sleeps"

    check("journal", journal_check)

    import torch

    say(f"torch: {torch.__version__}, CUDA {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available (CPU)'}, "
        f"{torch.get_num_threads()} threads")
    import llama_cpp

    say(f"llama.cpp: GPU offload {'supported' if llama_cpp.llama_supports_gpu_offload() else 'not built in (CPU)'}")

    loaded = {}  # what model_check loaded, for the memory check

    def model_check() -> str:
        from dreamchat.loading import load_memory_model, resolve_model_path
        from dreamchat.models.backbone import Backbone

        path = resolve_model_path(model or (config.model.path if config else None), progress=True)
        backbone = Backbone(path, n_ctx=512, n_threads=(config.model.threads or None) if config else None)
        try:
            memory, weights_path = load_memory_model(backbone, weights)
            loaded.update(backbone_fingerprint=backbone.fingerprint, memory=memory)
            size_mb = path.stat().st_size / 1e6
            tower = (f"memory tower {weights_path.name} (fingerprint {memory.fingerprint[:12]})"
                     if memory else "no memory tower for this model (sleep archives without consolidating)")
            return (f"{path} ({size_mb:.1f} MB), {backbone.name}, fingerprint {backbone.fingerprint[:16]}, "
                    f"n_ctx_train {backbone.n_ctx_train}, n_embd {backbone.n_embd}, vocab {backbone.n_vocab}, "
                    f"threads {backbone.n_threads}, GPU layers {backbone.n_gpu_layers}; {tower}")
        finally:
            backbone.close()

    check("model", model_check)

    def snapshot_check() -> str:
        from dreamchat.storage.memory_store import MemoryStore

        store = MemoryStore(paths.memory_dir)
        current = store.current()
        if current is None:
            return "empty (no night slept yet, or reset)"
        if loaded["memory"] is None:
            return f"{current.id} (unused: no memory tower for this model)"
        got = store.load_latest(backbone_fingerprint=loaded["backbone_fingerprint"],
                                tower_fingerprint=loaded["memory"].fingerprint,
                                compatible_towers=loaded["memory"].reads_memories_of)
        return f"{got.snapshot.id} (night {got.snapshot.night}) loads with this tower" + \
            (f"; {got.warning}; `dreamchat memory rebuild` sleeps again on the days it lacks" if got.warning else "")

    if loaded:
        check("memory snapshot", snapshot_check)
    say("all checks passed" if failures == 0 else f"{failures} check(s) failed")
    return 0 if failures == 0 else 1
