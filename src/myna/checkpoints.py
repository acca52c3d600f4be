"""The one place that reads and writes upstream GPT-SoVITS checkpoint files, and safetensors.

Upstream formats (file-format facts):
- GPT `.ckpt`: `torch.save({"weight": state_dict, "config": dict, "info": str})`; the state-dict keys
  carry a leading `model.` (upstream wraps the decoder in a Lightning module). Weights are fp16 when
  written by upstream's trainer.
- SoVITS `.pth`: `torch.save({"weight": state_dict, "config": hparams, "info": str})` without the
  posterior encoder (`enc_q.*`). v1/v2 files are plain torch zip archives (they start with `PK`);
  upstream writes v2Pro/v2ProPlus (and LoRA) files with those two bytes replaced by a version marker
  (`05`, `06`, ...); myna writes a marker for every version (`00` v1, `01` v2), which upstream reads too.
  `config` is a dict, or upstream's `utils.HParams` object in files written by its trainer.

Everything is loaded with `torch.load(weights_only=True)`: no code from a checkpoint ever runs.

Any of these files may be encrypted at rest (`myna models encrypt`, `myna.weights.sealed`): a sealed
file is recognised by its header, whatever its name (a trailing `.enc` is ignored when the name
decides the format), and decrypted into memory only. Its key is the `key` argument, else the
configured model key (`MYNA_MODEL_KEY_FILE` / `MYNA_MODEL_KEY`). Writers seal what they write when
given a key.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from myna.atomic import atomic_write
from myna.errors import MynaError

SOVITS_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
GPT_PREFIX = "model."
_ZIP_MAGIC = b"PK"
# Two-byte markers upstream writes in place of the zip magic (v3/v4 and LoRA files are not supported).
_MARKER_TO_VERSION = {b"00": "v1", b"01": "v2", b"05": "v2Pro", b"06": "v2ProPlus"}
# Written for every version, v1/v2 too: upstream's loader reads a marker before it falls back to guessing
# the version of a plain zip from the file size, which misreads small or unusual files.
_VERSION_TO_MARKER = {"v1": b"00", "v2": b"01", "v2Pro": b"05", "v2ProPlus": b"06"}
_UNSUPPORTED_MARKERS = {b"02": "v3", b"03": "v3 LoRA", b"04": "v4 LoRA"}
_V1_PHONEME_ROWS = 322


class CheckpointError(MynaError):
    """A checkpoint file is missing, damaged, of the wrong kind or of an unsupported version."""


class _PickledHParams:
    """Stand-in for upstream's `utils.HParams`, so trainer-written configs load without upstream code."""


