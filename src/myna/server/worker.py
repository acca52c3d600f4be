"""Synthesis workers: threads running jobs on Synthesizers; a bounded queue of jobs in front of them.

A job is a function `run(synth, should_stop) -> iterator of audio chunks`, run on a worker thread.
Its chunks travel back to the event loop through the job's own asyncio queue (errors as values, as
fish-speech's thread-safe queue does), so requests never share mutable state and the event loop never
runs model code. `should_stop` turns true when the client went away or the deadline passed; the
engine polls it between tokens.

Unbatched (`batch_size` 1): each worker owns a Synthesizer with its own models. Batched: one model
set is loaded and its GPT is driven by a `BatchDecoder`; `max(workers, batch_size)` threads each
hold a Synthesizer view of those models (text front-end and SoVITS run on the worker thread) whose
GPT decoding joins the shared batch, so several requests' tokens come from one decode step.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from myna.engine.batch_decode import BatchDecoder
from myna.engine.synthesizer import Synthesizer
from myna.errors import Cancelled, MynaError, ServerFault

TIMEOUT_MESSAGE = "the request took longer than the server's timeout; send shorter text or retry"
JobRun = Callable[[Synthesizer, Callable[[], bool]], Iterator[np.ndarray]]
_STOP = object()


class Busy(MynaError):
    """Every worker is busy and the queue is full: retry later."""


class Timeout(MynaError):
    """The request took longer than the server's per-request timeout."""


@dataclass(eq=False)  # jobs are compared (and hashed) by identity
class Job:
    """One request's work and the channel its audio comes back through."""

    run: JobRun
    deadline: float
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: float | None = None
    voice_id: str | None = None  # the registered voice it speaks with: its erasure stops the job
    stop_error: MynaError | None = None  # why the job was stopped, when not by its own client
    on_done: Callable[[Job], None] | None = None  # told once its client has had the end, an error, or cancelled

    def should_stop(self) -> bool:
        """True once the job was cancelled or its deadline passed."""
        return self.cancelled.is_set() or time.monotonic() > self.deadline

    def timed_out(self) -> bool:
        """True when the deadline passed with nobody cancelling the job (a stop then means `Timeout`)."""
        return not self.cancelled.is_set() and time.monotonic() > self.deadline

    def cancel(self, error: MynaError | None = None) -> None:
        """Ask the worker to stop this job at the next token; `error` is what its client then gets."""
        if error is not None and not self.cancelled.is_set():
            self.stop_error = error
        self.cancelled.set()
        self._done()

    def _done(self) -> None:
        if self.on_done is not None:
            self.on_done(self)

    def _post(self, kind: str, payload: object = None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.out.put_nowait, (kind, payload))
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self.cancel()

    async def next_chunk(self) -> tuple[int, np.ndarray] | None:
        """The next (rate, audio) chunk, None at the end; raises the job's error or `Timeout`."""
        remaining = self.deadline - time.monotonic()
        try:
            kind, payload = await asyncio.wait_for(self.out.get(), timeout=max(remaining, 0.001))
        except TimeoutError:
            self.cancel()
            raise Timeout(TIMEOUT_MESSAGE) from None
        if kind == "chunk":
            return payload
        self._done()
        if kind == "end":
            return None
        raise payload


class ReloadError(ServerFault):
    """New models could not be loaded; the ones loaded before keep serving."""

    code = "reload_failed"


@dataclass(eq=False)
class _Models:
    """One generation of loaded models: a Synthesizer per worker thread (views of one shared set when batched)."""

    generation: int
    synths: list[Synthesizer]
    decoder: BatchDecoder | None = None


class _Worker(threading.Thread):
    def __init__(self, pool: WorkerPool, index: int):
        super().__init__(name=f"myna-worker-{index}", daemon=True)
        self.pool = pool
        self.index = index
        self.synth: Synthesizer | None = None  # the Synthesizer of the job it runs now (or ran last)

    def run(self) -> None:
        while True:
            job = self.pool._jobs.get()
            if job is _STOP:
                return
            try:
                self._serve(job)
            finally:
                self.pool._jobs.task_done()

    def _serve(self, job: Job) -> None:
        if job.should_stop():
            job._post("error", job.stop_error or (Timeout(TIMEOUT_MESSAGE) if job.timed_out() else
                      Cancelled("the request was cancelled before a worker was free")))
            return
        job.started = time.monotonic()
        self.pool._count_busy(+1)
        try:
            synth = self.synth = self.pool._models.synths[self.index]  # the models live when the job starts
            for audio in job.run(synth, job.should_stop):
                if job.should_stop():
                    raise Cancelled("synthesis was cancelled")
                job._post("chunk", (synth.sampling_rate, audio))
            job._post("end")
        except MynaError as exc:  # a stop at the deadline is a timeout, whichever side noticed it first
            if isinstance(exc, Cancelled):
                exc = job.stop_error or (Timeout(TIMEOUT_MESSAGE) if job.timed_out() else exc)
            job._post("error", exc)
        except Exception as exc:  # a bug: the request fails (its log line carries the traceback), the worker lives on
            job._post("error", exc)
        finally:
            self.pool._count_busy(-1)


