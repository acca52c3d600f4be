"""What a training run tells the outside while it runs: loss history, a status file and a loss-curve PNG.

All three live in the run's work folder (DATA_DIR/trained/NAME/work/) and are meant to be followed by
people (`myna train --status NAME`) and by programs (a job runner that starts `myna train` as a child
process and never imports myna.train):

    losses.jsonl   one JSON object per optimizer step, appended as it finishes:
                   {"stage": "SoVITS"|"GPT", "step": 12, "epoch": 3, "time": 1733490000.1, "losses": {"mel": 21.3, ...}}
                   (`epoch` counts from 1; lines past a resumed step are dropped on resume)
    status.json    the run's state, rewritten atomically (at most every 2 s while steps finish):
                   {"format": 1, "name", "pid", "state": "preparing"|"features"|"training"|"exporting"|"done"|
                    "failed"|"interrupted", "stage", "step", "total", "epoch", "epochs", "stages": {label:
                    {"step", "total", "per_epoch", "seconds_per_step", "saved": [[step, epoch, reason], ...]}},
                    "losses", "eta_s", "started", "updated", "message", "voice"}
    loss.png       both stages' loss curves, redrawn at each saved state and at most once a minute
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myna.atomic import atomic_write

HISTORY_FILE = "losses.jsonl"
STATUS_FILE = "status.json"
PLOT_FILE = "loss.png"
STATUS_FORMAT = 1
_STATUS_EVERY_S = 2.0
_PLOT_EVERY_S = 60.0


def _now_iso(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at if at is not None else time.time()))


@dataclass
class RunHistory:
    """Writes losses.jsonl, status.json and loss.png for one `myna train` run (a `myna.train.loop.RunLog`)."""

    folder: Path
    name: str
    status: dict[str, Any] = field(default_factory=dict)
    plot: bool = True
    _stage_started: float = 0.0
    _stage_first_step: int = 0
    _last_status: float = 0.0
    _last_plot: float = 0.0

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = read_status(self.folder)
        stages = previous.get("stages", {}) if previous else {}
        self.status = {"format": STATUS_FORMAT, "name": self.name, "pid": os.getpid(), "state": "starting",
                       "stage": None, "step": 0, "total": 0, "epoch": 0, "epochs": 0, "stages": stages,
                       "losses": {}, "eta_s": None, "started": _now_iso(), "updated": _now_iso(),
                       "message": None, "voice": None}
        self._write_status()

    # -- the run's phases ----------------------------------------------------------------------------
    def phase(self, state: str, message: str | None = None, **extra: Any) -> None:
        """Record a phase of the run ("preparing", "features", "exporting", "done", "failed", "interrupted")."""
        self.status.update(state=state, message=message, **extra)
        if state in ("done", "failed", "interrupted"):
            self.status["eta_s"] = None
            self.redraw()
        self._write_status()

    # -- RunLog -------------------------------------------------------------------------------------
    def started(self, label: str, step: int, total: int, per_epoch: int) -> None:
        """A stage starts (or resumes) at `step`: history lines past it are dropped."""
        self._drop_after(label, step)
        stage = self.status["stages"].setdefault(label, {"saved": []})
        stage.update(step=step, total=total, per_epoch=per_epoch, seconds_per_step=None)
        stage["saved"] = [s for s in stage.get("saved", []) if s[0] <= step]
        self.status.update(state="training", stage=label, step=step, total=total, epoch=step // max(per_epoch, 1),
                           epochs=-(-total // max(per_epoch, 1)), eta_s=None, message=None)
        self._stage_started, self._stage_first_step = time.monotonic(), step
        self._write_status()

    def stepped(self, label: str, step: int, epoch: int, losses: dict[str, float]) -> None:
        """Append the step's losses; refresh the status (and the plot) now and then."""
        record = {"stage": label, "step": step, "epoch": epoch + 1, "time": round(time.time(), 3),
                  "losses": {k: round(float(v), 6) for k, v in losses.items()}}
        with open(self.folder / HISTORY_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        stage = self.status["stages"][label]
        done = step - self._stage_first_step
        per_step = (time.monotonic() - self._stage_started) / max(done, 1)
        stage.update(step=step, seconds_per_step=round(per_step, 3))
        self.status.update(step=step, epoch=epoch + 1, losses=record["losses"],
                           eta_s=round(per_step * (stage["total"] - step), 1))
        now = time.monotonic()
        if now - self._last_status >= _STATUS_EVERY_S or step >= stage["total"]:
            self._write_status()
        if now - self._last_plot >= _PLOT_EVERY_S:
            self.redraw()

    def saved(self, label: str, step: int, epoch: int, reason: str) -> None:
        """Note a saved training state; redraw the loss curve."""
        self.status["stages"][label].setdefault("saved", []).append([step, epoch + 1, reason])
        self.redraw()
        self._write_status()

    # -- files ----------------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw loss.png from the history so far (nothing without history)."""
        self._last_plot = time.monotonic()
        if not self.plot:
            return
        from myna.train.lossplot import plot_history

        history = read_history(self.folder)
        if history:
            plot_history(history, self.folder / PLOT_FILE, title=self.name)

    def _write_status(self) -> None:
        self._last_status = time.monotonic()
        self.status["updated"] = _now_iso()
        atomic_write(self.folder / STATUS_FILE, json.dumps(self.status, indent=1) + "\n")

    def _drop_after(self, label: str, step: int) -> None:
        path = self.folder / HISTORY_FILE
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if not _past(line, label, step)]
        if len(kept) != len(lines):
            atomic_write(path, "".join(line + "\n" for line in kept))


