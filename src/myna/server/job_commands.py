"""The process side of fine-tune jobs: the command lines of their children, signals, the machine's slot.

Kept apart from the job bookkeeping (myna.server.jobs) so the one place that knows how `myna data
prepare` and `myna train` are called is small and easy to switch when their options change.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from myna.server.jobs import Job

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm")
_OPTION_FLAGS = (("sovits_epochs", "--sovits-epochs"), ("gpt_epochs", "--gpt-epochs"),
                 ("sovits_batch", "--sovits-batch"), ("gpt_batch", "--gpt-batch"), ("seed", "--seed"))


class JobError(Exception):
    """A request the job's state does not allow (HTTP 409 by default), or an unknown job (404)."""

    def __init__(self, message: str, status: int = 409, code: str = "job_state"):
        super().__init__(message)
        self.status, self.code = status, code


def child_command(job: Job, folder: Path, data_dir: Path, model_dir: Path | None, model_version: str,
                  python: str, encrypt: bool = False) -> list[str]:
    """The command line of the job's next step: `myna data prepare` on its recordings, or `myna train`
    (with `--encrypt` when `encrypt`: a server with a model key keeps the models it trains sealed too)."""
    if job.action == "prepare":
        shutil.rmtree(folder / "prepared", ignore_errors=True)  # prepare never writes over a dataset
        command = [python, "-m", "myna", "data", "prepare", str(folder / "recordings"),
                   "--out", str(folder / "prepared"), "--speaker", job.name]
        return command + (["--lang", job.language] if job.language else [])
    command = [python, "-m", "myna", "train", "--data", str(folder / "prepared" / "dataset.list"),
               "--name", job.name, "--data-dir", str(data_dir)]
    if job.base.startswith("preset:"):
        command += ["--preset", job.base[len("preset:"):]]
    elif job.base == "server":
        if model_dir is None:
            raise JobError("the server has no model folder (--model-dir or --model) to fine-tune")
        command += ["--base", str(model_dir), "--model-version", model_version]
    else:
        command += ["--base", job.base]
    for key, flag in _OPTION_FLAGS:
        if job.options.get(key) is not None:
            command += [flag, str(int(job.options[key]))]
    if encrypt:
        command.append("--encrypt")
    return command + (["--lang", job.language] if job.language else [])


def recording_name(filename: str) -> str:
    """A recording's stored file name: its stem reduced to safe characters, its (checked) audio suffix kept."""
    path = Path(filename.replace("\\", "/")).name
    suffix = Path(path).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise JobError(f"{filename!r} is not an audio file this server prepares; send one of "
                       f"{', '.join(AUDIO_SUFFIXES)}", 400, "invalid_request")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem).strip("_")[:60] or "recording"
    return stem + suffix


def signal_group(pid: int | None, sig: int) -> None:
    """Send `sig` to the process group a job's child leads (ffmpeg or workers it started get it too)."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def runs_in(pid: int, folder: Path) -> bool:
    """Whether `pid` still runs a myna command in `folder` (so a recycled process id is not taken for it)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"myna" in command and Path(cwd) == folder


class MachineSlot:
    """The right to run a job's child on this machine: an exclusive lock on a file in MYNA_HOME, so servers
    sharing the machine (and its user) run one job at a time between them."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None

    def take(self) -> bool:
        """Hold the slot (True), or False while another process holds it."""
        if self._handle is not None:
            return True
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a")  # noqa: SIM115 - held while a child runs
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Give the slot up (closing the file drops the lock)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
