"""Linear magnitude spectrogram of a reference clip, as GPT-SoVITS's SoVITS reference encoder expects.

The signal is reflect-padded by (n_fft - hop) / 2 on each side and framed without centring, so frame
i covers samples [i*hop - pad, i*hop - pad + n_fft). Magnitudes are sqrt(re^2 + im^2 + 1e-8).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from myna.errors import InputError

N_FFT = 2048
HOP_LENGTH = 640
WIN_LENGTH = 2048
MAGNITUDE_EPS = 1e-8


def linear_spectrogram(
    wave: torch.Tensor,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
) -> torch.Tensor:
    """Waveform (samples,) or (batch, samples) -> magnitudes (batch, n_fft // 2 + 1, frames)."""
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    if wave.dim() != 2:
        raise InputError(
            f"expected a mono waveform (samples,) or (batch, samples), got shape {tuple(wave.shape)}"
        )
    pad = (n_fft - hop_length) // 2
    if wave.shape[-1] <= pad:
        raise InputError(
            f"reference audio is too short for a spectrogram: {wave.shape[-1]} samples, need more than {pad}"
        )
    padded = F.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win_length, dtype=wave.dtype, device=wave.device)
    stft = torch.stft(
        padded,
        n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    parts = torch.view_as_real(stft)
    return torch.sqrt(parts.pow(2).sum(-1) + MAGNITUDE_EPS)


def limit_peak(wave: torch.Tensor) -> torch.Tensor:
    """Upstream's level rule for reference clips: a clip whose peak exceeds 1 is divided by min(2, peak)."""
    peak = wave.abs().max()
    return wave / torch.clamp(peak, max=2.0) if peak > 1 else wave


def reference_spectrogram(
    wave: torch.Tensor,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    win_length: int = WIN_LENGTH,
) -> torch.Tensor:
    """Spectrogram of a reference clip at the model rate, after upstream's peak rule (`limit_peak`)."""
    return linear_spectrogram(limit_peak(wave), n_fft, hop_length, win_length)
