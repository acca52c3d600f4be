"""Prosody, breaks, emphasis, exact duration and word timing on the tiny seeded model set (mechanics:
random weights make noise, so what is checked is lengths, gains, order and coverage, not speech)."""

import numpy as np
import pytest

from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.engine.timing import phoneme_frames
from myna.errors import InputError
from myna.text.ssml import SSMLError

RATE = 32000
TEXT = "Good morning, dear friends. The weather is fine today!"


@pytest.fixture(scope="module")
def setup(tiny_set):
    # unmarked: these tests look at exact samples (breaks of digital silence, lengths); the watermark has its own tests
    synth = load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"]),
                             watermark=False)
    voice = synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")
    return synth, voice


def opts(**kw) -> SynthesisOptions:
    """Greedy decoding and no prior noise: the same tokens whatever the order, so lengths are comparable."""
    return SynthesisOptions(**{"top_k": 1, "seed": 5, "noise_scale": 0.0, "max_tokens": 40, **kw})


def db(audio: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(audio.astype(np.float64))) + 1e-12)


def test_speak_equals_synthesize_and_times_every_word(setup):
    synth, voice = setup
    options = SynthesisOptions(top_k=3, seed=7, max_tokens=40)
    audio = synth.synthesize(TEXT, "en", voice, options)
    speech = synth.speak(TEXT, "en", voice, options)
    np.testing.assert_array_equal(speech.audio, audio)
    assert [w.text for w in speech.words] == ["Good", "morning", "dear", "friends", "The", "weather", "is", "fine",
                                              "today"]
    starts = [w.start for w in speech.words]
    assert starts == sorted(starts) and all(w.end > w.start for w in speech.words)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(speech.words, speech.words[1:], strict=False))
    assert 0 <= speech.words[0].start and speech.words[-1].end <= speech.seconds
    phones = speech.phonemes
    assert all(a.end <= b.start + 1e-9 for a, b in zip(phones, phones[1:], strict=False))
    # within a fragment the phonemes tile its audio: the first starts at 0, no gaps until the pause
    assert phones[0].start == 0.0


def test_plain_ssml_speaks_like_plain_text(setup):
    synth, voice = setup
    a = synth.synthesize(TEXT, "en", voice, opts())
    b = synth.synthesize(f"<speak>{TEXT}</speak>", "en", voice, opts())
    np.testing.assert_array_equal(a, b)


def test_break_inserts_exactly_its_length(setup):
    synth, voice = setup
    short = synth.speak('<speak>Good morning, dear friends.<break time="100ms"/>The weather is fine.</speak>', "en",
                        voice, opts())
    long = synth.speak('<speak>Good morning, dear friends.<break time="600ms"/>The weather is fine.</speak>', "en",
                       voice, opts())
    assert len(long.audio) - len(short.audio) == int(0.5 * RATE)
    phones = long.phonemes
    gaps = [(a.end, b.start) for a, b in zip(phones, phones[1:], strict=False) if b.start - a.end > 1e-6]
    # phonemes tile each fragment; between fragments lie the 0.3 s pause and the break
    start, end = max(gaps, key=lambda gap: gap[1] - gap[0])
    gap = long.audio[int(round(start * RATE)) : int(round(end * RATE))]
    assert len(gap) == int(0.6 * RATE) and not gap.any()  # the break replaces the 0.3 s pause, all zeros


@pytest.mark.parametrize("factor", [0.7, 1.6])
def test_duration_is_met_exactly_with_the_same_words(setup, factor):
    synth, voice = setup
    natural = synth.speak(TEXT, "en", voice, opts())
    target = round(natural.seconds * factor, 2)
    fitted = synth.speak(TEXT, "en", voice, opts(duration=target))
    assert len(fitted.audio) == round(target * RATE)  # exact to the sample; the issue asks for 3%
    assert [w.text for w in fitted.words] == [w.text for w in natural.words]
    speech_natural = natural.words[-1].end - natural.words[0].start
    speech_fitted = fitted.words[-1].end - fitted.words[0].start
    assert speech_fitted / speech_natural == pytest.approx((target - 0.6) / (natural.seconds - 0.6), rel=0.05)
    streamed = list(synth.stream_speech(TEXT, "en", voice, opts(duration=target)))
    assert sum(len(c.audio) for c in streamed) == len(fitted.audio)


