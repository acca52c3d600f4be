"""Trained weights -> upstream's inference files (GPT `.ckpt`, SoVITS `.pth` with its version marker)
and safetensors twins, written through `myna.checkpoints` (the one format gate).

Configs are written in upstream's layouts: the GPT's as s1 yaml sections ("model", "data", plus the
"train" settings used), the SoVITS's as s2.json hps ("data", "model", "train") with "version" both in
"model" and at the top, as upstream's trainer saves it. Keys a base model's config has beyond the
model's own fields (e.g. "n_mel_channels") are kept, so upstream's WebUI finds everything it reads.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from myna import checkpoints
from myna.models.sovits import SoVITS
from myna.models.t2s import T2SModel


def _merged(base: dict[str, Any] | None, own: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base) if base else {}
    for section, values in own.items():
        if isinstance(values, dict):
            merged.setdefault(section, {})
            merged[section].update(values)
        else:
            merged[section] = values
    return merged


def export_gpt(model: T2SModel, path: str | Path, info: str = "", base_config: dict[str, Any] | None = None,
               train_settings: dict[str, Any] | None = None, key: bytes | None = None) -> list[Path]:
    """Write `path` (.ckpt, fp16 like upstream) and its `.safetensors` twin, sealed with `key` if given; returns both."""
    path = Path(path)
    config = _merged(base_config, model.config.to_dict())
    if train_settings:
        config.setdefault("train", {}).update({k: v for k, v in train_settings.items() if k in ("epochs", "batch_size", "seed")})
    state = {k: v for k, v in model.state_dict().items()}
    ckpt = checkpoints.GPTCheckpoint(config, state, info)
    twin = path.with_suffix(".safetensors")
    checkpoints.write_gpt(path, ckpt, key=key)
    checkpoints.write_gpt(twin, ckpt, key=key)
    return [path, twin]


def export_sovits(model: SoVITS, path: str | Path, info: str = "",
                  base_config: dict[str, Any] | None = None, key: bytes | None = None) -> list[Path]:
    """Write `path` (.pth with upstream's version marker, fp16, no `enc_q`) and its `.safetensors` twin, sealed with
    `key` if given."""
    path = Path(path)
    version = model.config.version
    own = model.config.to_dict()
    own["model"]["version"] = version
    config = _merged(base_config, own)
    config["version"] = version
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("enc_q.")}
    ckpt = checkpoints.SoVITSCheckpoint(version, config, state, info)
    twin = path.with_suffix(".safetensors")
    checkpoints.write_sovits(path, ckpt, key=key)
    checkpoints.write_sovits(twin, ckpt, key=key)
    return [path, twin]
