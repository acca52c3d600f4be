"""A trained voice's saved epochs: which weights and samples each has, and switching the voice to one.

With `myna train --save-epoch-weights`, every saved epoch's weights are exported under upstream's names
(DATA_DIR/trained/NAME/epochs/NAME_e{E}_s{S}.pth for SoVITS, NAME-e{E}.ckpt for the GPT); every saved
state also left a sample (work/sovits/samples/step_S.wav: the first utterance resynthesised;
work/gpt/samples/step_S.wav: the first transcript spoken by the GPT through the trained SoVITS).
`myna voices use NAME --epoch E` points voice.json at epoch E's weights; `--final` back at NAME_s1/_s2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from myna.engine.voice_file import read_voice_file, trained_voice_dir, write_voice_file
from myna.errors import InputError

EPOCHS_DIR = "epochs"
STAGES = ("sovits", "gpt")
_LABELS = {"sovits": "SoVITS", "gpt": "GPT"}


@dataclass(frozen=True)
class SavedEpoch:
    """One saved epoch of one stage."""

    stage: str  # "sovits" | "gpt"
    epoch: int
    step: int
    weights: Path | None  # the exported weights, when --save-epoch-weights was on
    sample: Path | None  # the sample audio written at that checkpoint


def _status(home: Path) -> dict:
    """The run's work/status.json (written by myna.train.history), or {}."""
    try:
        return json.loads((home / "work" / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _weights(home: Path, name: str, stage: str) -> dict[int, tuple[int | None, Path]]:
    folder = home / EPOCHS_DIR
    found: dict[int, tuple[int | None, Path]] = {}
    if not folder.is_dir():
        return found
    pattern = re.compile(rf"{re.escape(name)}_e(\d+)_s(\d+)\.pth" if stage == "sovits" else rf"{re.escape(name)}-e(\d+)\.ckpt")
    for path in folder.iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            step = int(match.group(2)) if stage == "sovits" else None
            found[int(match.group(1))] = (step, path)
    return found


def saved_epochs(data_dir: str | Path, name: str) -> list[SavedEpoch]:
    """Every epoch of both stages that has exported weights or a sample, by stage then epoch."""
    home = trained_voice_dir(data_dir, name)
    status = _status(home)
    out = []
    for stage in STAGES:
        info = status.get("stages", {}).get(_LABELS[stage], {})
        per_epoch = int(info.get("per_epoch") or 0)
        samples = {}
        folder = home / "work" / stage / "samples"
        for wav in sorted(folder.glob("step_*.wav")) if folder.is_dir() else []:
            step = int(wav.stem.removeprefix("step_"))
            if per_epoch and step % per_epoch == 0:
                samples[step // per_epoch] = (step, wav)
        weights = _weights(home, name, stage)
        for epoch in sorted(set(samples) | set(weights)):
            step = samples.get(epoch, (None, None))[0] or weights.get(epoch, (None, None))[0] or epoch * per_epoch
            out.append(SavedEpoch(stage, epoch, step, weights.get(epoch, (None, None))[1], samples.get(epoch, (None, None))[1]))
    return out


def describe_epochs(data_dir: str | Path, name: str) -> list[str]:
    """Lines listing each saved epoch with its weights and sample (for the console)."""
    lines = []
    for item in saved_epochs(data_dir, name):
        weights = item.weights.name if item.weights else "no weights (train with --save-epoch-weights)"
        sample = str(item.sample) if item.sample else "no sample"
        lines.append(f"{_LABELS[item.stage]:<6} epoch {item.epoch:>3}  step {item.step:>6}  {weights}  sample: {sample}")
    return lines


def use_epoch(data_dir: str | Path, name: str, sovits_epoch: int | None = None, gpt_epoch: int | None = None,
              final: bool = False) -> Path:
    """Point NAME's voice.json at the weights of the given epochs (or back at the final export); its path."""
    home = trained_voice_dir(data_dir, name)
    voice = read_voice_file(home, check_files=False)
    if final:
        voice = replace(voice, sovits=home / f"{name}_s2.pth", gpt=home / f"{name}_s1.ckpt")
    for stage, epoch in (("sovits", sovits_epoch), ("gpt", gpt_epoch)):
        if epoch is None:
            continue
        found = _weights(home, name, stage)
        if epoch not in found:
            have = ", ".join(str(e) for e in sorted(found)) or "none"
            raise InputError(f"voice {name!r} has no {_LABELS[stage]} weights for epoch {epoch} (saved epochs: {have}); "
                             "train with --save-epoch-weights to keep every saved epoch's weights")
        voice = replace(voice, **{stage: found[epoch][1]})
    for key, path in voice.missing_files():
        if key in STAGES:
            raise InputError(f"voice {name!r}: {key} file {path} is missing")
    return write_voice_file(home, voice)
