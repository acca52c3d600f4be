"""Vocoding a fragment while the GPT decodes the next gives the sequential path's audio, bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.errors import Cancelled
from myna.voices.references import EmotionReference

TEXT = "The first sentence is here. A second one follows it! Is this the third? And the last one, at the end."


@pytest.fixture(scope="module", params=["fp32", "int8"])
def synth(request, tiny_set: dict):
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    return load_synthesizer(paths, "cpu", request.param, watermark=False)


@pytest.mark.parametrize("threads", [1, 2])
def test_pipelined_audio_equals_sequential_audio(synth, tiny_set: dict, threads: int) -> None:
    voice = synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")
    options = SynthesisOptions(seed=7, noise_scale=0.6, max_tokens=25)  # noise: the generator's order matters
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    vocoded_in = []
    real_vocode = synth.sovits.vocode

    def vocode(*latent):
        vocoded_in.append(threading.current_thread().name)
        return real_vocode(*latent)

    synth.sovits.vocode = vocode
    try:
        synth.pipelined = False
        sequential = synth.synthesize(TEXT, "en", voice, options)
        in_sequence, vocoded_in[:] = list(vocoded_in), []
        synth.pipelined = True
        pipelined = synth.synthesize(TEXT, "en", voice, options)
        assert torch.get_num_threads() == threads  # the caller's setting is left alone
    finally:
        synth.pipelined = False
        del synth.sovits.vocode
        torch.set_num_threads(before)
    assert len(in_sequence) >= 2 and set(in_sequence) == {threading.current_thread().name}
    assert len(vocoded_in) == len(in_sequence) and all(name.startswith("myna-vocoder") for name in vocoded_in)
    assert sequential.size > 0 and np.array_equal(pipelined, sequential)
    other = synth.synthesize(TEXT, "en", voice, SynthesisOptions(seed=8, noise_scale=0.6, max_tokens=25))
    assert not np.array_equal(other, sequential)  # the comparison can fail


def test_a_cancelled_pipelined_request_stops(synth, tiny_set: dict) -> None:
    voice = synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")
    calls = []

    def stop_after_a_while() -> bool:
        calls.append(1)
        return len(calls) > 30

    synth.pipelined = True
    try:
        with pytest.raises(Cancelled):
            synth.synthesize(TEXT, "en", voice, SynthesisOptions(seed=1, max_tokens=25), should_stop=stop_after_a_while)
    finally:
        synth.pipelined = False


def test_pipelined_emotion_routed_fragments_equal_sequential(synth, tiny_set: dict) -> None:
    # each fragment brings its own voice (a [tag] switches the GPT's prompt clip): the pipeline must use it
    main, happy = tiny_set["clips"][:2]
    voice = synth.voice(main, "This is my reference voice.", "en")
    routed = synth.with_references(voice, [EmotionReference("h1", "happy", happy, "What a lovely day it is.", "en")])
    text = "[happy] The first sentence is here. [neutral] A second one follows it! [happy] And the last one."
    options = SynthesisOptions(seed=3, noise_scale=0.6, max_tokens=25)
    try:
        synth.pipelined = True
        pipelined = synth.synthesize(text, "en", routed, options)
    finally:
        synth.pipelined = False
    sequential = synth.synthesize(text, "en", routed, options)
    assert sequential.size > 0 and np.array_equal(pipelined, sequential)
    assert not np.array_equal(sequential, synth.synthesize(text, "en", voice, options))  # the tags changed the audio


def test_a_failing_vocoder_fails_the_pipelined_request(synth, tiny_set: dict) -> None:
    voice = synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")

    def broken(*latent):
        raise RuntimeError("out of memory in the vocoder")

    synth.sovits.vocode = broken
    synth.pipelined = True
    try:
        with pytest.raises(RuntimeError, match="out of memory in the vocoder"):
            synth.synthesize(TEXT, "en", voice, SynthesisOptions(seed=1, max_tokens=25))
    finally:
        synth.pipelined = False
        del synth.sovits.vocode
