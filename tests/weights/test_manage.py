"""`myna models list|verify|rm|path`, the errors a pull reports, and ModelScope-style pinned downloads."""

from __future__ import annotations

import hashlib
import io
import os
import socket
from pathlib import Path

import pytest
from fakehub import TEST_REPO, run_myna

from myna.cli import main
from myna.errors import IntegrityError, NetworkError, StorageError
from myna.weights.catalog import VERSION_FILES, Pin
from myna.weights.pull import pull
from myna.weights.store import ModelStore


class Ran:
    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def models(tmp_path, monkeypatch, capsys):
    """`myna models ...` in this process (MYNA_HOME in tmp_path), returning code and output."""
    monkeypatch.setenv("MYNA_HOME", str(tmp_path / "home"))

    def run(*args: str) -> Ran:
        capsys.readouterr()
        code = main(["models", *args])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)
    return run


def fetch(hub, root: Path, *names: str) -> Path:
    return pull(names, root, "hf", repo=TEST_REPO, endpoint=hub.endpoint, out=io.StringIO())


def test_list_verify_rm_and_path(models, tmp_path, hub, release):
    root = tmp_path / "home" / "models"
    assert "nothing pulled" in models("list").stderr
    fetch(hub, root, "v2")
    fetch(hub, root, "v2ProPlus")
    listing = models("list")
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:] if line.startswith("v")}
    assert set(rows) == {"v2", "v2ProPlus"} and all("verified" in row for row in rows.values())
    assert str(root) in listing.stdout
    v2_bytes = sum(len(release[rel]) for rel in VERSION_FILES["v2"])
    assert f"{v2_bytes / 1e6:.2f} MB" in rows["v2"] or f"{v2_bytes / 1e3:.2f} kB" in rows["v2"]

    # a shared file changes on disk: list notices without hashing, verify proves it
    shared = root / "chinese-hubert-base" / "pytorch_model.bin"
    data = bytearray(shared.read_bytes())
    data[100] ^= 1
    shared.write_bytes(bytes(data))
    os.utime(shared, ns=(shared.stat().st_atime_ns, shared.stat().st_mtime_ns + 10**9))
    assert "changed since last check" in models("list").stdout
    verify = models("verify", "v2")
    assert verify.returncode == 1 and "MISMATCH chinese-hubert-base/pytorch_model.bin" in verify.stdout
    assert "ok       gsv-v2final-pretrained/s2G2333k.pth" in verify.stdout

    # pulling again fetches only the damaged file
    before = len(hub.transfers("chinese-hubert-base/pytorch_model.bin"))
    log = io.StringIO()
    pull(["v2"], root, "hf", repo=TEST_REPO, endpoint=hub.endpoint, out=log)
    assert log.getvalue().count(": done,") == 1
    assert len(hub.transfers("chinese-hubert-base/pytorch_model.bin")) == before + 1
    assert models("verify").returncode == 0

    # rm keeps what another pulled version shares
    assert models("path", "v2").stdout.strip() == str(root)
    assert models("rm", "v2").returncode == 0
    assert not (root / "gsv-v2final-pretrained").exists()
    assert (root / "chinese-hubert-base" / "pytorch_model.bin").is_file()
    gone = models("path", "v2")
    assert gone.returncode == 1 and "`myna models pull v2`" in gone.stderr
    assert models("path", "v2ProPlus").returncode == 0
    assert models("rm", "v2ProPlus").returncode == 0
    assert [p for p in root.rglob("*") if p.is_file() and ".myna" not in p.parts] == []
    assert "nothing pulled" in models("list").stderr


