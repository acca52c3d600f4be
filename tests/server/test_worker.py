"""WorkerPool in-process: bounded queue (Busy), deadlines (Timeout), cancellation, errors as values, reload."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from myna.engine.loading import ModelPaths, load_synthesizer
from myna.errors import Cancelled, InputError
from myna.server.worker import Busy, Timeout, WorkerPool


@pytest.fixture(scope="module")
def factory(tiny_set):
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    return lambda: load_synthesizer(paths)


def _blocking(release: threading.Event):
    def run(synth, should_stop):
        while not release.is_set() and not should_stop():
            time.sleep(0.01)
        if should_stop():
            raise Cancelled("stopped")
        yield np.ones(4, np.float32)

    return run


def test_full_queue_raises_busy_and_jobs_still_finish(factory):
    pool = WorkerPool(factory, workers=1, queue_size=1)
    pool.start()
    release = threading.Event()

    async def scenario():
        first = pool.submit(_blocking(release), timeout=30)
        while pool.busy == 0:  # the worker took the first job
            await asyncio.sleep(0.01)
        second = pool.submit(_blocking(release), timeout=30)
        with pytest.raises(Busy, match="busy"):
            pool.submit(_blocking(release), timeout=30)
        release.set()
        return [await job.next_chunk() for job in (first, second)]

    chunks = asyncio.run(scenario())
    assert [rate for rate, _ in chunks] == [32000, 32000]
    pool.shutdown()


def test_deadline_and_cancel_stop_the_job(factory):
    pool = WorkerPool(factory, workers=1, queue_size=4)
    pool.start()
    never = threading.Event()

    async def scenario():
        slow = pool.submit(_blocking(never), timeout=0.3)
        with pytest.raises(Timeout):
            await slow.next_chunk()
        cancelled = pool.submit(_blocking(never), timeout=30)
        cancelled.cancel()
        with pytest.raises(Cancelled):
            await cancelled.next_chunk()

    asyncio.run(scenario())
    pool.shutdown()
    assert pool.busy == 0


def test_a_stop_at_the_deadline_is_a_timeout_whichever_side_notices_first(factory):
    """The worker may see the deadline (and post its stop) before the client's own wait runs out."""
    pool = WorkerPool(factory, workers=1, queue_size=4)
    pool.start()
    release = threading.Event()

    async def scenario():
        first = pool.submit(_blocking(release), timeout=0.3)  # stops itself at its deadline
        queued = pool.submit(_blocking(release), timeout=0.3)  # its deadline passes in the queue
        await asyncio.sleep(1.0)  # both errors are posted before the client asks
        for job in (first, queued):
            with pytest.raises(Timeout):
                await job.next_chunk()
        explicit = pool.submit(_blocking(release), timeout=0.3)
        explicit.cancel()
        await asyncio.sleep(0.6)
        with pytest.raises(Cancelled):  # cancelled by the client: stays a cancellation after the deadline
            await explicit.next_chunk()

    asyncio.run(scenario())
    release.set()
    pool.shutdown()


def test_errors_come_back_as_values_and_the_worker_lives_on(factory, tiny_set):
    pool = WorkerPool(factory, workers=1, queue_size=4)
    pool.start()

    def bad(synth, should_stop):
        raise InputError("no such thing")
        yield  # pragma: no cover

    def good(synth, should_stop):
        yield synth.synthesize("Hi.", "en", synth.voice(tiny_set["clips"][0], None, "en"), None, should_stop)

    async def scenario():
        with pytest.raises(InputError, match="no such thing"):
            await pool.submit(bad, 30).next_chunk()
        generation = pool.generation
        await asyncio.to_thread(pool.reload, factory)
        assert pool.generation == generation + 1
        rate, audio = await pool.submit(good, 60).next_chunk()
        return rate, audio

    rate, audio = asyncio.run(scenario())
    assert rate == 32000 and audio.size > 0
    pool.shutdown()

