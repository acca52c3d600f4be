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
