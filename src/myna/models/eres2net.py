"""ERes2NetV2 speaker-verification network (3D-Speaker), as GPT-SoVITS v2Pro/v2ProPlus use it.

The network sees Kaldi log-mel filterbanks (batch, frames, mels) as a one-channel image
(mels x frames). Four stages of Res2Net-style blocks (the last two merge their sub-band branches
with attentional feature fusion) shrink it by 8 in both directions; the stage-3 map, downsampled
once more, is fused into the stage-4 map. GPT-SoVITS's speaker vector is that fused map averaged
over time and flattened over (channels, mel bands): 2048 x 10 = 20480 values for the released
model. The 192-dim statistics-pooling head (`seg_1`) is kept so the released weights load with
`strict=True`; `xvector` exposes it.

State-dict keys equal upstream's (`conv1`, `layerN.i.convs.j`, `fuse34.local_att.k`, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

# Blocks clip activations to [0, ACTIVATION_CEILING]; the stem uses a plain ReLU.
ACTIVATION_CEILING = 20.0
STD_FLOOR = 1e-8


@dataclass(frozen=True)
class ERes2NetV2Config:
    """Constructor arguments of upstream's ERes2NetV2; defaults are GPT-SoVITS's sv model (w24 s4 e4)."""

    num_blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    m_channels: int = 64
    feat_dim: int = 80
    embedding_size: int = 192
    baseWidth: int = 24  # upstream spells it so
    scale: int = 4
    expansion: int = 4


def _clipped_relu(x: torch.Tensor) -> torch.Tensor:
    return F.hardtanh(x, 0.0, ACTIVATION_CEILING)


class AttentionalFusion(nn.Module):
    """Blend two same-shape maps with a per-element gate in (0, 2) computed from both."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = channels // reduction
        self.local_att = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, kernel_size=1),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, main: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        """`main * g + side * (2 - g)` with g = 1 + tanh(attention(main, side))."""
        gate = 1.0 + torch.tanh(self.local_att(torch.cat((main, side), dim=1)))
        return main * gate + side * (2.0 - gate)


class SubBandBlock(nn.Module):
    """Res2Net bottleneck: 1x1 conv, `scale` chained 3x3 branches over channel groups, 1x1 conv, residual."""

    def __init__(self, in_channels: int, planes: int, stride: int, config: ERes2NetV2Config, fused: bool):
        super().__init__()
        width = planes * config.baseWidth // 64
        out_channels = planes * config.expansion
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width * config.scale, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * config.scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False) for _ in range(config.scale)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(config.scale))
        # Fused blocks merge the running branch into the next group with attention instead of a sum.
        self.fuse_models = (
            nn.ModuleList(AttentionalFusion(width) for _ in range(config.scale - 1)) if fused else None
        )
        self.conv3 = nn.Conv2d(width * config.scale, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, F, T) -> (B, planes * expansion, F / stride, T / stride)."""
        groups = torch.split(_clipped_relu(self.bn1(self.conv1(x))), self.width, dim=1)
        branches: list[torch.Tensor] = []
        for index, group in enumerate(groups):
            if index == 0:
                merged = group
            elif self.fuse_models is None:
                merged = branches[-1] + group
            else:
                merged = self.fuse_models[index - 1](branches[-1], group)
            branches.append(_clipped_relu(self.bns[index](self.convs[index](merged))))
        out = self.bn3(self.conv3(torch.cat(branches, dim=1)))
        return _clipped_relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """Filterbanks (B, frames, mels) -> GPT-SoVITS speaker vector (B, channels x mel bands / 8)."""

    def __init__(self, config: ERes2NetV2Config | None = None):
        super().__init__()
        self.config = config = config or ERes2NetV2Config()
        base = config.m_channels
        self.conv1 = nn.Conv2d(1, base, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        channels = base
        stages = []
        for stage, blocks in enumerate(config.num_blocks):
            planes = base * 2**stage
            stride = 1 if stage == 0 else 2
            layer = []
            for index in range(blocks):
                layer.append(SubBandBlock(channels, planes, stride if index == 0 else 1, config, fused=stage >= 2))
                channels = planes * config.expansion
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        top = base * 8 * config.expansion
        self.layer3_ds = nn.Conv2d(top // 2, top, kernel_size=3, stride=2, padding=1, bias=False)
        self.fuse34 = AttentionalFusion(top)
        pooled = (config.feat_dim // 8) * base * 8 * config.expansion * 2  # mean and std per (channel, band)
        self.seg_1 = nn.Linear(pooled, config.embedding_size)

    @property
    def output_dim(self) -> int:
        """Length of the speaker vector `forward` returns (20480 for the released model)."""
        bands = self.config.feat_dim
        for _ in range(3):
            bands = math.ceil(bands / 2)
        return self.config.m_channels * 8 * self.config.expansion * bands

    def feature_map(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, frames, mels) -> fused stage-3/4 map (B, channels, mels / 8, frames / 8)."""
        image = fbank.transpose(1, 2).unsqueeze(1)
        stem = F.relu(self.bn1(self.conv1(image)))
        stage3 = self.layer3(self.layer2(self.layer1(stem)))
        stage4 = self.layer4(stage3)
        return self.fuse34(stage4, self.layer3_ds(stage3))

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """Speaker vector: the fused map averaged over time, flattened over (channels, bands)."""
        return self.feature_map(fbank).flatten(1, 2).mean(-1)

    def xvector(self, fbank: torch.Tensor) -> torch.Tensor:
        """The 192-dim speaker-verification embedding (mean + std pooling, then `seg_1`)."""
        fused = self.feature_map(fbank)
        mean = fused.mean(-1).flatten(1)
        std = torch.sqrt(fused.var(-1) + STD_FLOOR).flatten(1)
        return self.seg_1(torch.cat((mean, std), dim=1))
