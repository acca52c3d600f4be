"""Figures of where a decoder's text attention (MRTE: content frames to phonemes) looks.

A decoder trained from scratch can leave that attention parked on one phoneme, and then its phonemes
carry nothing (docs/default-voice.md); these figures tell parked, spread and ordered attention apart.
"""

from __future__ import annotations

import torch

from myna.train.losses import guided_attention_loss


def attention_figures(weights: torch.Tensor) -> dict[str, float]:
    """`guide`, `peak` and `order` of one clip's attention weights (T frames, N phonemes; rows sum to 1).

    guide: the guided-attention loss (0 on the diagonal, ~0.57 spread evenly, more when parked off it);
    peak: the largest weight of a frame times N (1: spread evenly; N: all on one phoneme);
    order: the rank (Spearman) correlation of frame and most-attended phoneme (~1: a monotonic alignment;
    ~0: no order)."""
    frames, phones = weights.shape
    guide = float(guided_attention_loss(weights[None].float(), torch.tensor([frames]), torch.tensor([phones])))
    peak = float(weights.max(-1).values.float().mean()) * phones
    attended = weights.argmax(-1)
    counts = torch.bincount(attended, minlength=phones).float()
    tied = torch.cumsum(counts, 0) - counts + (counts + 1) / 2  # Spearman: frames on one phoneme share its mean rank
    ranks = torch.stack([torch.arange(frames).float(), tied[attended]])
    order = float(torch.corrcoef(ranks)[0, 1].nan_to_num())  # all on one phoneme: no variance, no order
    return {"guide": guide, "peak": peak, "order": order}