def _past(line: str, label: str, step: int) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return True  # a line cut short by a crash
    return record.get("stage") == label and record.get("step", 0) > step


def read_history(folder: str | Path) -> list[dict[str, Any]]:
    """The records of `folder`/losses.jsonl (unreadable lines skipped)."""
    path = Path(folder) / HISTORY_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def read_status(folder: str | Path) -> dict[str, Any] | None:
    """`folder`/status.json, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(folder) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def describe_status(folder: str | Path) -> list[str] | None:
    """Lines for `myna train --status`: state, stage progress, ETA, latest losses; None without a status file."""
    status = read_status(folder)
    if status is None:
        return None
    state = status.get("state", "unknown")
    running = state not in ("done", "failed", "interrupted") and process_alive(int(status.get("pid") or 0))
    if state not in ("done", "failed", "interrupted") and not running:
        state = f"stopped ({state} when process {status.get('pid')} ended; run the same command again to resume)"
    lines = [f"{status.get('name')}: {state}" + (f" - {status['message']}" if status.get("message") else ""),
             f"started {status.get('started')}, last update {status.get('updated')}"]
    for label, stage in status.get("stages", {}).items():
        per_epoch = max(int(stage.get("per_epoch") or 1), 1)
        step, total = int(stage.get("step") or 0), int(stage.get("total") or 0)
        line = (f"{label}: step {step}/{total}, epoch {-(-step // per_epoch)}/{-(-total // per_epoch)}"
                f" ({100 * step / max(total, 1):.0f}%)")
        if stage.get("seconds_per_step"):
            line += f", {stage['seconds_per_step']:.1f} s/step"
        if label == status.get("stage") and running and status.get("eta_s") is not None:
            line += f", ETA {_duration(status['eta_s'])}"
        lines.append(line)
    if status.get("losses"):
        shown = " ".join(f"{k}={v:.3f}" for k, v in status["losses"].items())
        lines.append(f"latest losses ({status.get('stage')} step {status.get('step')}): {shown}")
    folder = Path(folder)
    for name in (HISTORY_FILE, PLOT_FILE):
        if (folder / name).is_file():
            lines.append(f"{'history' if name == HISTORY_FILE else 'loss curve'}: {folder / name}")
    return lines
