"""Trained weights -> upstream's inference files (GPT `.ckpt`, SoVITS `.pth` with its version marker)
and safetensors twins, written through `myna.checkpoints` (the one format gate).

Configs are written in upstream's layouts: the GPT's as s1 yaml sections ("model", "data", "train"),
the SoVITS's as s2.json hps ("data", "model", "train") with "version" both in "model" and at the top,
as upstream's trainer saves it. "data" and "model" keys a base model's config has beyond the model's
own fields (e.g. "n_mel_channels") are kept, so upstream's WebUI finds everything it reads; given the
run's settings, the "train" block holds them under upstream's key names (the base's block described
another run), plus the model's `segment_size`, which upstream's inference code reads.
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


# myna's setting -> upstream's "train" key (s2.json for SoVITS, s1longer-v2.yaml for the GPT)
_SOVITS_TRAIN_KEYS = {"epochs": "epochs", "batch_size": "batch_size", "learning_rate": "learning_rate",
                      "betas": "betas", "eps": "eps", "lr_decay": "lr_decay", "c_mel": "c_mel", "c_kl": "c_kl",
                      "text_low_lr_rate": "text_low_lr_rate", "seed": "seed"}
_GPT_TRAIN_KEYS = {"epochs": "epochs", "batch_size": "batch_size", "seed": "seed",
                   "save_every_epochs": "save_every_n_epoch", "grad_clip": "gradient_clip", "precision": "precision"}


def train_block(settings: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """This run's "train" section: `settings` under upstream's key names."""
    block: dict[str, Any] = {}
    for ours, theirs in keys.items():
        if ours in settings:
            value = settings[ours]
            block[theirs] = list(value) if isinstance(value, tuple) else value
    return block


def export_gpt(model: T2SModel, path: str | Path, info: str = "", base_config: dict[str, Any] | None = None,
               train_settings: dict[str, Any] | None = None, safetensors: bool = False,
               key: bytes | None = None) -> list[Path]:
    """Write `path` (.ckpt, fp16 like upstream) and, with `safetensors`, a `.safetensors` twin, sealed with `key` if
    given; returns the paths."""
    path = Path(path)
    config = _merged(base_config, model.config.to_dict())
    if train_settings:
        config["train"] = train_block(train_settings, _GPT_TRAIN_KEYS)
    state = {k: v for k, v in model.state_dict().items()}
    ckpt = checkpoints.GPTCheckpoint(config, state, info)
    written = [path, path.with_suffix(".safetensors")] if safetensors else [path]
    for target in written:
        checkpoints.write_gpt(target, ckpt, key=key)
    return written


def export_sovits(model: SoVITS, path: str | Path, info: str = "", base_config: dict[str, Any] | None = None,
                  train_settings: dict[str, Any] | None = None, safetensors: bool = False,
                  key: bytes | None = None) -> list[Path]:
    """Write `path` (.pth with upstream's version marker, fp16, no `enc_q`) and, with `safetensors`, a twin, sealed
    with `key` if given."""
    path = Path(path)
    version = model.config.version
    own = model.config.to_dict()
    own["model"]["version"] = version
    config = _merged(base_config, own)
    config["version"] = version
    if train_settings:
        config["train"] = {**train_block(train_settings, _SOVITS_TRAIN_KEYS),
                           "segment_size": own["train"]["segment_size"],
                           "fp16_run": train_settings.get("precision", "fp32") != "fp32"}  # s2.json's mixed-precision flag
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("enc_q.")}
    ckpt = checkpoints.SoVITSCheckpoint(version, config, state, info)
    written = [path, path.with_suffix(".safetensors")] if safetensors else [path]
    for target in written:
        checkpoints.write_sovits(target, ckpt, key=key)
    return written
