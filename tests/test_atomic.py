"""The one atomic-write helper: whole file or the old one, never a part, never a stray temporary file."""

import stat

import pytest

from myna.atomic import atomic_output, atomic_write


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write(target, "new ü\n")
    assert target.read_bytes() == "new ü\n".encode() and [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_private_durable_writes_and_folders(tmp_path):
    secret = tmp_path / "voice" / "clip.wav"
    with pytest.raises(FileNotFoundError):  # an erased folder is not brought back
        atomic_write(secret, b"x", mode=0o600, durable=True)
    assert not secret.parent.exists()
    atomic_write(secret, b"x", mode=0o600, durable=True, parents=True)
    assert secret.read_bytes() == b"x" and stat.S_IMODE(secret.stat().st_mode) == 0o600
