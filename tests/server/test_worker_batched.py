"""WorkerPool with batched GPT decoding: one shared GPT, audio identical to unbatched synthesis."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.server.worker import WorkerPool

JOBS = [  # (clip, transcript or None = ref-free, text, seed)
    (0, "This is my reference voice.", "Hello there. How are you today?", 5),
    (1, "This is my reference voice.", "Hello there.", 5),
    (0, None, "Good morning, everyone.", 6),
    (1, "This is my reference voice.", "A longer sentence, with a pause.", 7),
    (0, "This is my reference voice.", "Hello there.", 8),
    (1, None, "Bye.", 9),
]


@pytest.fixture(scope="module")
def factory(tiny_set):
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    return lambda: load_synthesizer(paths)


def _speak(clips, clip: int, transcript: str | None, text: str, seed: int):
    def run(synth, should_stop):
        voice = synth.voice(clips[clip], transcript, "en")
        yield synth.synthesize(text, "en", voice, SynthesisOptions(seed=seed), should_stop)

    return run


def test_batched_pool_shares_one_gpt_and_gives_unbatched_audio(factory, tiny_set):
    clips = tiny_set["clips"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count both ways (it changes SoVITS's last bits); fastest for tiny models
    pool = WorkerPool(factory, workers=1, queue_size=16, batch_size=3)
    try:
        reference = factory()
        expected = [reference.synthesize(text, "en", reference.voice(clips[c], t, "en"), SynthesisOptions(seed=s))
                    for c, t, text, s in JOBS]
        pool.start()
        synths = pool.synthesizers()
        assert len(synths) == 3 and len({id(s.gpt) for s in synths}) == 1 and len({id(s.decoder) for s in synths}) == 1
        decoder = synths[0].decoder

        async def scenario(jobs):
            submitted = [pool.submit(_speak(clips, *job), 120) for job in jobs]
            return [(await job.next_chunk())[1] for job in submitted]

        together = asyncio.run(scenario(JOBS))
        for got, want in zip(together, expected, strict=True):
            assert np.array_equal(got, want)
        assert decoder.rows_stepped > decoder.steps  # several requests shared decode steps

        old_thread = decoder._thread
        pool.reload(factory)
        again = asyncio.run(scenario(JOBS[:2]))
        assert all(np.array_equal(g, w) for g, w in zip(again, expected[:2], strict=True))
        assert any(s.decoder is not decoder for s in pool.synthesizers())  # the jobs ran on the new models
        old_thread.join(10)
        assert not old_thread.is_alive()  # the old models' decoding thread ended once idle
    finally:
        pool.shutdown()
        torch.set_num_threads(threads)
