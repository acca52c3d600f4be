"""SoVITS training losses (upstream s2 objectives); the log-mel spectra they compare are `myna.audio.mel`'s.

Adversarial losses are least-squares GAN terms; feature matching is twice the mean L1 distance of
every discriminator feature map.
"""

from __future__ import annotations

import torch


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


def guided_attention_loss(weights: torch.Tensor, frame_lengths: torch.Tensor, text_lengths: torch.Tensor,
                          width: float = 0.2) -> torch.Tensor:
    """Mean over frames of the attention (B, T, N) that falls far from the diagonal, where frame t of T and
    phoneme n of N sit at the same share of their sequences: 1 - exp(-(n/N - t/T)^2 / 2 width^2) per weight
    (Tachibana et al. 2017, "guided attention"). 0 for a monotonic alignment at an even pace; up to ~1 for
    attention parked on one place."""
    frames = torch.arange(weights.shape[1], device=weights.device, dtype=weights.dtype)
    phones = torch.arange(weights.shape[2], device=weights.device, dtype=weights.dtype)
    t = (frames[None, :, None] + 0.5) / frame_lengths[:, None, None].to(weights.dtype)
    n = (phones[None, None, :] + 0.5) / text_lengths[:, None, None].to(weights.dtype)
    valid = (t < 1) & (n < 1)
    penalty = 1 - torch.exp(-((n - t) ** 2) / (2 * width**2))
    return (weights * penalty * valid).sum() / frame_lengths.sum().to(weights.dtype)


def aligned_attention_loss(weights: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mean over frames with a known phoneme of minus the log of the attention (B, T, N) it gives that phoneme;
    positions (B, T) hold each frame's phoneme index, or -1 where it is not known (0 when none is known)."""
    known = positions >= 0
    if not bool(known.any()):
        return weights.sum() * 0.0
    picked = weights.gather(2, positions.clamp(min=0).unsqueeze(2)).squeeze(2)
    return -((picked + 1e-6).log() * known).sum() / known.sum()  # + eps: a gradient even where ~0
