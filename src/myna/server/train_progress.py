"""How far a `myna train` / `myna data prepare` child process has got, read from the files it writes.

One function, `read_progress`, is the only place that knows those files. A run that writes the
machine-readable status (`status.json` and `losses.jsonl` in DATA_DIR/trained/NAME/work/) is read
from them; otherwise the child's own output (its log) is parsed: the trainers' progress line
(`SoVITS [####....] 3/8 ep 1 mel=21.300 kl=0.500 eta 0:12`) and tqdm's bars (`features:  40%|..| 2/5`).
The server never imports myna.train, so nothing here does either.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUS_FILE = "status.json"
HISTORY_FILE = "losses.jsonl"
MAX_POINTS = 600  # loss points per stage sent to a client (evenly thinned beyond that)
_TAIL_BYTES = 256 * 1024  # of a log, only the end is searched for the latest line

_TRAIN_LINE = re.compile(r"(SoVITS|GPT) \[[#.]*\] (\d+)/(\d+) ep (\d+) (.*?)\s*eta (\d+):(\d\d)")
_LOSS = re.compile(r"([A-Za-z_][\w/.-]*)=(-?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|nan|inf))")
_BAR = re.compile(r"(slicing|transcribing|denoising|features)[^:\r\n]*:\s+\d+%\|[^|\r\n]*\|\s*(\d+)/(\d+)")


@dataclass
class Progress:
    """What a client shows: the stage, its step of total, the ETA, the latest losses and their history."""

    stage: str | None = None
    step: int = 0
    total: int = 0
    epoch: int = 0
    eta_s: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # {"stage", "step", "losses"}, oldest first
    source: str = "log"  # "status" when read from the run's status file

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def read_progress(log_path: Path, run_folder: Path | None) -> Progress:
    """The progress of a run: from `run_folder`'s status files when it has them, else from its log."""
    if run_folder is not None:
        status = _read_json(run_folder / STATUS_FILE)
        if status is not None:
            return _from_status(status, run_folder / HISTORY_FILE)
    return _from_log(log_path)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _from_status(status: dict, history_path: Path) -> Progress:
    """The status-file format: {"stage", "step", "total", "epoch", "eta_s", "losses", "state", ...}."""
    history = []
    try:
        lines = history_path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
            history.append({"stage": str(record["stage"]), "step": int(record["step"]),
                            "losses": {str(k): float(v) for k, v in record["losses"].items()}})
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line cut short by a crash
    state = status.get("state")
    stage = status.get("stage") if state == "training" else (state or status.get("stage"))
    eta = status.get("eta_s")
    progress = Progress(stage=stage, step=int(status.get("step") or 0), total=int(status.get("total") or 0),
                        epoch=int(status.get("epoch") or 0), eta_s=float(eta) if eta is not None else None,
                        losses={str(k): float(v) for k, v in (status.get("losses") or {}).items()},
                        history=_thin(history), source="status")
    # the status file is rewritten every few seconds, the history at every step: take the newer step
    latest = history[-1] if history else None
    if latest and latest["stage"] == status.get("stage") and latest["step"] > progress.step:
        progress.step, progress.losses = latest["step"], latest["losses"]
    return progress


def _from_log(log_path: Path) -> Progress:
    """The trainers' progress lines (every one: the loss history) and the last tqdm bar of the log."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Progress()
    history = []
    progress = Progress()
    last_train_at = -1
    for match in _TRAIN_LINE.finditer(text):
        stage, step, total, epoch = match.group(1), int(match.group(2)), int(match.group(3)), int(match.group(4))
        losses = {k: float(v) for k, v in _LOSS.findall(match.group(5))}
        if history and history[-1]["stage"] == stage and history[-1]["step"] >= step:
            # a resumed run redraws from an earlier step: keep the latest line per step
            history = [h for h in history if not (h["stage"] == stage and h["step"] >= step)]
        history.append({"stage": stage, "step": step, "losses": losses})
        eta = int(match.group(6)) * 60 + int(match.group(7))
        progress = Progress(stage=stage, step=step, total=total, epoch=epoch, eta_s=float(eta), losses=losses)
        last_train_at = match.end()
    tail_start = max(last_train_at, len(text) - _TAIL_BYTES)
    bars = list(_BAR.finditer(text, tail_start))
    if bars:
        bar = bars[-1]
        progress = Progress(stage=bar.group(1), step=int(bar.group(2)), total=int(bar.group(3)))
    progress.history = _thin(history)
    return progress


def _thin(history: list[dict]) -> list[dict]:
    """At most MAX_POINTS points per stage, evenly spaced, always keeping each stage's last point."""
    stages: dict[str, list[dict]] = {}
    for point in history:
        stages.setdefault(point["stage"], []).append(point)
    kept = []
    for points in stages.values():
        if len(points) > MAX_POINTS:
            stride = len(points) / MAX_POINTS
            points = [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]
        kept.extend(points)
    return kept


def last_message(log_path: Path, prefixes: tuple[str, ...] = ("myna train:", "myna data prepare:")) -> str | None:
    """The last line a command wrote about itself (its error, when it failed), without the prefix."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(re.split(r"[\r\n]+", tail)):
        line = line.strip()
        for prefix in prefixes:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    return None
