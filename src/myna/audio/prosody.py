"""Prosody effects on finished speech: gain (dB) and pitch shift (semitones), whole or over time spans,
and a loudness contour that follows a reference's.

Pitch is shifted by Rubber Band (its R3 engine with formant preservation, through pyrubberband), so
duration and vowel colour stay. Where a shift covers only part of the audio, the shifted signal is
cross-faded in over that part alone and the rest keeps the model's own samples; the shifted signal is
scaled to the RMS level of what it replaces, so a pitch change does not change loudness. Gains are smooth (short ramps) and a peak limiter keeps the
result within full scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from myna.errors import MynaError

RAMP_SECONDS = 0.02  # gain and pitch changes fade in and out over this long
_PEAK = 0.99


class EffectUnavailable(MynaError):
    """An audio effect needs a program that is not installed."""


@dataclass(frozen=True)
class Change:
    """A change over [start, end) seconds: `gain_db` louder, `semitones` higher."""

    start: float
    end: float
    gain_db: float = 0.0
    semitones: float = 0.0


def curve(length: int, rate: int, changes: Sequence[Change], field: str, base: float = 0.0) -> np.ndarray:
    """Per-sample values of `field` ("gain_db" or "semitones"): `base` plus each change, ramped at its edges."""
    values = np.full(length, base, dtype=np.float64)
    ramp = max(1, int(RAMP_SECONDS * rate))
    for change in changes:
        amount = getattr(change, field)
        if amount == 0 or change.end <= change.start:
            continue
        start, end = int(round(change.start * rate)), int(round(change.end * rate))
        start, end = max(0, start), min(length, end)
        if end <= start:
            continue
        shape = np.ones(end - start)
        edge = min(ramp, (end - start) // 2)
        if edge:
            fade = (1 - np.cos(np.linspace(0, math.pi, edge, endpoint=False))) / 2
            shape[:edge] = fade
            shape[-edge:] = fade[::-1]
        if math.isinf(amount):  # silent: -inf dB inside, ramped through a deep cut
            amount = -120.0
        values[start:end] += amount * shape
    return values


def apply_gain(audio: np.ndarray, gain_db: float | np.ndarray) -> np.ndarray:
    """`audio` louder by `gain_db` (a number or one value per sample), peaks limited to full scale."""
    if np.isscalar(gain_db) and gain_db == 0:
        return audio
    out = audio.astype(np.float64) * np.power(10.0, np.asarray(gain_db, dtype=np.float64) / 20.0)
    return limit_peaks(out).astype(np.float32)


def limit_peaks(audio: np.ndarray, rate_hint: int = 32000) -> np.ndarray:
    """Scale down only around peaks above full scale, with a smooth gain envelope (no hard clipping)."""
    excess = np.abs(audio) / _PEAK
    if excess.size == 0 or excess.max() <= 1.0:
        return audio
    width = max(1, int(0.005 * rate_hint))
    need = np.maximum(excess, 1.0)
    # hold each sample's reduction over +-width, then smooth; the smoothed curve still covers every peak
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    held = maximum_filter1d(need, size=4 * width + 1)
    smooth = np.maximum(uniform_filter1d(held, size=2 * width + 1), need)
    return audio / smooth


def shift_pitch(audio: np.ndarray, rate: int, semitones: float = 0.0, changes: Sequence[Change] = ()) -> np.ndarray:
    """`audio` with its pitch raised by `semitones`, and further by each change's over its span; same length."""
    if audio.size == 0:
        return audio
    out = _same_level(_rubberband(audio, rate, semitones), audio) if semitones else audio
    by_amount: dict[float, list[Change]] = {}
    for change in changes:
        if change.semitones and change.end > change.start:
            by_amount.setdefault(round(change.semitones, 3), []).append(change)
    for amount, spans in by_amount.items():
        weight = curve(len(out), rate, [Change(c.start, c.end, semitones=1.0) for c in spans], "semitones")
        if not weight.any():
            continue
        inside = weight > 0.5
        shifted = _same_level(_rubberband(out, rate, amount), out, inside)
        out = (weight * shifted + (1 - weight) * out).astype(np.float32)
    return limit_peaks(out, rate).astype(np.float32)


