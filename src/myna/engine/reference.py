"""Reference clips: reading them, keeping them within 3-10 s, and their three model inputs.

From one clip upstream GPT-SoVITS derives (1) the 16 kHz waveform HuBERT turns into prompt semantic
tokens (librosa-style soxr resampling, 0.3 s of silence at 32 kHz appended), (2) the 32 kHz linear
spectrogram of the reference encoder (torchaudio-style sinc resampling, peak-limited to 1), and for
v2Pro (3) the 16 kHz waveform of the speaker-verification model (resampled from the 32 kHz one).
Clips of 3-10 s are used as they are, so results equal upstream's; longer clips are cut to the
loudest 10 s window at quiet points, and the change is reported in `notes`.

Level: upstream divides a clip whose peak passes 1 by min(2, peak) before the spectrogram and gives
HuBERT the samples as read. Every integer-PCM clip and any float clip peaking at 2 or less is used
exactly so (upstream's numbers). A float clip peaking above 2 would stay above full scale on both
paths and saturate the voice, so such a clip is divided by its peak first (upstream's own rule for
peaks in 1-2, extended), and the change is reported in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from myna.audio.io import AudioError, read_audio, resample_sinc, resample_soxr, to_mono
from myna.audio.spectrogram import limit_peak, linear_spectrogram

HUBERT_RATE = 16000
MIN_SECONDS = 3.0
MAX_SECONDS = 10.0
# Upstream appends int(32000 * 0.3) zero samples to the 16 kHz clip before HuBERT.
HUBERT_TAIL_SAMPLES = 9600
_SILENCE_PEAK = 1e-4  # a clip whose peak is below this is silence
_SATURATING_PEAK = 2.0  # above this, upstream's min(2, peak) rule leaves the clip above full scale
_WINDOW_HOP_SECONDS = 0.05


@dataclass
class ReferenceAudio:
    """One reference clip, ready for the models."""

    path: str
    wave_16k: np.ndarray  # mono float32 at 16 kHz, for HuBERT (tail not yet appended)
    wave_model: torch.Tensor  # (1, samples) at the SoVITS rate, peak <= 1
    model_rate: int
    notes: list[str] = field(default_factory=list)

    def hubert_input(self) -> torch.Tensor:
        """(1, samples) 16 kHz waveform with upstream's silent tail."""
        tail = np.zeros(HUBERT_TAIL_SAMPLES, dtype=np.float32)
        return torch.from_numpy(np.concatenate([self.wave_16k, tail]))[None]

    def spectrogram(self, n_fft: int, hop: int, win: int) -> torch.Tensor:
        """(1, n_fft // 2 + 1, frames) linear spectrogram for the reference encoder."""
        return linear_spectrogram(self.wave_model, n_fft, hop, win)

    def sv_input(self) -> torch.Tensor:
        """(1, samples) 16 kHz waveform for the v2Pro speaker-verification model."""
        return resample_sinc(self.wave_model, self.model_rate, HUBERT_RATE)


def load_reference(path: str | Path, model_rate: int = 32000) -> ReferenceAudio:
    """Read a reference clip and prepare it; clips outside 3-10 s are fixed or refused with a reason."""
    path = Path(path)
    channels, rate = read_audio(path)
    mono = to_mono(channels)
    notes: list[str] = []
    if float(np.max(np.abs(mono))) < _SILENCE_PEAK:
        raise AudioError(f"{path}: the reference clip is silent; record 3-10 s of clear speech")
    seconds = mono.shape[0] / rate
    if seconds < MIN_SECONDS:
        raise AudioError(
            f"{path}: the reference clip is {seconds:.2f} s long; it needs at least {MIN_SECONDS:g} s "
            f"(3-{MAX_SECONDS:g} s of speech works best)"
        )
    if seconds > MAX_SECONDS:
        start, stop = _loudest_window(mono, rate)
        channels, mono = channels[:, start:stop], mono[start:stop]
        notes.append(
            f"{path.name}: the clip is {seconds:.1f} s; used {start / rate:.2f}-{stop / rate:.2f} s, "
            f"the loudest {MAX_SECONDS:g} s (references of 3-{MAX_SECONDS:g} s work best)"
        )
    peak = float(np.max(np.abs(mono)))
    if peak > _SATURATING_PEAK:
        channels, mono = channels / np.float32(peak), mono / np.float32(peak)
        notes.append(f"{path.name}: the clip peaks at {peak:.1f} times full scale; used it scaled to full scale")
    wave_16k = resample_soxr(mono, rate, HUBERT_RATE)
    wave = torch.from_numpy(channels.mean(axis=0, dtype=np.float32) if channels.shape[0] > 1 else channels[0])[None]
    wave = limit_peak(resample_sinc(wave, rate, model_rate))
    return ReferenceAudio(str(path), wave_16k, wave, model_rate, notes)


def _loudest_window(mono: np.ndarray, rate: int) -> tuple[int, int]:
    """Start and stop of the loudest MAX_SECONDS window, each end moved to the quietest 50 ms within 1 s."""
    size = int(MAX_SECONDS * rate)
    hop = max(1, int(_WINDOW_HOP_SECONDS * rate))
    energy = np.concatenate([[0.0], np.cumsum(mono.astype(np.float64) ** 2)])
    starts = np.arange(0, mono.shape[0] - size + 1, hop)
    best = int(starts[np.argmax(energy[starts + size] - energy[starts])])
    start = _quietest_frame(energy, best, best + rate, hop)
    stop = _quietest_frame(energy, best + size - rate, best + size - hop, hop) + hop
    return start, min(stop, best + size)


def _quietest_frame(energy: np.ndarray, lo: int, hi: int, frame: int) -> int:
    """Start of the frame with the least energy among frames starting in [lo, hi]."""
    candidates = np.arange(lo, hi + 1, frame)
    return int(candidates[np.argmin(energy[candidates + frame] - energy[candidates])])
