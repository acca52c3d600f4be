"""Kaldi log-mel filterbanks (`compute-fbank-feats`), the input of the speaker-verification model.

Only the setting GPT-SoVITS uses is implemented: Kaldi's defaults with dither 0, that is 25 ms
frames every 10 ms that fit inside the clip (snip-edges), per-frame DC removal, pre-emphasis
0.97, Povey window, zero-padding to a power of two, power spectrum, triangular mel bins from
20 Hz to Nyquist, natural log floored at float32 epsilon, no energy column. The arithmetic
follows torchaudio.compliance.kaldi.fbank step for step, so results agree to float rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from myna.errors import InputError

FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
PREEMPHASIS = 0.97
POVEY_EXPONENT = 0.85
LOW_FREQ_HZ = 20.0
LOG_FLOOR = torch.finfo(torch.float32).eps


def frame_sizes(sample_rate: int) -> tuple[int, int, int]:
    """(frame length, frame shift, FFT size) in samples at `sample_rate`."""
    length = int(sample_rate * FRAME_LENGTH_MS * 0.001)
    shift = int(sample_rate * FRAME_SHIFT_MS * 0.001)
    return length, shift, 1 << (length - 1).bit_length()


def kaldi_fbank(waveform: torch.Tensor, num_mel_bins: int = 80, sample_rate: int = 16000) -> torch.Tensor:
    """Log-mel filterbank of (samples,) or (batch, samples) audio -> (frames, bins) or (batch, frames, bins)."""
    if waveform.dim() not in (1, 2) or not waveform.is_floating_point():
        raise InputError(
            f"filterbank input must be float audio shaped (samples,) or (batch, samples), got {waveform.dtype} "
            f"{tuple(waveform.shape)}"
        )
    length, shift, n_fft = frame_sizes(sample_rate)
    if waveform.shape[-1] < length:
        raise InputError(
            f"audio too short for a filterbank: {waveform.shape[-1]} samples, need at least {length} "
            f"({FRAME_LENGTH_MS:g} ms at {sample_rate} Hz)"
        )
    frames = waveform.unfold(-1, length, shift)  # (..., frames, length)
    frames = frames - frames.mean(-1, keepdim=True)
    previous = torch.cat((frames[..., :1], frames[..., :-1]), dim=-1)
    frames = frames - PREEMPHASIS * previous
    frames = frames * _povey_window(length, waveform.dtype, waveform.device)
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2.0)
    banks = mel_banks(num_mel_bins, n_fft, sample_rate).to(device=waveform.device, dtype=waveform.dtype)
    energies = torch.matmul(power, banks.T)
    return energies.clamp_min(LOG_FLOOR).log()


def _povey_window(length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Kaldi's Povey window: a symmetric Hann window raised to 0.85 (reaches zero at both ends)."""
    return torch.hann_window(length, periodic=False, dtype=dtype, device=device).pow(POVEY_EXPONENT)


def _mel(freq: float) -> float:
    return 1127.0 * math.log(1.0 + freq / 700.0)


@lru_cache(maxsize=8)
def _mel_banks_cached(num_bins: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    if num_bins <= 3:
        raise InputError(f"a filterbank needs more than 3 mel bins, got {num_bins}")
    nyquist = 0.5 * sample_rate
    mel_low, mel_high = _mel(LOW_FREQ_HZ), _mel(nyquist)
    step = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    # float32 throughout, in Kaldi/torchaudio's order of operations, so the weights match bit for bit
    left = mel_low + index * step
    center = mel_low + (index + 1.0) * step
    right = mel_low + (index + 2.0) * step
    fft_mel = (1127.0 * (1.0 + (sample_rate / n_fft) * torch.arange(n_fft // 2) / 700.0).log()).unsqueeze(0)
    rising = (fft_mel - left) / (center - left)
    falling = (right - fft_mel) / (right - center)
    triangles = torch.max(torch.zeros(1), torch.min(rising, falling))
    # The Nyquist bin gets no weight.
    return torch.nn.functional.pad(triangles, (0, 1))


def mel_banks(num_bins: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    """Triangular mel weights (num_bins, n_fft // 2 + 1), float32, 20 Hz to Nyquist."""
    return _mel_banks_cached(num_bins, n_fft, sample_rate).clone()
