"""What a `myna train` run was started on, so that running the command again resumes only the same run.

`work/run.json` records a fingerprint of the inputs (the recordings or `.list` and the audio it names),
of the base models (or the preset), and each stage's settings apart from those that only extend or
pace a run (epochs, device, checkpoint cadence). The same inputs and settings resume (more epochs
extend the run); anything else stops with what changed and the two ways on: `--restart` (train anew
from the base) or `--continue-training` (start from this voice's latest weights on the new inputs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myna.atomic import atomic_write
from myna.errors import InputError

RUN_FILE = "run.json"
RUN_FORMAT = 1
# settings that may change between runs of one voice: they extend a run or say how it is paced/where it runs
PACING = ("epochs", "device", "save_every_epochs", "save_every_steps", "save_every_minutes", "max_steps",
          "keep_checkpoints")


class RunMismatch(InputError):
    """`myna train --name NAME` was started on other inputs or settings than NAME's existing run."""


def hash_files(paths: list[Path], root: Path | None = None) -> str:
    """sha256 over the names (relative to `root` when given) and bytes of `paths`, in order."""
    digest = hashlib.sha256()
    for path in paths:
        name = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name
        digest.update(name.encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def data_fingerprint(data: Path) -> str:
    """A hash of what `myna train --data` names: a `.list` (its text and the audio it lists) or recordings."""
    from myna.train.listfile import read_list
    from myna.train.sources import find_inputs

    if data.suffix == ".list" and data.is_file():
        entries, _ = read_list(data)
        digest = hashlib.sha256(data.read_bytes())
        digest.update(hash_files([e.audio for e in entries if e.audio.is_file()]).encode())
        return digest.hexdigest()
    audio, lists, _ = find_inputs([data])
    root = data if data.is_dir() else data.parent
    return hash_files(sorted(audio) + sorted(lists), root)


@dataclass
class RunRecord:
    """The content of work/run.json."""

    data: str
    base: str
    settings: dict[str, dict[str, Any]]  # stage -> settings without PACING keys
    epochs: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    states_pruned: bool = False
    continued_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"format": RUN_FORMAT, "data": self.data, "base": self.base, "settings": self.settings,
                "epochs": self.epochs, "finished": self.finished, "states_pruned": self.states_pruned,
                "continued_from": self.continued_from}


def stage_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a run (PACING keys dropped), JSON-normalised."""
    return json.loads(json.dumps({k: v for k, v in settings.items() if k not in PACING}))


def read_run(work: Path) -> RunRecord | None:
    """work/run.json, or None if this voice has no recorded run."""
    try:
        data = json.loads((work / RUN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{work / RUN_FILE}: unreadable ({exc}); start over with --restart") from None
    return RunRecord(data["data"], data["base"], data["settings"], data.get("epochs", {}), data.get("finished", False),
                     data.get("states_pruned", False), data.get("continued_from"))


def write_run(work: Path, record: RunRecord) -> None:
    """Write work/run.json atomically."""
    atomic_write(work / RUN_FILE, json.dumps(record.to_dict(), indent=1) + "\n", parents=True)


def differences(old: RunRecord, new: RunRecord) -> list[str]:
    """What differs between two runs' inputs and settings, in words."""
    changed = []
    if old.data != new.data:
        changed.append("the training data")
    if old.base != new.base:
        changed.append("the base models")
    for stage in sorted(set(old.settings) | set(new.settings)):
        before, after = old.settings.get(stage, {}), new.settings.get(stage, {})
        for key in sorted(set(before) | set(after)):
            if key not in before and stage in old.settings:
                continue  # a setting added to myna since that run started: resuming it must still work
            if before.get(key) != after.get(key):
                changed.append(f"{stage} {key} ({before.get(key)!r} -> {after.get(key)!r})")
    return changed


def check_against(previous: RunRecord | None, new: RunRecord, name: str, restart: bool,
                  continue_training: bool) -> str:
    """How this run relates to the voice's previous one: "new", "resume" or "continue"; RunMismatch if
    it may not go on without --restart or --continue-training."""
    if previous is None or restart:
        return "new"
    changed = differences(previous, new)
    if not changed:
        shrunk = [f"{stage} ({previous.epochs[stage]} -> {epochs})" for stage, epochs in new.epochs.items()
                  if epochs < previous.epochs.get(stage, 0)]
        if shrunk:
            raise RunMismatch(f"voice {name!r} was trained for more epochs than asked now: {', '.join(shrunk)}; "
                              "pass --restart to train it again from the base with these settings")
        grown = any(epochs > previous.epochs.get(stage, 0) for stage, epochs in new.epochs.items())
        if grown and previous.states_pruned:
            raise RunMismatch(f"voice {name!r} finished and its training states were pruned, so it cannot be "
                              "trained for more epochs; pass --restart (and --keep-states to keep a run extensible)")
        return "resume"
    if continue_training:
        return "continue"
    raise RunMismatch(
        f"voice {name!r} was trained on other inputs or settings (changed: {'; '.join(changed)}). Pass --restart "
        f"to train it anew from the base, --continue-training to go on from its current weights with these, "
        f"or choose another --name")
