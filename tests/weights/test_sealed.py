"""Encrypted model files: the sealed format, the checkpoint gate reading it in memory, and the CLI."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from myna import checkpoints
from myna.weights import sealed

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def _seal(data: bytes, chunk: int = 16) -> bytes:
    sink = io.BytesIO()
    sealed.seal_stream(io.BytesIO(data), len(data), sink, KEY, chunk)
    return sink.getvalue()


def _open(blob: bytes, key: bytes = KEY) -> bytes:
    size, chunks = sealed.open_stream(io.BytesIO(blob), "f", key)
    return b"".join(chunks)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 64, 100])
def test_round_trip_at_chunk_boundaries(size):
    data = os.urandom(size)
    blob = _seal(data)
    assert blob.startswith(sealed.MAGIC)
    if size >= 16:  # long enough that finding it in the ciphertext by chance is out of the question
        assert data not in blob
    assert _open(blob) == data


def _chunk_span(index: int, chunk: int = 16) -> slice:
    start = sealed.HEADER_BYTES + index * (chunk + sealed.TAG_BYTES)
    return slice(start, start + chunk + sealed.TAG_BYTES)


def test_any_change_to_a_sealed_file_is_refused():
    data = os.urandom(64)  # four chunks of 16
    blob = _seal(data)
    flipped = bytearray(blob)
    flipped[sealed.HEADER_BYTES + 20] ^= 1
    first, second = blob[_chunk_span(0)], blob[_chunk_span(1)]
    swapped = blob[: _chunk_span(0).start] + second + first + blob[_chunk_span(2).start :]
    dropped_last = blob[: _chunk_span(3).start]
    header = bytearray(blob[: sealed.HEADER_BYTES])
    header[-1] -= 16  # claim one chunk less and drop it: the new last chunk is not marked last
    shortened = bytes(header) + blob[sealed.HEADER_BYTES : _chunk_span(3).start]
    cases = {"flipped bit": bytes(flipped), "swapped chunks": swapped, "cut at a chunk edge": dropped_last,
             "header says shorter": shortened, "bytes appended": blob + b"x", "cut mid-chunk": blob[:-3]}
    for name, bad in cases.items():
        with pytest.raises(sealed.SealError):
            _open(bad)
            pytest.fail(f"{name} was accepted")


def test_a_wrong_or_missing_key_is_named_not_called_damage():
    blob = _seal(b"weights")
    with pytest.raises(sealed.ModelKeyError, match=f"key id {sealed.key_id(KEY).hex()}"):
        _open(blob, OTHER)
    with pytest.raises(sealed.ModelKeyError, match="MYNA_MODEL_KEY_FILE"):
        sealed.open_stream(io.BytesIO(blob), "f", None)


def test_a_newer_format_version_is_refused_with_advice():
    blob = bytearray(_seal(b"weights"))
    blob[len(sealed.MAGIC)] = 9
    with pytest.raises(sealed.SealError, match="upgrade myna"):
        _open(bytes(blob))


def test_key_parsing():
    assert sealed.parse_key(KEY.hex() + "\n", "k") == KEY
    assert sealed.parse_key(KEY, "k") == KEY
    with pytest.raises(sealed.ModelKeyError, match="64 hex digits"):
        sealed.parse_key("abc", "MYNA_MODEL_KEY")


def _gpt() -> checkpoints.GPTCheckpoint:
    generator = torch.Generator().manual_seed(0)
    state = {"ar_text_embedding.word_embeddings.weight": torch.randn(5, 4, generator=generator),
             "ar_predict_layer.weight": torch.randn(3, 4, generator=generator)}
    return checkpoints.GPTCheckpoint({"model": {"hidden_dim": 4}}, state, "test")


@pytest.mark.parametrize("name", ["gpt.ckpt", "gpt.safetensors", "gpt.safetensors.enc"])
def test_checkpoints_write_sealed_and_read_back_in_memory(tmp_path, name, monkeypatch):
    path = tmp_path / name
    checkpoints.write_gpt(path, _gpt(), key=KEY)
    assert sealed.is_sealed(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no plaintext twin, no leftover temporary
    back = checkpoints.read_gpt(path, key=KEY)
    for k, v in _gpt().state_dict.items():
        assert torch.equal(back.state_dict[k], v.half())
    monkeypatch.setenv("MYNA_MODEL_KEY", KEY.hex())  # the configured key is used when none is passed
    assert set(checkpoints.read_gpt(path).state_dict) == set(_gpt().state_dict)
    monkeypatch.delenv("MYNA_MODEL_KEY")
    with pytest.raises(sealed.ModelKeyError, match="encrypted"):
        checkpoints.read_gpt(path)


def test_sovits_marker_survives_sealing(tiny_set, tmp_path):
    plain = checkpoints.read_sovits(tiny_set["sovits"])
    target = tmp_path / "s2.pth"
    sealed.seal_file(tiny_set["sovits"], target, KEY, chunk_size=1000)
    again = checkpoints.read_sovits(target, key=KEY)
    assert again.version == plain.version and again.config == plain.config
    assert all(torch.equal(again.state_dict[k], v) for k, v in plain.state_dict.items())


def _myna(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "myna", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_cli_encrypt_rotate_decrypt(tmp_path):
    original = os.urandom(300_000)
    (tmp_path / "m.pth").write_bytes(original)
    assert _myna("models", "keygen", "-o", str(tmp_path / "old.key")).returncode == 0
    assert _myna("models", "keygen", "-o", str(tmp_path / "new.key")).returncode == 0
    assert (tmp_path / "old.key").stat().st_mode & 0o077 == 0
    again = _myna("models", "keygen", "-o", str(tmp_path / "old.key"))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    env = {"MYNA_MODEL_KEY_FILE": str(tmp_path / "old.key")}
    done = _myna("models", "encrypt", str(tmp_path), "--in-place", env=env)
    assert done.returncode == 0, done.stderr
    assert sealed.is_sealed(tmp_path / "m.pth") and original not in (tmp_path / "m.pth").read_bytes()
    done = _myna("models", "rotate", str(tmp_path / "m.pth"), "--new-key-file", str(tmp_path / "new.key"), env=env)
    assert done.returncode == 0 and "rotated" in done.stdout, done.stderr
    wrong = _myna("models", "decrypt", str(tmp_path / "m.pth"), "-o", str(tmp_path / "out.pth"), env=env)
    assert wrong.returncode == 1 and "another key" in wrong.stderr and "Traceback" not in wrong.stderr
    done = _myna("models", "decrypt", str(tmp_path / "m.pth"), "-o", str(tmp_path / "out.pth"),
                 "--key-file", str(tmp_path / "new.key"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.pth").read_bytes() == original


def test_chunked_sealing_reads_the_file_a_chunk_at_a_time(tmp_path):
    """A 3-chunk file is sealed with at most one chunk read from the source at a time."""
    reads = []

    class Source(io.BytesIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    data = os.urandom(3000)
    sink = io.BytesIO()
    sealed.seal_stream(Source(data), len(data), sink, KEY, chunk_size=1024)
    assert max(reads) == 1024 and len(reads) == 3
    header = sink.getvalue()[: sealed.HEADER_BYTES]
    assert struct.unpack(">I", header[10:14])[0] == 1024
    assert _open(sink.getvalue()) == data


class _Inotify:
    """Records every file created, written or moved into a set of folders (Linux inotify through ctypes)."""

    _MASK = 0x100 | 0x2 | 0x80  # IN_CREATE | IN_MODIFY | IN_MOVED_TO

    def __init__(self, folders: list[Path]) -> None:
        import ctypes

        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK)
        assert self.fd >= 0
        for folder in folders:
            assert self._libc.inotify_add_watch(self.fd, str(folder).encode(), self._MASK) >= 0

    def names(self) -> list[str]:
        found, raw = [], b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            raw += chunk
        offset = 0
        while offset < len(raw):
            _, _, _, length = struct.unpack_from("iIII", raw, offset)
            found.append(raw[offset + 16 : offset + 16 + length].rstrip(b"\0").decode())
            offset += 16 + length
        os.close(self.fd)
        return found


@pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux-only")
def test_say_speaks_with_encrypted_models_without_writing_plaintext(tiny_set, tmp_path):
    models, private_tmp, out_dir = tmp_path / "models", tmp_path / "tmp", tmp_path / "out"
    for folder in (models, private_tmp, out_dir):
        folder.mkdir()
    key_file = tmp_path / "model.key"
    key_file.write_text(KEY.hex())
    sealed.seal_file(tiny_set["gpt"], models / "gpt.ckpt", KEY)
    sealed.seal_file(tiny_set["sovits"], models / "sovits.pth", KEY)
    common = ["say", "Hello there.", "--ref", str(tiny_set["clips"][0]), "--lang", "en", "--top-k", "1",
              "--seed", "0", "--noise-scale", "0", "--hubert", str(tiny_set["hubert"])]
    watch = _Inotify([models, private_tmp, out_dir, Path(tiny_set["hubert"]).resolve()])
    shm_before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    home = tmp_path / "home"  # ~/.cache/myna holds what myna derives from plain models (int8 weights, kernels)
    done = _myna(*common, "--gpt", str(models / "gpt.ckpt"), "--sovits", str(models / "sovits.pth"),
                 "-o", str(out_dir / "enc.wav"), env={"MYNA_MODEL_KEY_FILE": str(key_file), "TMPDIR": str(private_tmp),
                                                      "HOME": str(home), "MYNA_CPU_KERNELS": "0"})  # no compiler scratch files
    written = watch.names()
    assert not list((home / ".cache" / "myna" / "int8").glob("*"))  # no quantized weights of an encrypted model
    assert done.returncode == 0, done.stderr
    audio, rate = soundfile.read(out_dir / "enc.wav")
    assert rate == 32000 and len(audio) > 0.3 * rate and abs(audio).max() > 0
    # Only the output (through its temporary name, if any) was written; nothing in the model or temp folders.
    assert "enc.wav" in written  # the watch works: it saw the output being written
    assert all(name.startswith((".enc.wav", "enc.wav")) for name in written), written
    assert sorted(os.listdir(models)) == ["gpt.ckpt", "sovits.pth"] and os.listdir(private_tmp) == []
    shm_new = (set(os.listdir("/dev/shm")) - shm_before) if shm_before else set()
    assert not any("gpt" in n or "sovits" in n for n in shm_new)


def test_reading_a_sealed_file_holds_one_plaintext_copy(tmp_path):
    import tracemalloc

    size, chunk = 8 * 2**20, 2**20
    (tmp_path / "plain").write_bytes(os.urandom(size))
    sealed.seal_file(tmp_path / "plain", tmp_path / "sealed", KEY, chunk_size=chunk)
    tracemalloc.start()
    plain = sealed.read_sealed(tmp_path / "sealed", KEY)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(plain) == size and peak < size + 4 * chunk  # the plaintext and a few chunks in flight, not 2x
    raw = checkpoints._reader(plain)
    assert raw.read(5) == bytes(plain[:5]) and raw.seek(-3, os.SEEK_END) == size - 3 and raw.read() == bytes(plain[-3:])
