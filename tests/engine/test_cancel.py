"""Synthesizer.synthesize/stream stop between tokens when `should_stop` says so; numerics unchanged otherwise."""

import numpy as np
import pytest

from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.errors import Cancelled


@pytest.fixture(scope="module")
def synth_voice(tiny_set):
    synth = load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"]))
    return synth, synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")


def test_should_stop_cancels_after_a_few_tokens(synth_voice):
    synth, voice = synth_voice
    polls = []

    def stop_after_five() -> bool:
        polls.append(1)
        return len(polls) > 5

    with pytest.raises(Cancelled):
        synth.synthesize("Hello there.", "en", voice, SynthesisOptions(seed=1), should_stop=stop_after_five)
    assert len(polls) == 6  # polled once per token (plus once before the fragment), then stopped

    chunks = synth.stream("One. Two. Three.", "en", voice, SynthesisOptions(seed=1), should_stop=lambda: True)
    with pytest.raises(Cancelled):
        next(chunks)


def test_a_never_true_check_changes_nothing(synth_voice):
    synth, voice = synth_voice
    options = SynthesisOptions(seed=3, top_k=5)
    plain = synth.synthesize("Hello there.", "en", voice, options)
    checked = synth.synthesize("Hello there.", "en", voice, options, should_stop=lambda: False)
    np.testing.assert_array_equal(plain, checked)


def test_forget_drops_cached_voices_of_a_file(tiny_set, synth_voice):
    synth, voice = synth_voice
    assert synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en") is voice
    assert synth.forget(tiny_set["clips"][0].name) >= 1
    assert synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en") is not voice
    assert synth.forget("no-such-file-anywhere") == 0
