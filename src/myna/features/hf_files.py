"""Reading a local Hugging Face model directory: config.json and its weights, without `transformers`.

The weights are `model.safetensors` (preferred, as transformers prefers it) or `pytorch_model.bin`,
each optionally sharded with an `*.index.json`. Only the tensors a caller keeps are read; safetensors
and torch zip files are memory-mapped, so a tensor already in float32 is never copied. Key names are
normalised as transformers does for old checkpoints (LayerNorm `gamma`/`beta` -> `weight`/`bias`).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from myna.features.model_dir import ModelDirError, check_model_dir

SAFETENSORS, TORCH_BIN = "model.safetensors", "pytorch_model.bin"
_OLD_NAMES = {"gamma": "weight", "beta": "bias"}


def read_config(model_dir: Path, what: str) -> dict[str, Any]:
    """config.json of a model directory as a dict."""
    path = check_model_dir(model_dir, ("config.json",), what) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: not a readable JSON model config ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelDirError(f"{path}: not a model config (expected a JSON object)")
    return config


def weight_files(model_dir: Path, what: str) -> list[Path]:
    """The weight file(s) of a model directory: safetensors first, else pytorch_model.bin (sharded or not)."""
    for name in (SAFETENSORS, TORCH_BIN):
        if (model_dir / name).is_file():
            return [model_dir / name]
        index = model_dir / f"{name}.index.json"
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError) as exc:
                raise ModelDirError(f"{index}: not a readable weight index ({exc})") from exc
            missing = [shard for shard in shards if not (model_dir / shard).is_file()]
            if missing:
                raise ModelDirError(f"{model_dir}: {what} weight shard(s) missing: {', '.join(missing)}")
            return [model_dir / shard for shard in shards]
    raise ModelDirError(f"{model_dir}: no {what} weights ({SAFETENSORS} or {TORCH_BIN})")


def normalized_key(key: str) -> str:
    """A state-dict key with old LayerNorm names (`gamma`, `beta`) in today's (`weight`, `bias`)."""
    head, _, last = key.rpartition(".")
    return f"{head}.{_OLD_NAMES[last]}" if head and last in _OLD_NAMES else key


def read_weights(model_dir: Path, what: str, keep: Callable[[str], str | None]) -> dict[str, torch.Tensor]:
    """The tensors whose normalised key `keep` maps to a name (None drops it), under those names."""
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(model_dir, what):
        for key, load in _lazy_tensors(path):
            name = keep(normalized_key(key))
            if name is not None:
                state[name] = load()
    return state


def assign_weights(model: nn.Module, state: dict[str, torch.Tensor], where: Path, what: str) -> None:
    """Give a model built on the meta device the tensors of `state`, in float32 (no copy of float32 ones).

    Every key of the model must be in `state` with its shape; extra keys are a bug of the caller.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        details = [f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []
        details += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
        details += [f"{wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}"] if wrong else []
        raise ModelDirError(f"{where}: the {what} weights do not fit its config.json: {'; '.join(details)}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)


def _lazy_tensors(path: Path):
    """(key, loader) pairs of one weight file; a loader reads only its own tensor."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            handle = safe_open(str(path), framework="pt", device="cpu")
            return [(key, lambda key=key: handle.get_tensor(key)) for key in handle.keys()]
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelDirError(f"{path}: damaged or not a safetensors file ({exc})") from exc
    try:
        # mmap needs the zip format (torch >= 1.6); older pickle files are read whole
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except (RuntimeError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelDirError(f"{path}: damaged or not a torch weight file ({first})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelDirError(f"{path}: not a state dict of named tensors")
    return [(key, lambda value=value: value) for key, value in state.items()]
