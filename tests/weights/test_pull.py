"""`myna models pull` through the real huggingface_hub client against a fake hub on loopback."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from fakehub import TEST_REPO, run_myna

from myna.weights.catalog import G2PW_ARCHIVE, VERSION_FILES
from myna.weights.store import human_size


def pull(env: dict, *args: str):
    return run_myna("models", "pull", *args, "--repo", TEST_REPO, env=env)


def models_dir(env: dict) -> Path:
    return Path(env["MYNA_HOME"]) / "models"


def test_pull_fetches_exactly_the_version_files_verified(myna_env, hub, release):
    proc = pull(myna_env, "v2")
    assert proc.returncode == 0, proc.stderr
    root = models_dir(myna_env)
    assert proc.stdout.strip() == str(root)
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".myna" not in p.parts)
    assert on_disk == sorted(VERSION_FILES["v2"])  # exactly v2's files, under upstream's names
    for rel in on_disk:
        assert (root / rel).read_bytes() == release[rel]
    # the plan and its total come before the first transfer finishes
    total = sum(len(release[rel]) for rel in VERSION_FILES["v2"])
    lines = proc.stderr.splitlines()
    total_line = next(i for i, line in enumerate(lines) if "total:" in line)
    first_done = next(i for i, line in enumerate(lines) if ": done," in line)
    assert total_line < first_done and f"total: {human_size(total)} in 8 files" in lines[total_line]
    # the record vouches for each file's sha256; nothing is left in staging
    record = json.loads((root / ".myna" / "models.json").read_text())
    assert {rel: e["sha256"] for rel, e in record["files"].items()} == {
        rel: hashlib.sha256(release[rel]).hexdigest() for rel in VERSION_FILES["v2"]}
    assert "v2" in record["pulled"]
    assert [p for p in (root / ".myna" / "staging").rglob("*") if p.is_file()] == []
    # again: nothing to fetch, no transfer
    before = len(hub.requests)
    again = pull(myna_env, "v2")
    assert again.returncode == 0 and "nothing to download" in again.stderr
    assert len(hub.requests) == before


def _make_large(hub, release, rel: str) -> int:
    """Give `rel` 2.5 download chunks of bytes (huggingface_hub writes whole chunks); the chunk size."""
    from huggingface_hub import constants

    chunk = constants.DOWNLOAD_CHUNK_SIZE
    release[rel] = hub.repos[TEST_REPO][rel] = random.Random(3).randbytes(chunk * 5 // 2)
    return chunk


def test_a_dropped_transfer_resumes_where_it_stopped(myna_env, hub, release):
    rel = "gsv-v2final-pretrained/s2G2333k.pth"
    chunk = _make_large(hub, release, rel)
    hub.drops[rel] = [chunk * 2 + 1000]  # two whole chunks arrive, then the connection drops
    proc = pull(myna_env, "v2")
    assert proc.returncode == 0, proc.stderr
    assert (models_dir(myna_env) / rel).read_bytes() == release[rel]
    assert hub.transfers(rel) == [None, f"bytes={chunk * 2}-"]  # the second request asked only for the rest


def test_an_interrupted_pull_resumes_on_the_next_run(myna_env, hub, release):
    rel = "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
    chunk = _make_large(hub, release, rel)
    hub.drops[rel] = [chunk + 5000]
    hub.fail_after_drop.add(rel)  # the retry within the run fails too: the run gives up
    first = pull(myna_env, "v2")
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert "503" in first.stderr and "resumes" in first.stderr
    root = models_dir(myna_env)
    assert not (root / rel).exists()  # nothing half-written under the model's name
    assert (root / ".myna" / "staging" / f"{rel}.part").stat().st_size == chunk
    second = pull(myna_env, "v2")
    assert second.returncode == 0, second.stderr
    assert (root / rel).read_bytes() == release[rel]
    assert hub.transfers(rel)[-1] == f"bytes={chunk}-"


@pytest.mark.parametrize("rel", ["gsv-v2final-pretrained/s2G2333k.pth", "chinese-hubert-base/config.json"])
def test_bytes_that_do_not_match_their_hash_are_refused_and_not_kept(myna_env, hub, release, rel):
    bad = bytes(b ^ 0x55 for b in release[rel])  # same length, other bytes
    hub.tamper[rel] = bad
    proc = pull(myna_env, "v2")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert rel in proc.stderr and "nothing was kept" in proc.stderr
    kept = [p for p in Path(myna_env["MYNA_HOME"]).rglob("*") if p.is_file() and p.read_bytes() == bad]
    assert kept == []
    assert not (models_dir(myna_env) / rel).exists()


def test_offline_mode_uses_what_is_here_and_fetches_nothing(myna_env, hub):
    assert pull({**myna_env, "HF_TOKEN": "hf_test_token"}, "v2").returncode == 0
    assert set(hub.tokens) == {"Bearer hf_test_token"}  # HF_TOKEN is sent to the hub
    offline = {**myna_env, "HF_HUB_OFFLINE": "1"}
    before = len(hub.requests)
    again = pull(offline, "v2")
    assert again.returncode == 0 and "nothing to download" in again.stderr
    other = pull(offline, "v1")
    assert other.returncode == 1 and "HF_HUB_OFFLINE" in other.stderr and "Traceback" not in other.stderr
    assert len(hub.requests) == before  # not a single request


def test_pinned_hashes_are_checked_against_what_the_hub_announces(myna_env, hub):
    # the fake hub also serves the release's own repository name, with other bytes than the release:
    # myna's pins (the real sha256 values) refuse them before downloading anything
    proc = run_myna("models", "pull", "v2", env=myna_env)
    assert proc.returncode == 1 and "refusing to download" in proc.stderr
    assert "924fdccaa3c574bf139c25c9759aa1ed3b3f99e19a7c529ee996c2bc17663695" in proc.stderr or \
        "732f94e63b148066e24c7f9d2637f3374083e637635f07fbdb695dee20ddbe1f" in proc.stderr
    assert [r for r in hub.requests if r[0] == "cdn"] == []


def test_g2pw_is_unpacked_into_its_folder(myna_env, hub, release):
    proc = pull(myna_env, "v2", "--g2pw")
    assert proc.returncode == 0, proc.stderr
    root = models_dir(myna_env)
    assert (root / "G2PWModel" / "g2pW.onnx").is_file() and (root / "G2PWModel" / "version").read_text() == "v2.0"
    assert not (root / G2PW_ARCHIVE).exists()
    path = run_myna("models", "path", "g2pw", env=myna_env)
    assert path.returncode == 0 and path.stdout.strip() == str(root / "G2PWModel")
    assert run_myna("models", "rm", "g2pw", env=myna_env).returncode == 0
    assert not (root / "G2PWModel").exists() and (root / "chinese-hubert-base" / "config.json").is_file()