@dataclass
class GPTCheckpoint:
    """A text-to-semantic GPT: its config dict (upstream's yaml layout) and state dict (no `model.`)."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    info: str = ""


@dataclass
class SoVITSCheckpoint:
    """A SoVITS synthesizer: version, config dict (upstream's s2.json layout) and state dict."""

    version: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    info: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def read_gpt(path: str | Path, key: bytes | None = None) -> GPTCheckpoint:
    """Read an upstream GPT `.ckpt` (or a myna `.safetensors`) file, encrypted or not."""
    path = Path(path)
    if _suffix(path) == ".safetensors":
        kind, config, state, info = _read_safetensors(path, key)
        _expect_kind(path, kind, "gpt")
        return GPTCheckpoint(config, state, info)
    data = _torch_load(path, _plain_or_bytes(path, key))
    weight = data.get("weight", data.get("state_dict"))
    if not isinstance(weight, dict) or "config" not in data:
        raise CheckpointError(f"{path}: not a GPT checkpoint (expected 'weight' and 'config' entries)")
    if not any(k.startswith(GPT_PREFIX + "ar_") for k in weight):
        hint = " (it looks like a SoVITS file: pass it as the SoVITS model)" if _looks_like_sovits(weight) else ""
        raise CheckpointError(f"{path}: not a GPT checkpoint: no 'model.ar_*' weights{hint}")
    state = {k.removeprefix(GPT_PREFIX): v for k, v in weight.items() if k.startswith(GPT_PREFIX)}
    return GPTCheckpoint(_plain(data["config"]), state, str(data.get("info", "")))


def read_sovits(path: str | Path, key: bytes | None = None) -> SoVITSCheckpoint:
    """Read an upstream SoVITS `.pth` (any header) or a myna `.safetensors` file, encrypted or not."""
    path = Path(path)
    if _suffix(path) == ".safetensors":
        kind, config, state, info = _read_safetensors(path, key)
        _expect_kind(path, kind, "sovits")
        return SoVITSCheckpoint(_sovits_version(path, None, config, state), config, state, info)
    raw = _plain_or_bytes(path, key)
    marker = _ZIP_MAGIC if isinstance(raw, Path) else bytes(raw[:2])
    if marker in _UNSUPPORTED_MARKERS:
        raise CheckpointError(f"{path}: a {_UNSUPPORTED_MARKERS[marker]} SoVITS model; myna supports v1, v2, v2Pro, v2ProPlus")
    if marker != _ZIP_MAGIC and marker not in _MARKER_TO_VERSION:
        raise CheckpointError(f"{path}: not a SoVITS checkpoint (unknown file header {marker!r})")
    if isinstance(raw, Path):  # a plain zip file: memory-mapped
        data = _torch_load(path, raw)
    elif isinstance(raw, bytearray):  # decrypted in memory: patch the header in place instead of copying
        raw[:2] = _ZIP_MAGIC
        data = _torch_load(path, raw)
    else:
        data = _torch_load(path, _ZIP_MAGIC + raw[2:])
    weight = data.get("weight")
    if not isinstance(weight, dict) or "config" not in data:
        raise CheckpointError(f"{path}: not a SoVITS checkpoint (expected 'weight' and 'config' entries)")
    if not _looks_like_sovits(weight):
        hint = " (it looks like a GPT file: pass it as the GPT model)" if any(k.startswith("model.ar_") for k in weight) else ""
        raise CheckpointError(f"{path}: not a SoVITS checkpoint: no 'enc_p.*'/'dec.*' weights{hint}")
    config = _plain(data["config"])
    version = _sovits_version(path, _MARKER_TO_VERSION.get(marker), config, weight)
    extra = {k: _plain(v) for k, v in data.items() if k not in ("weight", "config", "info")}
    return SoVITSCheckpoint(version, config, dict(weight), str(data.get("info", "")), extra)


def write_gpt(path: str | Path, ckpt: GPTCheckpoint, half: bool = True, key: bytes | None = None) -> None:
    """Write `ckpt` in upstream's GPT `.ckpt` layout (or safetensors, by suffix); fp16 like upstream by default;
    encrypted with `key` when given."""
    path = Path(path)
    state = {k: _cast(v, half) for k, v in ckpt.state_dict.items()}
    if _suffix(path) == ".safetensors":
        _write_safetensors(path, "gpt", ckpt.config, state, ckpt.info, version=None, key=key)
        return
    payload = {"weight": {GPT_PREFIX + k: v for k, v in state.items()}, "config": ckpt.config, "info": ckpt.info}
    _write(path, _torch_bytes(payload), key)


def write_sovits(path: str | Path, ckpt: SoVITSCheckpoint, half: bool = True, key: bytes | None = None) -> None:
    """Write `ckpt` in upstream's SoVITS `.pth` layout with its version marker (or safetensors, by suffix);
    encrypted with `key` when given."""
    path = Path(path)
    if ckpt.version not in SOVITS_VERSIONS:
        raise CheckpointError(f"cannot write SoVITS version {ckpt.version!r}; expected one of {', '.join(SOVITS_VERSIONS)}")
    state = {k: _cast(v, half) for k, v in ckpt.state_dict.items() if not k.startswith("enc_q.")}
    if _suffix(path) == ".safetensors":
        _write_safetensors(path, "sovits", ckpt.config, state, ckpt.info, version=ckpt.version, key=key)
        return
    data = _torch_bytes({"weight": state, "config": ckpt.config, "info": ckpt.info, **ckpt.extra})
    _write(path, _VERSION_TO_MARKER[ckpt.version] + data[2:], key)


def read_state_dict(path: str | Path, key: bytes | None = None) -> dict[str, torch.Tensor]:
    """Read a plain state-dict file: a `torch.save`d dict of named tensors (or a `.safetensors` file), encrypted or not."""
    path = Path(path)
    if _suffix(path) == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            state = load(bytes(_read_bytes(path, key)))
        except (SafetensorError, ValueError) as exc:
            raise CheckpointError(f"{path}: damaged or not a safetensors file ({exc})") from exc
    else:
        state = _torch_load(path, _read_bytes(path, key))
    named_tensors = all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    if not state or not named_tensors:
        hint = " (it looks like a GPT or SoVITS model file)" if {"weight", "config"} <= set(state) else ""
        raise CheckpointError(f"{path}: not a plain state dict (expected a dict of named tensors){hint}")
    return dict(state)


def read_discriminator(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of an upstream SoVITS discriminator file (`s2D*.pth`: {"weight": ...} or {"model": ...})."""
    path = Path(path)
    data = _torch_load(path, _read_bytes(path))
    weight = data.get("weight", data.get("model"))
    if not isinstance(weight, dict) or not any(".convs." in k or k.startswith("discriminators.") for k in weight):
        raise CheckpointError(f"{path}: not a SoVITS discriminator file (expected 'discriminators.*' weights)")
    return {k.removeprefix("module."): v for k, v in weight.items()}


# -- helpers -----------------------------------------------------------------------------------------


def _suffix(path: Path) -> str:
    """The suffix that names a file's format: `x.safetensors.enc` is a safetensors file."""
    return Path(path.stem).suffix if path.suffix == ".enc" else path.suffix


def _read_bytes(path: Path, key: bytes | None = None) -> bytes | bytearray:
    """A checkpoint's bytes; a sealed file is decrypted in memory (nothing is written anywhere)."""
    from myna.weights import sealed

    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    if sealed.is_sealed(path):
        if key is None:
            from myna.config import Settings

            key = Settings.from_env().model_key_bytes()
        return sealed.read_sealed(path, key)
    length = path.stat().st_size
    if length < 4:
        raise CheckpointError(f"{path}: file is empty or truncated ({length} bytes)")
    with path.open("rb") as file:
        return file.read()


def _plain_or_bytes(path: Path, key: bytes | None) -> Path | bytes | bytearray:
    """A plain zip checkpoint's path (torch memory-maps it, no copy in memory), else the file's bytes
    (decrypted in memory for a sealed file; upstream's version-marked SoVITS files are patched by the caller)."""
    from myna.weights import sealed

    if path.is_file() and not sealed.is_sealed(path) and _head(path) == _ZIP_MAGIC:
        return path
    return _read_bytes(path, key)


def _head(path: Path) -> bytes:
    """The first two bytes of a plain checkpoint file (the zip magic or upstream's version marker)."""
    with path.open("rb") as file:
        return file.read(2)


def _torch_load(path: Path, data: bytes | bytearray | Path) -> dict[str, Any]:
    """torch.load of file bytes (read in place), or of a plain zip file memory-mapped (no copy in memory)."""
    try:
        with torch.serialization.safe_globals([(_PickledHParams, "utils.HParams")]):
            if isinstance(data, Path):
                loaded = torch.load(data, map_location="cpu", weights_only=True, mmap=True)
            else:
                loaded = torch.load(_reader(data), map_location="cpu", weights_only=True)
    except (RuntimeError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError, KeyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
            raise CheckpointError(
                f"{path}: holds pickled objects other than weights and plain configs; myna does not load "
                "such files because loading them could run code. Re-save it with tensors and dicts only."
            ) from exc
        raise CheckpointError(f"{path}: damaged, truncated or not a torch checkpoint ({first})") from exc
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: not a GPT-SoVITS checkpoint (holds a {type(loaded).__name__}, expected a dict)")
    return loaded


def _reader(data: bytes | bytearray) -> io.BufferedIOBase:
    """A file object over `data`; a bytearray (decrypted in memory) is read in place, since io.BytesIO would copy it."""
    if isinstance(data, bytes):
        return io.BytesIO(data)  # shares the bytes object, no copy
    return io.BufferedReader(_BufferReader(memoryview(data)))


class _BufferReader(io.RawIOBase):
    """Raw, seekable reads from a memoryview, without copying it."""

    def __init__(self, view: memoryview) -> None:
        self._view, self._position = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        count = max(0, min(len(target), len(self._view) - self._position))
        target[:count] = self._view[self._position : self._position + count]
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


def _plain(value: Any) -> Any:
    """Turn pickled HParams stand-ins (and nested containers) into plain dicts and lists."""
    if isinstance(value, _PickledHParams):
        value = vars(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _looks_like_sovits(weight: dict) -> bool:
    return any(k.startswith("enc_p.") for k in weight) and any(k.startswith("dec.") for k in weight)


def _sovits_version(path: Path, marked: str | None, config: dict, state: dict) -> str:
    """Version from the file marker, else the config, else the weights (Pro layers, phoneme-table size)."""
    if marked in ("v2Pro", "v2ProPlus"):
        return marked
    named = (config.get("model") or {}).get("version") or config.get("version")
    if named in SOVITS_VERSIONS:
        return named
    if "sv_emb.weight" in state:
        return "v2ProPlus" if (config.get("model") or {}).get("upsample_initial_channel") == 768 else "v2Pro"
    rows = state.get("enc_p.text_embedding.weight")
    if rows is None:
        raise CheckpointError(f"{path}: SoVITS weights lack enc_p.text_embedding.weight; cannot tell the version")
    return "v1" if rows.shape[0] == _V1_PHONEME_ROWS else "v2"


def _cast(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    tensor = tensor.detach().cpu()
    return tensor.half() if half and tensor.is_floating_point() else tensor.contiguous()


def _torch_bytes(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _write(path: Path, data: bytes, key: bytes | None) -> None:
    """Write a checkpoint file: sealed on its way to disk with `key` (the plaintext never is), else as is."""
    if key is None:
        _atomic_write(path, data)
        return
    from myna.weights.sealed import write_sealed

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sealed(path, data, key)
    except OSError as exc:
        raise CheckpointError(f"{path}: could not write the checkpoint ({exc.strerror or exc}); nothing was changed") from exc


def _atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file: a crash never leaves half a checkpoint."""
    try:
        atomic_write(path, data, parents=True)
    except OSError as exc:
        raise CheckpointError(f"{path}: could not write the checkpoint ({exc.strerror or exc}); nothing was changed") from exc


def _write_safetensors(path: Path, kind: str, config: dict, state: dict, info: str, version: str | None,
                       key: bytes | None = None) -> None:
    from safetensors.torch import save

    metadata = {"format": "myna", "kind": kind, "config": json.dumps(config), "info": info}
    if version:
        metadata["version"] = version
    _write(path, save({k: v.contiguous() for k, v in state.items()}, metadata=metadata), key)


def _read_safetensors(path: Path, key: bytes | None = None) -> tuple[str, dict, dict[str, torch.Tensor], str]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        raw = bytes(_read_bytes(path, key))
        state = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: damaged or not a safetensors file ({exc})") from exc
    if "config" not in metadata or "kind" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without myna metadata (kind, config); cannot use it")
    config = json.loads(metadata["config"])
    if metadata.get("version"):
        config.setdefault("model", {}).setdefault("version", metadata["version"])
    return metadata["kind"], config, state, metadata.get("info", "")


def _expect_kind(path: Path, kind: str, expected: str) -> None:
    if kind != expected:
        raise CheckpointError(f"{path}: holds a {kind} model, expected a {expected} model")