def test_duration_out_of_reach_is_refused_before_audio(setup):
    synth, voice = setup
    with pytest.raises(InputError, match="out of reach"):
        synth.speak(TEXT, "en", voice, opts(duration=60.0))
    with pytest.raises(InputError, match="shorter than the pauses"):
        synth.speak(TEXT, "en", voice, opts(duration=0.5))


def test_emphasis_makes_the_word_louder_and_longer(setup):
    synth, voice = setup
    # the same pieces (so the same tokens) without emphasis; -12 dB leaves the limiter headroom
    plain = synth.speak('<speak>The weather is <emphasis level="none">fine</emphasis> today.</speak>', "en", voice,
                        opts(volume=-12.0))
    marked = synth.speak('<speak>The weather is <emphasis level="strong">fine</emphasis> today.</speak>', "en",
                         voice, opts(volume=-12.0))
    word = {w.text: w for w in plain.words}["fine"]
    loud = {w.text: w for w in marked.words}["fine"]
    assert (loud.end - loud.start) / (word.end - word.start) == pytest.approx(1.2, abs=0.1)
    # the documented +6 dB (strong), measured away from the 20 ms ramps at the word's edges
    inner = slice(int((loud.start + 0.03) * RATE), int((loud.end - 0.03) * RATE))
    before = slice(int((word.start + 0.03) * RATE), int((word.end - 0.03) * RATE))
    assert db(marked.audio[inner]) - db(plain.audio[before]) == pytest.approx(6.0, abs=0.5)
    assert marked.words[0].start == plain.words[0].start


def test_volume_option_scales_every_sample(setup):
    synth, voice = setup
    plain = synth.synthesize(TEXT, "en", voice, opts())
    quiet = synth.synthesize(TEXT, "en", voice, opts(volume=-6.0))
    np.testing.assert_allclose(quiet, plain * 10 ** (-6 / 20), atol=1e-6)


def test_prosody_rate_slows_its_words(setup):
    synth, voice = setup
    plain = synth.speak('<speak>The weather is <prosody volume="-1dB">fine today</prosody>.</speak>', "en", voice,
                        opts())
    slow = synth.speak('<speak>The weather is <prosody rate="50%">fine today</prosody>.</speak>', "en", voice, opts())
    length = {w.text: w.end - w.start for w in plain.words}
    slowed = {w.text: w.end - w.start for w in slow.words}
    assert slowed["today"] / length["today"] == pytest.approx(2.0, abs=0.1)
    assert slowed["fine"] / length["fine"] == pytest.approx(2.0, abs=0.1)
    assert slowed["The"] == pytest.approx(length["The"], rel=0.05)


def test_stream_speech_matches_speak_and_reports_words_per_chunk(setup):
    synth, voice = setup
    doc = '<speak>Good morning.<break time="250ms"/>The <emphasis>weather</emphasis> is fine today!</speak>'
    whole = synth.speak(doc, "en", voice, opts())
    chunks = list(synth.stream_speech(doc, "en", voice, opts()))
    np.testing.assert_array_equal(np.concatenate([c.audio for c in chunks]), whole.audio)
    assert [w for c in chunks for w in c.words] == whole.words
    assert [len(c.words) for c in chunks] == [2, 5]


def test_bad_ssml_fails_before_the_first_chunk(setup):
    synth, voice = setup
    with pytest.raises(SSMLError, match="line 1, column 14"):
        synth.stream_speech("<speak>Hello <b>x</b></speak>", "en", voice, opts())
    with pytest.raises(SSMLError):
        synth.synthesize("<speak>Hello <b>x</b></speak>", "en", voice, opts())


def test_alignment_is_monotonic_and_covers_every_frame():
    flat = phoneme_frames(np.ones((50, 7)))
    assert flat.sum() == 50 and flat.min() >= 1 and flat.max() - flat.min() <= 1  # no information: even split
    clear = np.full((30, 3), 0.01)
    clear[:5, 0] = clear[5:25, 1] = clear[25:, 2] = 1.0
    assert phoneme_frames(clear).tolist() == [5, 20, 5]
    noisy = phoneme_frames(np.random.default_rng(0).random((40, 9)))
    assert noisy.sum() == 40 and noisy.min() >= 1
    assert phoneme_frames(np.ones((3, 5))).sum() == 3  # fewer frames than phonemes: some get none
