"""Waveform discriminators for SoVITS training (upstream's `MultiPeriodDiscriminator`); training only.

One scale discriminator (`DiscriminatorS`, strided grouped 1-d convolutions on the raw waveform) and
one period discriminator per period (`DiscriminatorP`, the waveform folded into (T / p, p) and
convolved along time). Convolutions are weight-normalised and stored as upstream stores them
(`weight_g`, `weight_v`, `bias`), so the state-dict keys equal upstream's
(`discriminators.N.convs.M.weight_v`, `discriminators.N.conv_post.bias`, ...) and upstream's
pretrained `s2D*.pth` weights load with `strict=True`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from myna.errors import InputError

LEAKY_SLOPE = 0.1
PERIODS = {"v1": (2, 3, 5, 7, 11), "v2": (2, 3, 5, 7, 11), "v2Pro": (2, 3, 5, 7, 11, 17, 23),
           "v2ProPlus": (2, 3, 5, 7, 11, 17, 23)}


class WeightNormConv(nn.Module):
    """1-d or 2-d convolution with kernel `weight_g * weight_v / ||weight_v||` (norm over all but dim 0)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, groups: int = 1) -> None:
        super().__init__()
        kernel = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.stride, self.padding, self.groups = stride, padding, groups
        self.conv = F.conv1d if len(kernel) == 1 else F.conv2d
        direction = torch.empty(out_channels, in_channels // groups, *kernel)
        nn.init.kaiming_uniform_(direction, a=5**0.5)
        fan_in = direction[0].numel()
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-(fan_in**-0.5), fan_in**-0.5))
        dims = tuple(range(1, direction.dim()))
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(direction, dim=dims, keepdim=True))
        self.weight_v = nn.Parameter(direction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve `x` with the normalised kernel."""
        kernel = torch._weight_norm(self.weight_v, self.weight_g, 0)
        return self.conv(x, kernel, self.bias, self.stride, self.padding, 1, self.groups)


class DiscriminatorP(nn.Module):
    """Period discriminator: waveform (B, 1, T) folded to (B, 1, T / period, period)."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, narrow: int = 1) -> None:
        super().__init__()
        self.period = period
        pad = ((kernel_size - 1) // 2, 0)
        widths = (1, *(max(1, w // narrow) for w in (32, 128, 512, 1024, 1024)))
        self.convs = nn.ModuleList(
            WeightNormConv(widths[i], widths[i + 1], (kernel_size, 1), (stride if i < 4 else 1, 1), pad)
            for i in range(5)
        )
        self.conv_post = WeightNormConv(widths[-1], 1, (3, 1), 1, (1, 0))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) -> (scores (B, N), feature maps of every layer)."""
        batch, channels, length = wave.shape
        if length % self.period:
            wave = F.pad(wave, (0, self.period - length % self.period), "reflect")
        return _scores(self.convs, self.conv_post, wave.view(batch, channels, -1, self.period))


def _scores(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a conv stack (leaky ReLU after each) and its output conv: (flattened scores, every feature map)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return torch.flatten(x, 1, -1), features


class DiscriminatorS(nn.Module):
    """Scale discriminator on the raw waveform (strided, grouped 1-d convolutions)."""

    def __init__(self, narrow: int = 1) -> None:
        super().__init__()
        layers = ((1, 16, 15, 1, 1, 7), (16, 64, 41, 4, 4, 20), (64, 256, 41, 4, 16, 20),
                  (256, 1024, 41, 4, 64, 20), (1024, 1024, 41, 4, 256, 20), (1024, 1024, 5, 1, 1, 2))

        def cut(width: int) -> int:
            return width if width == 1 else max(1, width // narrow)

        self.convs = nn.ModuleList(
            WeightNormConv(cut(cin), cut(cout), k, stride, pad, max(1, groups // narrow))
            for cin, cout, k, stride, groups, pad in layers
        )
        self.conv_post = WeightNormConv(cut(1024), 1, 3, 1, 1)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) -> (scores (B, N), feature maps of every layer)."""
        return _scores(self.convs, self.conv_post, wave)


class MultiPeriodDiscriminator(nn.Module):
    """One scale discriminator plus one period discriminator per period of the model version."""

    def __init__(self, version: str = "v2", use_spectral_norm: bool = False, narrow: int = 1) -> None:
        """`narrow` > 1 divides every width (tests and benchmarks only; upstream's layout is 1)."""
        super().__init__()
        if use_spectral_norm:
            raise InputError("spectral-norm discriminators are not supported (no released config uses them)")
        if version not in PERIODS:
            raise InputError(f"no discriminator layout for SoVITS version {version!r}")
        discs: list[nn.Module] = [DiscriminatorS(narrow)]
        discs += [DiscriminatorP(period, narrow=narrow) for period in PERIODS[version]]
        self.discriminators = nn.ModuleList(discs)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[list, list, list, list]:
        """Scores and feature maps of every discriminator for real and generated waveforms."""
        real_scores, fake_scores, real_features, fake_features = [], [], [], []
        for disc in self.discriminators:
            score, features = disc(real)
            real_scores.append(score)
            real_features.append(features)
            score, features = disc(fake)
            fake_scores.append(score)
            fake_features.append(features)
        return real_scores, fake_scores, real_features, fake_features