def _same_level(shifted: np.ndarray, original: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """`shifted` scaled to the RMS level `original` has (over `where`): a pitch change keeps loudness."""
    a, b = (original, shifted) if where is None else (original[where], shifted[where])
    power_a, power_b = float(np.mean(np.square(a, dtype=np.float64))), float(np.mean(np.square(b, dtype=np.float64)))
    if power_a <= 0 or power_b <= 0:
        return shifted
    return (shifted * np.sqrt(power_a / power_b)).astype(np.float32)


def _rubberband(audio: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Rubber Band's R3 pitch shift with formants preserved, length kept."""
    import pyrubberband

    try:
        shifted = pyrubberband.pitch_shift(audio.astype(np.float32), rate, semitones,
                                           rbargs={"--fine": "", "--formant": ""})
    except RuntimeError as exc:
        raise EffectUnavailable("pitch changes need the Rubber Band program: install it (Debian: apt-get "
                                "install rubberband-cli) or leave pitch and emphasis out") from exc
    shifted = np.asarray(shifted, dtype=np.float32)
    return np.pad(shifted, (0, max(0, len(audio) - len(shifted))))[: len(audio)]


# -- loudness contour ------------------------------------------------------------------------------

_CONTOUR_FRAME = 640  # 20 ms at 32 kHz: the SoVITS hop
_SPEECH_RANGE_DB = 35.0  # frames within this much of the loudest count as speech


def frame_levels(magnitudes: np.ndarray) -> np.ndarray:
    """dB level per frame of a (bins, frames) magnitude spectrogram."""
    power = np.sum(np.square(magnitudes.astype(np.float64)), axis=0)
    return 10 * np.log10(power + 1e-10)


def contour_style(levels: np.ndarray) -> tuple[float, float]:
    """(mean, spread) in dB of the speech frames of a level contour: its loudness and how much it moves."""
    if levels.size == 0:
        return -100.0, 0.0
    smooth = np.convolve(levels, np.ones(5) / 5, mode="same") if levels.size >= 5 else levels
    speech = smooth[smooth > smooth.max() - _SPEECH_RANGE_DB]
    return float(speech.mean()), float(speech.std())


def follow_contour(audio: np.ndarray, rate: int, reference_levels: np.ndarray, amount: float,
                   hop: int = _CONTOUR_FRAME, levels: np.ndarray | None = None) -> np.ndarray:
    """Reshape the loudness contour of `audio` toward the reference's: its mean level and its spread.

    `reference_levels`: dB per frame of the reference (`frame_levels` of its spectrogram); `levels`:
    the same for `audio` (computed when None). `amount` 0 leaves the audio alone, 1 matches fully.
    Silence between words is left as it is; the gain is limited to +-12 dB and changes smoothly.
    """
    if amount == 0 or audio.size < hop:
        return audio
    if levels is None:
        levels = frame_levels(_magnitudes(audio, hop))
    ref_mean, ref_spread = contour_style(reference_levels)
    out_mean, out_spread = contour_style(levels)
    smooth = np.convolve(levels, np.ones(5) / 5, mode="same") if levels.size >= 5 else levels
    speech = smooth > smooth.max() - _SPEECH_RANGE_DB
    scale = ref_spread / out_spread if out_spread > 1e-6 else 1.0
    target = ref_mean + (smooth - out_mean) * scale
    gain = np.where(speech, amount * (target - smooth), amount * (ref_mean - out_mean))
    gain = np.clip(gain, -12.0, 12.0)
    frames = np.arange(levels.size) * hop + hop / 2
    per_sample = np.interp(np.arange(audio.size), frames, gain)
    ramp = max(1, int(RAMP_SECONDS * rate))
    per_sample = np.convolve(per_sample, np.ones(ramp) / ramp, mode="same")
    return apply_gain(audio, per_sample)


def _magnitudes(audio: np.ndarray, hop: int) -> np.ndarray:
    import torch

    from myna.audio.spectrogram import linear_spectrogram

    n_fft = 2048 if hop == _CONTOUR_FRAME else 4 * hop
    wave = torch.from_numpy(audio.astype(np.float32))
    if wave.numel() <= (n_fft - hop) // 2:
        wave = torch.nn.functional.pad(wave, (0, n_fft))
    return linear_spectrogram(wave, n_fft, hop, n_fft)[0].numpy()


def levels_of(audio: np.ndarray, hop: int = _CONTOUR_FRAME) -> np.ndarray:
    """dB level per `hop`-sample frame of `audio`, computed as for a reference clip's spectrogram."""
    return frame_levels(_magnitudes(audio, hop))
