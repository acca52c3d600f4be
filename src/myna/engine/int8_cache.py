"""The int8 GPT's quantized projections, kept on disk so a GPT file is quantized once, not at every load.

Quantizing the full-size v2 GPT's 97 projections (scales, rounding, with their fp16 -> fp32
conversion first) took ~0.55 s of CPU at every start of `myna say`; from this cache only fbgemm's
weight packing remains (~0.3 s), and the layers are the same bit for bit. One safetensors file
per GPT file in ~/.cache/myna/int8 (a folder of this user's alone, as for the kernels), named by a
hash of the GPT file's resolved path, size and modification time (as Python's bytecode cache
keys on its sources), the int8 weight range and the torch version; a file that fails to read is
ignored and written again. The newest KEEP files are kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import torch

from myna.engine.precision import Int8Linear, int8_weight_levels
from myna.engine.user_cache import user_cache_dir
from myna.models.t2s import T2SModel

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what is stored, or how the weights are quantized, changes
KEEP = 8
_SUFFIXES = (".weight", ".bias", "_weight", "_bias")


def cache_file(gpt_path: str | Path, directory: Path | None = None) -> Path | None:
    """Where the quantized projections of this GPT file are kept (None when no cache folder is usable)."""
    directory = directory or user_cache_dir("int8")
    if directory is None:
        return None
    path = Path(gpt_path).resolve()
    info = path.stat()
    identity = "\0".join(map(str, (FORMAT, path, info.st_size, info.st_mtime_ns, int8_weight_levels(),
                                   torch.__version__)))
    return directory / f"gpt-{hashlib.sha256(identity.encode()).hexdigest()[:24]}.safetensors"


def read(file: Path | None) -> dict[str, tuple] | None:
    """Layer name -> (int8 values, float64 scales, bias or None), as stored by `write`; None if absent or unreadable."""
    if file is None or not file.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(file)
    except (SafetensorError, OSError, ValueError) as error:
        log.warning("ignoring the unreadable int8 cache file %s: %s", file, error)
        return None
    layers = {key.removesuffix(".values") for key in tensors if key.endswith(".values")}
    try:
        quantized = {name: (tensors[f"{name}.values"], tensors[f"{name}.scales"], tensors.get(f"{name}.bias"))
                     for name in layers}
    except KeyError as error:
        log.warning("ignoring the incomplete int8 cache file %s: no %s", file, error)
        return None
    os.utime(file)  # recently used: kept when older files are removed
    return quantized


def write(file: Path | None, model: T2SModel) -> None:
    """Store the int8 projections of a GPT prepared for int8 (atomically; failures only logged)."""
    if file is None:
        return
    from safetensors.torch import save_file

    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            values, scales, bias = module.quantized()
            tensors[f"{name}.values"], tensors[f"{name}.scales"] = values.contiguous(), scales.contiguous()
            if bias is not None:
                tensors[f"{name}.bias"] = bias.contiguous()
    try:
        handle, partial = tempfile.mkstemp(prefix=file.stem + ".", suffix=".partial", dir=file.parent)
        os.close(handle)
        try:
            save_file(tensors, partial)
            os.replace(partial, file)
        finally:
            Path(partial).unlink(missing_ok=True)
        _keep_newest(file.parent, KEEP)
    except OSError as error:
        log.warning("could not keep the int8 GPT weights in %s: %s", file.parent, error)


def projection_keys(quantized: dict[str, tuple], state_keys) -> set[str]:
    """The state-dict keys (weights and biases) of the projections `quantized` replaces."""
    return {key for key in state_keys if any(key.endswith(s) and key[: -len(s)] in quantized for s in _SUFFIXES)}


def _keep_newest(directory: Path, keep: int) -> None:
    files = sorted(directory.glob("gpt-*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in files[keep:]:
        stale.unlink(missing_ok=True)
