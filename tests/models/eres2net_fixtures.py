"""ERes2NetV2 weights and test audio rebuilt bit-for-bit from fixed seeds.

Only torch is imported, so the same recipe also runs in upstream GPT-SoVITS's environment, which
is how `tools/upstream_reference/make_eres2net_reference.py` produced the reference outputs (see data/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

# Upstream constructor arguments: GPT-SoVITS's sv model, and a narrow copy for fast tests.
FULL_MODEL = {"m_channels": 64, "baseWidth": 24, "scale": 4, "expansion": 4}
TINY_MODEL = {"m_channels": 8, "baseWidth": 24, "scale": 4, "expansion": 4}
WEIGHT_SEED = 0
AUDIO_SEED = 1
SAMPLE_RATE = 16000


def seeded_weights(shapes: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """Random weights per key (sorted order, one generator); BatchNorm stats positive and near identity."""
    gen = torch.Generator().manual_seed(WEIGHT_SEED)
    weights: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        if key.endswith("num_batches_tracked"):
            weights[key] = torch.zeros(shape, dtype=torch.long)
            continue
        noise = torch.randn(shape, generator=gen)
        if key.endswith("running_var"):
            value = 1.0 + 0.5 * noise.abs()
        elif key.endswith("running_mean") or key.endswith("bias"):
            value = 0.1 * noise
        elif len(shape) == 1:  # BatchNorm scale
            value = 1.0 + 0.1 * noise
        else:
            value = noise / math.sqrt(math.prod(shape[1:]))  # fan-in scaling: activations stay O(1)
        weights[key] = value
    return weights


def sample_audio(batch: int = 2, samples: int = 4000) -> torch.Tensor:
    """(batch, samples) float32 at 16 kHz: two tones plus noise, a different pitch per row, amplitude < 1."""
    gen = torch.Generator().manual_seed(AUDIO_SEED)
    time = torch.arange(samples, dtype=torch.float32) / SAMPLE_RATE
    rows = []
    for row in range(batch):
        pitch = 140.0 + 60.0 * row
        tone = 0.3 * torch.sin(2 * math.pi * pitch * time) + 0.1 * torch.sin(2 * math.pi * 3.1 * pitch * time)
        rows.append(tone + 0.05 * torch.randn(samples, generator=gen))
    return torch.stack(rows)


def sample_fbank(batch: int = 2, frames: int = 23, mels: int = 80) -> torch.Tensor:
    """(batch, frames, mels) float32 log-mel-like features (around -4, spread 2)."""
    gen = torch.Generator().manual_seed(AUDIO_SEED)
    return 2.0 * torch.randn(batch, frames, mels, generator=gen) - 4.0
