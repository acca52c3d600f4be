"""Fine-tune jobs: `myna data prepare` and `myna train` run as child processes, one at a time per machine.

A job lives in DATA_DIR/fine-tunes/ID/: `job.json` (its state, rewritten atomically at each change),
`recordings/` (the uploads), `prepared/` (`dataset.list` and its clips, from `myna data prepare`) and
`run.log` (what the children printed). Training writes DATA_DIR/trained/NAME/ as `myna train` always
does, so `myna say --voice NAME` speaks with the result. The server never imports myna.train: the
children are separate processes and their progress is read from files (`train_progress`).

    draft --prepare--> queued -> preparing -> review --start--> queued -> training -> done
    draft --start----> queued -> preparing -> queued -> training -> done   (no review)

A running or queued job can be stopped (SIGINT to the child, which saves its last step; SIGTERM and
SIGKILL follow after a grace period) and resumed later: `myna train` continues from its checkpoints.
When the server stops, running children are interrupted the same way and their jobs queued again,
so they continue when it starts; a child left running by a server that died is adopted (or, when
it is gone, its job is queued again). Only one child runs per machine (a lock in MYNA_HOME): jobs
wait in the queue, oldest first.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from myna.atomic import atomic_write
from myna.config import child_environment
from myna.server.job_commands import (
    JobError,
    MachineSlot,
    child_command,
    recording_name,
    runs_in,
    signal_group,
)
from myna.server.train_progress import last_message, read_progress
from myna.server.transcripts import Utterance, correct

JOB_FILE = "job.json"
LOG_FILE = "run.log"
RUNNING = ("preparing", "training", "stopping")
STATES = ("draft", "queued", *RUNNING, "review", "stopped", "failed", "done")
_ID = re.compile(r"ft_[A-Za-z0-9_-]{8,40}")
MAX_RECORDINGS = 200


@dataclass
class Job:
    """One fine-tune job as stored in job.json."""

    id: str
    name: str
    language: str  # spoken language for transcription (en, zh, ja) or "" to detect
    base: str  # "server" (the served model folder), a pulled version, or "preset:NAME"
    options: dict  # sovits_epochs, gpt_epochs, sovits_batch, gpt_batch, seed
    consent: dict  # subject, statement, obtained_by
    state: str = "draft"
    action: str | None = None  # what a queued, running or stopped job does: "prepare" or "train"
    review: bool = True  # after preparing, wait for the transcripts to be checked before training
    recordings: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    queued_at: float | None = None
    message: str | None = None
    pid: int | None = None
    created_by: str | None = None
    voice: str | None = None  # the trained voice's name once done

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        """A job from its job.json object (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class JobRunner:
    """The jobs of one data folder: their records, the queue, and the child process of the running one."""

    def __init__(self, data_dir: Path, home: Path, model_dir: Path | None = None, model_version: str = "v2",
                 grace_s: float = 60.0, poll_s: float = 0.5, python: str = sys.executable,
                 model_key: bytes | None = None):
        self.data_dir, self.root = data_dir, data_dir / "fine-tunes"
        self.model_dir, self.model_version = model_dir, model_version
        self.grace_s, self.poll_s, self.python = grace_s, poll_s, python
        self.model_key = model_key  # set: trained models are written encrypted with it (`myna train --encrypt`)
        self.jobs: dict[str, Job] = {}
        self._children: dict[str, subprocess.Popen] = {}
        self._adopted: set[str] = set()  # running jobs whose child was started by an earlier server
        self._stop_sent: dict[str, tuple[float, int]] = {}  # job id -> (when, signals sent so far)
        self._slot = MachineSlot(home / "locks" / "fine-tune.lock")
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def child_env(self) -> dict[str, str] | None:
        """The environment of a job's child: the server's, with the model key the server holds (None: as is)."""
        if self.model_key is None:
            return None
        return child_environment({"MYNA_MODEL_KEY": self.model_key.hex()}, drop=("MYNA_MODEL_KEY_FILE",))

    def open(self) -> None:
        """Load the jobs, take over what an earlier server left running, and start the scheduler thread."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in sorted(self.root.iterdir()):
            try:
                job = Job.from_dict(json.loads((folder / JOB_FILE).read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue  # a folder being deleted, or not a job
            self.jobs[job.id] = job
            if job.state in RUNNING:
                self._recover(job)
        self._thread = threading.Thread(target=self._loop, name="myna-fine-tunes", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Interrupt the running child (it saves its step), wait for it, and queue its job for the next start."""
        with self._lock:
            self._closing = True
            running = list(self._children.items())
            for _, child in running:
                signal_group(child.pid, signal.SIGINT)
        self._wake.set()
        for job_id, child in running:
            try:
                child.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                signal_group(child.pid, signal.SIGTERM)
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    signal_group(child.pid, signal.SIGKILL)
                    child.wait()
            with self._lock:
                job = self.jobs[job_id]
                self._children.pop(job_id, None)
                if job.state == "stopping":
                    self._set(job, "stopped", message="stopped; resume to continue from the last saved step", pid=None)
                else:
                    self._set(job, "queued", queued_at=job.queued_at or time.time(), pid=None,
                              message="interrupted when the server stopped; continues when it starts again")
        if self._thread is not None:
            self._thread.join(5)
        self._release_slot()

    # -- requests -------------------------------------------------------------------------------------
    def create(self, job: Job) -> Job:
        """Store a new draft job; refused when its name is taken by another job or a trained voice."""
        with self._lock:
            if job.name.casefold() in self.names_taken():
                raise JobError(f"the name {job.name!r} is taken by another fine-tune job or trained voice; "
                               "choose another name", 409, "name_taken")
            job.id = "ft_" + secrets.token_urlsafe(12)
            self.folder(job).mkdir(mode=0o700)
            (self.folder(job) / "recordings").mkdir(mode=0o700)
            self.jobs[job.id] = job
            self._save(job)
            return job

    def names_taken(self) -> set[str]:
        """Voice names used by a job or by a trained voice folder (case-folded)."""
        with self._lock:
            names = {job.name.casefold() for job in self.jobs.values()}
        trained = self.data_dir / "trained"
        if trained.is_dir():
            names |= {p.name.casefold() for p in trained.iterdir()}
        return names

    def get(self, job_id: str) -> Job:
        """The job with this id, or JobError 404."""
        job = self.jobs.get(job_id) if _ID.fullmatch(job_id) else None
        if job is None:
            raise JobError(f"no fine-tune job {job_id!r}; list them with GET /v1/fine-tunes", 404, "unknown_job")
        return job

    def folder(self, job: Job) -> Path:
        """The job's own folder."""
        return self.root / job.id

    def add_recording(self, job_id: str, filename: str, data: bytes) -> Job:
        """Keep an uploaded recording; a prepared job goes back to draft (it must be prepared again)."""
        with self._lock:
            job = self.get(job_id)
            before_training = job.state in ("draft", "review") or (job.state in ("stopped", "failed")
                                                                    and job.action == "prepare")
            if not before_training:
                raise JobError(f"cannot add recordings to a job that is {job.state} once training has begun; "
                               "start a new job for other recordings")
            if len(job.recordings) >= MAX_RECORDINGS:
                raise JobError(f"a job takes at most {MAX_RECORDINGS} recordings; join short ones into longer files")
            path = self.folder(job) / "recordings" / f"{len(job.recordings) + 1:03d}-{recording_name(filename)}"
            atomic_write(path, data, mode=0o600)
            job.recordings.append(path.name)
            self._set(job, "draft", action=None, message=None)
            return job

    def remove_recording(self, job_id: str, name: str) -> Job:
        """Drop an uploaded recording (draft jobs only)."""
        with self._lock:
            job = self.get(job_id)
            self._require(job, ("draft",), "remove recordings from")
            if name not in job.recordings:
                raise JobError(f"job {job_id} has no recording {name!r}", 404, "unknown_recording")
            (self.folder(job) / "recordings" / name).unlink(missing_ok=True)
            job.recordings.remove(name)
            self._set(job, "draft")
            return job

    def prepare(self, job_id: str, review: bool = True) -> Job:
        """Queue `myna data prepare` on the recordings (then training, unless `review`)."""
        with self._lock:
            job = self.get(job_id)
            self._require(job, ("draft",), "prepare")
            if not job.recordings:
                raise JobError("upload at least one recording first (POST /v1/fine-tunes/ID/recordings)")
            return self._queue(job, "prepare", review=review)

    def start_training(self, job_id: str) -> Job:
        """Queue training (a draft is prepared first, without stopping for review)."""
        with self._lock:
            job = self.get(job_id)
            if job.state == "draft":
                return self.prepare(job_id, review=False)
            self._require(job, ("review",), "start training of")
            return self._queue(job, "train")

    def cancel(self, job_id: str) -> Job:
        """Stop a running job (SIGINT: training saves its step) or take a queued one out of the queue."""
        with self._lock:
            job = self.get(job_id)
            if job.state == "queued":
                return self._set(job, "stopped", message="taken out of the queue; resume to queue it again")
            self._require(job, ("preparing", "training"), "stop")
            self._set(job, "stopping", message="stopping: the current step finishes and is saved")
            self._stop_sent[job.id] = (time.monotonic(), 1)
            signal_group(job.pid, signal.SIGINT)
            return job

    def resume(self, job_id: str) -> Job:
        """Queue a stopped or failed job again: it continues where it stopped."""
        with self._lock:
            job = self.get(job_id)
            self._require(job, ("stopped", "failed"), "resume")
            if job.action is None:
                raise JobError("this job has nothing to resume; prepare or start it")
            return self._queue(job, job.action, review=job.review)

    def delete(self, job_id: str) -> None:
        """Erase a job: its recordings, prepared data, log and the voice it trained (not while it runs)."""
        with self._lock:
            job = self.get(job_id)
            if job.state in RUNNING:
                raise JobError("the job is running; stop it first (POST /v1/fine-tunes/ID/cancel)")
            del self.jobs[job.id]
            trained = self.data_dir / "trained" / job.name
            if job.action == "train" or job.voice:
                shutil.rmtree(trained, ignore_errors=True)
            shutil.rmtree(self.folder(job), ignore_errors=True)

    def prepared_list(self, job_id: str) -> Path:
        """The job's prepared transcript list, or JobError while it has none."""
        job = self.get(job_id)
        path = self.folder(job) / "prepared" / "dataset.list"
        if job.state in ("draft", "preparing") or (job.state == "queued" and job.action == "prepare") \
                or not path.is_file():
            raise JobError(f"job {job_id} has no prepared transcripts yet (it is {job.state})")
        return path

    def correct_transcripts(self, job_id: str, changes: dict[int, str]) -> list[Utterance]:
        """Correct transcripts of the prepared list (not while the job runs or waits to run)."""
        with self._lock:  # the state cannot change between the check and the write
            path = self.prepared_list(job_id)
            job = self.jobs[job_id]
            if job.state in ("queued", *RUNNING):
                raise JobError(f"the job is {job.state}; stop it before correcting transcripts")
            if self._training_began(job):
                raise JobError("training has begun on these transcripts, so they can no longer change; "
                               "start a new job to train on corrected ones")
            return correct(path, changes)

    def _training_began(self, job: Job) -> bool:
        """Whether `myna train` has begun on the job's transcripts: it records what it began on, so other
        transcripts would make its resume a different run (which it refuses)."""
        return job.state != "review" and job.action == "train" and (self.data_dir / "trained" / job.name).exists()

    def view(self, job: Job) -> dict:
        """The API view of a job: its record plus queue position and progress."""
        with self._lock:  # a consistent record; the files are read outside the lock
            data = asdict(job)
            data["transcripts_editable"] = job.state in ("review", "stopped", "failed") and job.action == "train" \
                and not self._training_began(job)
            if job.state == "queued":
                queued = sorted((j for j in self.jobs.values() if j.state == "queued"), key=lambda j: j.queued_at or 0)
                data["queue_position"] = [j.id for j in queued].index(job.id) + 1
        run = self.data_dir / "trained" / job.name / "work" if job.action == "train" else None
        progress = read_progress(self.folder(job) / LOG_FILE, run)
        if job.state == "preparing" and progress.stage is None:
            progress.stage = "preparing"
        data["progress"] = progress.to_dict()
        return data

    # -- the scheduler ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
                self._reap()
                self._escalate()
                if not self._children and not self._adopted:
                    self._launch_next()
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _launch_next(self) -> None:
        queued = sorted((j for j in self.jobs.values() if j.state == "queued"), key=lambda j: j.queued_at or 0)
        if not queued or not self._slot.take():
            return
        job = queued[0]
        try:
            command = child_command(job, self.folder(job), self.data_dir, self.model_dir, self.model_version,
                                    self.python, encrypt=self.model_key is not None)
            log = open(self.folder(job) / LOG_FILE, "ab")  # noqa: SIM115 - the child keeps it
            log.write(f"\n== {job.action} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.folder(job), env=self.child_env(),
                                     start_new_session=True)  # Ctrl-C on the server is the server's to pass on
            log.close()
        except (OSError, JobError) as exc:
            self._release_slot()
            self._set(job, "failed", message=f"could not start {job.action}: {exc}")
            return
        self._children[job.id] = child
        self._set(job, "preparing" if job.action == "prepare" else "training", pid=child.pid, message=None)

    def _reap(self) -> None:
        for job_id, child in list(self._children.items()):
            code = child.poll()
            if code is not None:
                del self._children[job_id]
                self._finished(self.jobs[job_id], code)
        for job_id in list(self._adopted):
            job = self.jobs[job_id]
            if job.pid is None or not runs_in(job.pid, self.folder(job)):
                self._adopted.discard(job_id)
                self._finished(job, None)

    def _finished(self, job: Job, code: int | None) -> None:
        """A child ended (`code` None: an adopted child, whose status is unknown; the files tell)."""
        self._stop_sent.pop(job.id, None)
        self._release_slot()
        folder = self.folder(job)
        if code is None:
            code = 0 if self._completed(job) else 1
        if code == 0 and job.action == "prepare":
            if job.review:
                self._set(job, "review", action="train", pid=None, message=None)
            else:
                self._queue(job, "train")
        elif code == 0:
            self._set(job, "done", voice=job.name, pid=None, message=None)
        elif job.state == "stopping":
            self._set(job, "stopped", pid=None, message="stopped; resume to continue from the last saved step")
        else:
            reason = last_message(folder / LOG_FILE) or f"{job.action} ended with exit status {code}"
            self._set(job, "failed", pid=None, message=reason)
        self._wake.set()

    def _escalate(self) -> None:
        """A child that ignores SIGINT for the grace period gets SIGTERM, then SIGKILL 10 s later."""
        now = time.monotonic()
        for job_id, (since, sent) in list(self._stop_sent.items()):
            job = self.jobs.get(job_id)
            if job is None or job.pid is None:
                self._stop_sent.pop(job_id, None)
                continue
            if sent == 1 and now - since > self.grace_s:
                signal_group(job.pid, signal.SIGTERM)
                self._stop_sent[job_id] = (now, 2)
            elif sent == 2 and now - since > 10:
                signal_group(job.pid, signal.SIGKILL)
                self._stop_sent[job_id] = (now, 3)

    def _recover(self, job: Job) -> None:
        """A job that was running when the last server ended: adopt its child if it still runs; if it ended
        with its work complete, take the result; else queue the job again (it resumes from saved steps)."""
        if job.pid is not None and runs_in(job.pid, self.folder(job)):
            self._adopted.add(job.id)
        elif self._completed(job):
            self._finished(job, 0)
        elif job.state == "stopping":
            self._set(job, "stopped", pid=None, message="stopped; resume to continue from the last saved step")
        else:
            self._set(job, "queued", pid=None, queued_at=job.queued_at or time.time(),
                      message="interrupted when the server stopped; continues from its last saved step")

    def _completed(self, job: Job) -> bool:
        """Whether the files show the job's current step finished (for children whose exit status is unknown)."""
        if job.action == "prepare":
            return (self.folder(job) / "prepared" / "dataset.list").is_file()
        return (self.data_dir / "trained" / job.name / "voice.json").is_file()

    # -- helpers --------------------------------------------------------------------------------------
    def _queue(self, job: Job, action: str, review: bool | None = None) -> Job:
        changes = {"review": review} if review is not None else {}
        return self._set(job, "queued", action=action, queued_at=time.time(), message=None, **changes)

    def _require(self, job: Job, states: tuple[str, ...], what: str) -> None:
        if job.state not in states:
            raise JobError(f"cannot {what} a job that is {job.state} (allowed when {' or '.join(states)})")

    def _set(self, job: Job, state: str, **changes) -> Job:
        for key, value in changes.items():
            setattr(job, key, value)
        job.state, job.updated_at = state, time.time()
        self._save(job)
        self._wake.set()
        return job

    def _save(self, job: Job) -> None:
        if job.id in self.jobs and self.folder(job).is_dir():
            atomic_write(self.folder(job) / JOB_FILE, json.dumps(asdict(job), indent=1) + "\n", mode=0o600)

    def _release_slot(self) -> None:
        if not self._children and not self._adopted:
            self._slot.release()