class WorkerPool:
    """Worker threads with Synthesizers from `factory` behind a queue of `queue_size` jobs.

    `batch_size` 1: `workers` threads, each with its own models. More: one model set whose GPT
    decodes up to `batch_size` requests at once, shared by `max(workers, batch_size)` threads.
    """

    def __init__(self, factory: Callable[[], Synthesizer], workers: int = 1, queue_size: int = 32,
                 batch_size: int = 1):
        self._factory = factory
        self.batch_size = batch_size
        self._models: _Models | None = None  # swapped whole by `reload`: a job uses the set live when it starts
        self._reload_lock = threading.Lock()
        self.reloading = False
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        threads = workers if batch_size == 1 else max(workers, batch_size)
        self._workers = [_Worker(self, i) for i in range(threads)]
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._live: set[Job] = set()  # submitted, their client not done with them yet; guarded by _busy_lock
        self._started = False

    @property
    def generation(self) -> int:
        """How many times the models were (re)loaded since the first load (0)."""
        return self._models.generation if self._models is not None else -1

    def _load(self, factory: Callable[[], Synthesizer], generation: int) -> _Models:
        """Load a complete model set for every worker (the old one keeps serving meanwhile)."""
        if self.batch_size == 1:
            return _Models(generation, [factory() for _ in self._workers])
        base = factory()
        decoder = BatchDecoder(base.gpt, self.batch_size)
        return _Models(generation, [base.with_decoder(decoder) for _ in self._workers], decoder)

    def _count_busy(self, change: int) -> None:
        with self._busy_lock:
            self._busy += change

    def start(self) -> None:
        """Load every worker's models (fail fast), then start the worker threads."""
        self._models = self._load(self._factory, 0)
        for worker in self._workers:
            worker.start()
        self._started = True

    @property
    def ready(self) -> bool:
        """Whether the workers run and loaded models are live."""
        return self._started and self._models is not None and all(w.is_alive() for w in self._workers)

    @property
    def size(self) -> int:
        """Worker threads."""
        return len(self._workers)

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return self._jobs.qsize()

    @property
    def busy(self) -> int:
        """Jobs being synthesized now."""
        return self._busy

    def synthesizers(self) -> list[Synthesizer]:
        """Every Synthesizer that holds state now: the live set's and any older one a running job still uses."""
        found = list(self._models.synths) if self._models is not None else []
        for worker in self._workers:
            if worker.synth is not None and all(worker.synth is not s for s in found):
                found.append(worker.synth)
        return found

    def submit(self, run: JobRun, timeout: float, voice_id: str | None = None) -> Job:
        """Queue a job (call from the event loop); raises `Busy` when the queue is full."""
        job = Job(run, time.monotonic() + timeout, asyncio.get_running_loop(), voice_id=voice_id, on_done=self._retire)
        with self._busy_lock:
            self._live.add(job)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._retire(job)
            raise Busy(f"the server is busy ({self._jobs.maxsize} requests waiting); retry in a moment") from None
        return job

    def cancel_voice(self, voice_id: str, error: MynaError) -> int:
        """Stop every job that speaks with `voice_id` and whose client has not had all of it; how many."""
        with self._busy_lock:
            jobs = [job for job in self._live if job.voice_id == voice_id]
        for job in jobs:
            job.cancel(error)
        return len(jobs)

    def _retire(self, job: Job) -> None:
        with self._busy_lock:
            self._live.discard(job)

    def reload(self, factory: Callable[[], Synthesizer]) -> None:
        """Load new models for every worker, then make them live at once; raises `ReloadError`, old ones kept.

        Jobs already running finish on the models they started with; the next job of each worker
        uses the new set. Needs memory for both sets while the new one loads.
        """
        with self._reload_lock:
            self.reloading = True
            try:
                new = self._load(factory, self.generation + 1)
            except Exception as exc:
                raise ReloadError(f"the models could not be loaded ({exc}); the models loaded before keep serving") from exc
            finally:
                self.reloading = False
            old, self._models, self._factory = self._models, new, factory
            if old is not None and old.decoder is not None:  # its thread ends once the jobs still on it are done
                old.decoder.close(timeout=0)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Let queued jobs finish, then stop the threads."""
        for _ in self._workers:
            try:
                self._jobs.put(_STOP, timeout=timeout)
            except queue.Full:
                break
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout)
        if self._models is not None and self._models.decoder is not None:
            self._models.decoder.close(timeout)
