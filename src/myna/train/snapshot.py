"""Weights-only training snapshots: small enough to keep in the repository, enough to resume from.

A snapshot folder holds, per stage ("sovits", "gpt", and "discriminator" once the recipe trains the decoder
against it), the weights a training run needs (the SoVITS generator with its posterior encoder, the GPT, the
SoVITS discriminator at the generator's step) in safetensors: matrices and kernels in int8 with one
fp16 scale per output channel (about 0.2% of a weight's range as rounding, which a resumed run trains
away at once), everything else in fp16. The `exact` prefixes (the tokenizer, whose argmax must not move and
which training never changes) are kept in fp16 in a file of their own, `STAGE.exact.safetensors`, that does
not name the step: successive snapshots write it byte for byte the same, so the repository's history stores
it once. Plus `snapshot.json`::

    {"format": 1,
     "stages": {"sovits": {"file": "sovits.safetensors", "exact_file": "sovits.exact.safetensors",
                           "step": 4000, "config": {...}},
                "gpt": {"file": "gpt.safetensors", "step": 3000, "config": {...}}},
     "curve": [{"sovits_step": ..., "gpt_step": ..., "resynth_wer": ..., "wer": ..., ...}, ...],
     "notes": {...}}

No optimizer moments: a run resumed from a snapshot starts its optimizers
afresh at the snapshot's step, with the trainer's learning-rate warm-up counted from there
(`warm_start`). That keeps a snapshot at a few tens of MB instead of the ~5x larger training state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from myna.atomic import atomic_write
from myna.errors import InputError
from myna.train import loop

FORMAT = 1
MANIFEST = "snapshot.json"
STAGES = ("sovits", "gpt", "discriminator")
_SCALE = ":scale"
_INT8_MIN_SIZE = 4096  # smaller tensors (norms, biases, tiny kernels) stay fp16


def _int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel (dim 0): (codes, fp16 scales shaped to broadcast)."""
    flat = weight.float().reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(1) / 127.0).clamp(min=1e-12).half().float()
    codes = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return codes.reshape(weight.shape).contiguous(), scale.half().reshape(-1, *([1] * (weight.dim() - 1))).contiguous()


@dataclass
class Snapshot:
    """A snapshot folder's manifest (see the module doc)."""

    root: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path) -> Snapshot:
        """Read ROOT/snapshot.json (an empty snapshot if there is none)."""
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            return cls(root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable snapshot manifest ({exc})") from None
        if data.get("format") != FORMAT:
            raise InputError(f"{path}: snapshot format {data.get('format')!r}, this myna reads {FORMAT}")
        return cls(root, data.get("stages", {}), data.get("curve", []), data.get("notes", {}))

    def step(self, stage: str) -> int:
        """The step `stage` was saved at (0: not in the snapshot)."""
        return int(self.stages.get(stage, {}).get("step", 0))

    def weights(self, stage: str) -> dict[str, torch.Tensor]:
        """`stage`'s weights as fp32 tensors (int8 ones scaled back; integer buffers keep their type)."""
        from safetensors.torch import load_file

        if stage not in self.stages:
            raise InputError(f"{self.root}: the snapshot has no {stage} weights")
        stored = {}
        for name in self.files(stage):
            stored.update(load_file(str(self.root / name)))
        state = {}
        for key, value in stored.items():
            if key.endswith(_SCALE):
                continue
            if key + _SCALE in stored:
                state[key] = value.float() * stored[key + _SCALE].float()
            else:
                state[key] = value.float() if value.is_floating_point() else value
        return state

    def files(self, stage: str) -> list[str]:
        """The names of `stage`'s weight files in the folder (none when it is not in the snapshot)."""
        entry = self.stages.get(stage, {})
        return [entry[key] for key in ("file", "exact_file") if key in entry]

    def put(self, stage: str, step: int, state: dict[str, torch.Tensor], config: dict[str, Any],
            exact: tuple[str, ...] = ()) -> list[Path]:
        """Store `stage`'s weights at `step` with its model config (see the module doc for the precision and the
        `exact` prefixes' file); call `save` to write the manifest. Returns the stage's files the new manifest
        no longer names, to delete after `save`."""
        from safetensors.torch import save

        if stage not in STAGES:
            raise InputError(f"unknown snapshot stage {stage!r}; expected one of {', '.join(STAGES)}")
        stored: dict[str, torch.Tensor] = {}
        kept: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            value = value.detach().cpu()
            is_exact = key.startswith(exact)
            if not is_exact and value.is_floating_point() and value.dim() >= 2 and value.numel() >= _INT8_MIN_SIZE:
                stored[key], stored[key + _SCALE] = _int8(value)
            else:
                (kept if is_exact else stored)[key] = (value.half() if value.is_floating_point() else value).contiguous()
        old = set(self.files(stage))
        entry: dict[str, Any] = {"file": f"{stage}.safetensors"}
        atomic_write(self.root / entry["file"], save(stored, metadata={"stage": stage, "step": str(step)}), parents=True)
        if kept:
            entry["exact_file"] = f"{stage}.exact.safetensors"
            atomic_write(self.root / entry["exact_file"], save(kept, metadata={"stage": stage}))
        self.stages[stage] = {**entry, "step": int(step), "config": config}
        return [self.root / name for name in sorted(old - set(entry.values()))]

    def drop(self, stage: str) -> list[Path]:
        """Take `stage` out of the manifest; returns its files, to delete after `save`."""
        files = [self.root / name for name in self.files(stage)]
        self.stages.pop(stage, None)
        return files

    def save(self) -> Path:
        """Write the manifest (after the weights, so that it never names a file not yet written). The weight files
        are overwritten in place before it: an interrupted write leaves newer weights beside the older manifest, which
        the committed folder's version control restores."""
        data = {"format": FORMAT, "stages": self.stages, "curve": self.curve, "notes": self.notes}
        path = self.root / MANIFEST
        atomic_write(path, json.dumps(data, indent=1) + "\n", parents=True)
        return path

    def size_bytes(self) -> int:
        """Bytes of the weight files and manifest."""
        files = [self.root / MANIFEST, *(self.root / name for stage in self.stages for name in self.files(stage))]
        return sum(p.stat().st_size for p in files if p.is_file())


def seed_training_state(stage: loop.Stage, out_dir: Path, step: int, settings) -> Path:
    """Write a loop checkpoint at `step` from a trainer holding snapshot weights and fresh optimizers.

    `loop.run` then resumes at `step` as after any interruption; the trainer's `warm_start` (saved in
    the state) makes its learning-rate warm-up start over from there."""
    stage.warm_start = step
    folder = out_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{loop.STATE_PREFIX}{step:08d}.pt"
    loop.atomic_save({"step": step, "stage": stage.state(), "settings": settings.to_dict()}, path)
    return path