def test_no_network_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_myna("models", "pull", "v2", "--repo", TEST_REPO,
                    env={"MYNA_HOME": str(tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot reach http://127.0.0.1:{port}" in proc.stderr and "--source hf-mirror" in proc.stderr


def test_a_missing_file_or_repo_is_named(tmp_path, hub):
    with pytest.raises(NetworkError, match="repository not found"):
        pull(["v2"], tmp_path, "hf", repo="nobody/nothing", endpoint=hub.endpoint, out=io.StringIO())
    del hub.repos[TEST_REPO]["v2Pro/s2Gv2Pro.pth"]
    with pytest.raises(NetworkError, match="no such file"):
        fetch(hub, tmp_path, "v2Pro")


def test_not_enough_disk_space_is_refused_before_downloading(tmp_path, hub):
    hub.announce["gsv-v2final-pretrained/s2G2333k.pth"] = (hashlib.sha256(b"x").hexdigest(), 10**15)
    with pytest.raises(StorageError, match="not enough disk space"):
        fetch(hub, tmp_path, "v2")
    assert [r for r in hub.requests if r[0] == "cdn"] == []


def test_a_folder_that_cannot_be_written_is_explained(models, tmp_path):
    if Path("/sys").is_dir():  # sysfs refuses new folders even to root
        proc = models("pull", "v2", "--repo", TEST_REPO, "--dir", "/sys/myna-models")
        assert proc.returncode == 1 and "cannot write to /sys/myna-models" in proc.stderr
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        proc = models("pull", "v2", "--repo", TEST_REPO, "--dir", str(locked / "models"))
        assert proc.returncode == 1 and "permission denied" in proc.stderr


def test_unknown_names_list_the_choices(models):
    proc = models("pull", "v5")
    assert proc.returncode == 1 and "v1, v2, v2Pro, v2ProPlus" in proc.stderr


def test_modelscope_refuses_files_myna_has_no_pin_for(myna_env, hub):
    proc = run_myna("models", "pull", "v2", "--source", "modelscope",
                    env={**myna_env, "MYNA_MODELSCOPE_ENDPOINT": hub.endpoint})
    assert proc.returncode == 1 and "no pin for" in proc.stderr and "chinese-hubert-base/config.json" in proc.stderr
    assert "--source hf" in proc.stderr and hub.requests == []


def test_modelscope_downloads_pinned_files_and_checks_them(tmp_path, hub, release):
    pins = {rel: Pin(hashlib.sha256(release[rel]).hexdigest(), len(release[rel]), "test")
            for rel in VERSION_FILES["v2"]}
    hub.repos["AI-ModelScope/GPT-SoVITS"] = hub.repos[TEST_REPO]
    root = pull(["v2"], tmp_path / "ms", "modelscope", endpoint=hub.endpoint, pins=pins, out=io.StringIO())
    assert all((root / rel).read_bytes() == release[rel] for rel in VERSION_FILES["v2"])
    assert ModelStore(root).locate("v2").version == "v2"
    assert all(r[2].startswith("/models/AI-ModelScope/GPT-SoVITS/resolve/master/") for r in hub.requests)
    # a pin the bytes do not match: refused, nothing kept
    rel = "v2Pro/s2Gv2Pro.pth"
    pins[rel] = Pin("0" * 64, len(release[rel]), "test")
    pins.update({r: Pin(hashlib.sha256(release[r]).hexdigest(), None, "test") for r in VERSION_FILES["v2Pro"]
                 if r not in pins})
    with pytest.raises(IntegrityError, match="nothing was kept"):
        pull(["v2Pro"], root, "modelscope", endpoint=hub.endpoint, pins=pins, out=io.StringIO())
    assert not (root / rel).exists() and not list((root / ".myna" / "staging").rglob("*.part"))


def test_files_already_in_a_folder_are_hashed_and_kept_when_they_match(tmp_path, hub, release):
    root = tmp_path / "pretrained_models"  # e.g. an upstream checkout's folder, no record of ours
    for rel in VERSION_FILES["v2"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(release[rel])
    (root / VERSION_FILES["v2"][0]).write_bytes(b"stale")  # one file is not the release's
    log = io.StringIO()
    pull(["v2"], root, "hf", repo=TEST_REPO, endpoint=hub.endpoint, out=log)
    assert log.getvalue().count("already here") == len(VERSION_FILES["v2"]) - 1
    assert log.getvalue().count(": done,") == 1 and (root / VERSION_FILES["v2"][0]).read_bytes() == release[
        VERSION_FILES["v2"][0]]
    assert ModelStore(root).locate().version == "v2"
