"""Slaney mel filterbank (librosa's default) and log-mel spectra of waveforms.

The filters are Slaney-scale (linear below 1 kHz, logarithmic above) and Slaney-normalised (each
triangle has unit area in Hz), computed in float64. Used by the GE2E speaker encoder at run time and
by the SoVITS training loss; log-mel is log(max(x, 1e-5)) of the filtered linear magnitudes.
"""

from __future__ import annotations

import math

import torch

from myna.audio.spectrogram import linear_spectrogram

_SLANEY_LINEAR_STEP = 200.0 / 3
_SLANEY_LOG_START_HZ = 1000.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    start_mel = _SLANEY_LOG_START_HZ / _SLANEY_LINEAR_STEP
    linear = hz / _SLANEY_LINEAR_STEP
    log = start_mel + torch.log(hz.clamp(min=1e-10) / _SLANEY_LOG_START_HZ) / _SLANEY_LOG_STEP
    return torch.where(hz >= _SLANEY_LOG_START_HZ, log, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    start_mel = _SLANEY_LOG_START_HZ / _SLANEY_LINEAR_STEP
    linear = mel * _SLANEY_LINEAR_STEP
    log = _SLANEY_LOG_START_HZ * torch.exp(_SLANEY_LOG_STEP * (mel - start_mel))
    return torch.where(mel >= start_mel, log, linear)


def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney mel filterbank in float64 -> float32."""
    fmax = rate / 2 if fmax is None else fmax
    bins = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
                                      float(_hz_to_mel(torch.tensor(fmax, dtype=torch.float64))),
                                      n_mels + 2, dtype=torch.float64))
    widths = edges[1:] - edges[:-1]
    ramps = edges.unsqueeze(1) - bins.unsqueeze(0)
    lower = -ramps[:-2] / widths[:-1].unsqueeze(1)
    upper = ramps[2:] / widths[1:].unsqueeze(1)
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    weights *= (2.0 / (edges[2:] - edges[:-2])).unsqueeze(1)
    return weights.float()


def log_mel(spec: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """Linear magnitudes (B, bins, T) -> log mel (B, n_mels, T)."""
    return torch.log(torch.clamp(filterbank.to(spec) @ spec, min=1e-5))


def wave_log_mel(wave: torch.Tensor, filterbank: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """Waveform (B, samples) -> log mel (B, n_mels, samples // hop)."""
    return log_mel(linear_spectrogram(wave, n_fft, hop, win), filterbank)
