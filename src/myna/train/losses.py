"""SoVITS training losses and the log-mel spectrogram they compare (upstream s2 objectives).

Mel: Slaney-scale, Slaney-normalised triangular filters (librosa's default filterbank) applied to
the linear magnitude spectrogram, then log(max(x, 1e-5)). Adversarial losses are least-squares GAN
terms; feature matching is twice the mean L1 distance of every discriminator feature map.
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


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor,
            mask: torch.Tensor) -> torch.Tensor:
    """KL(posterior || prior) per unmasked latent element."""
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares: real scores towards 1, generated towards 0."""
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2) for r, f in zip(real, fake, strict=True))


def generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares: generated scores towards 1."""
    return sum(torch.mean((1 - f.float()) ** 2) for f in fake)


def feature_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Twice the summed mean L1 distance between real and generated feature maps."""
    total = sum(
        torch.mean(torch.abs(r.float().detach() - g.float()))
        for rs, gs in zip(real, fake, strict=True)
        for r, g in zip(rs, gs, strict=True)
    )
    return total * 2
