"""Prosody effects measured on real speech (espeak-ng and flite recordings): pitch, gain, spans, contour."""

import shutil
import subprocess

import numpy as np
import pyloudnorm
import pytest
import soundfile
import soxr

from myna.audio.prosody import (
    Change,
    apply_gain,
    contour_style,
    curve,
    follow_contour,
    levels_of,
    shift_pitch,
)

RATE = 32000
pyworld = pytest.importorskip("pyworld")
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("rubberband")),
                                 reason="needs espeak-ng and rubberband (scripts/setup.sh installs them)")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Four seconds of espeak-ng English at 32 kHz."""
    path = tmp_path_factory.mktemp("speech") / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path),
                    "The quick brown fox jumps over the lazy dog near the river bank."], check=True)
    audio, rate = soundfile.read(path, dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def semitone_change(before: np.ndarray, after: np.ndarray) -> float:
    """Median per-frame F0 change in semitones over frames voiced in both (WORLD harvest)."""
    f0_a, _ = pyworld.harvest(before.astype(np.float64), RATE)
    f0_b, _ = pyworld.harvest(after.astype(np.float64), RATE)
    voiced = (f0_a > 0) & (f0_b > 0)
    return float(np.median(12 * np.log2(f0_b[voiced] / f0_a[voiced])))


@needs_tools
@pytest.mark.parametrize("semitones", [3.0, -2.0])
def test_pitch_shift_moves_f0_by_the_semitones_asked(speech, semitones):
    shifted = shift_pitch(speech, RATE, semitones)
    assert shifted.shape == speech.shape
    assert semitone_change(speech, shifted) == pytest.approx(semitones, abs=0.3)


@needs_tools
def test_span_shift_changes_only_its_span(speech):
    shifted = shift_pitch(speech, RATE, 0.0, [Change(1.0, 2.0, semitones=2.0)])
    np.testing.assert_array_equal(shifted[: RATE - 1000], speech[: RATE - 1000])  # before the span (and its ramp)
    np.testing.assert_array_equal(shifted[2 * RATE + 1000 :], speech[2 * RATE + 1000 :])
    inside = slice(int(1.05 * RATE), int(1.95 * RATE))
    assert semitone_change(speech[inside], shifted[inside]) == pytest.approx(2.0, abs=0.4)


@needs_tools
def test_volume_changes_bs1770_loudness_by_the_decibels_asked(speech):
    meter = pyloudnorm.Meter(RATE)
    before = meter.integrated_loudness(speech)
    assert meter.integrated_loudness(apply_gain(speech, -6.0)) - before == pytest.approx(-6.0, abs=0.05)
    louder = apply_gain(speech, 20.0)
    assert np.abs(louder).max() <= 1.0  # the limiter keeps peaks in range instead of clipping
    assert meter.integrated_loudness(louder) > before + 5


def test_gain_curve_ramps_and_silences():
    values = curve(RATE, RATE, [Change(0.25, 0.75, gain_db=6.0)], "gain_db", base=-1.0)
    assert values[0] == -1.0 and values[RATE // 2] == pytest.approx(5.0) and values[-1] == -1.0
    assert 0 < np.count_nonzero((values > -1.0) & (values < 5.0)) <= 2 * int(0.02 * RATE)
    silent = curve(100, 100, [Change(0.0, 1.0, gain_db=-np.inf)], "gain_db")
    assert silent.min() == -120.0


@needs_tools
def test_loudness_contour_follows_the_reference_level_and_spread(speech):
    own_mean, own_spread = contour_style(levels_of(speech))
    reference = levels_of(speech)
    wide = (reference - reference.mean()) * 2 + reference.mean() - 6  # moves twice as much, 6 dB lower
    ref_mean, ref_spread = contour_style(wide)
    out_mean, out_spread = contour_style(levels_of(follow_contour(speech, RATE, wide, 1.0)))
    assert abs(out_mean - ref_mean) < 1.0
    assert abs(out_spread - ref_spread) < 0.5 * abs(own_spread - ref_spread)
    half_mean, _ = contour_style(levels_of(follow_contour(speech, RATE, wide, 0.5)))
    assert min(own_mean, ref_mean) < half_mean < max(own_mean, ref_mean)
    np.testing.assert_array_equal(follow_contour(speech, RATE, wide, 0.0), speech)
