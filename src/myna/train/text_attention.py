"""Figures of where a decoder's text attention (MRTE: content frames to phonemes) looks.

A decoder trained from scratch can leave that attention parked on one phoneme, and then its phonemes
carry nothing (docs/default-voice.md); these figures tell parked, spread and ordered attention apart.
`phoneme_identity` asks the other side: whether the text encoder's states, which the attention matches
frames against and returns, still say which phoneme they stand for.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

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


def phoneme_identity(states: list[torch.Tensor], phone_ids: list[torch.Tensor]) -> float:
    """How well the text side's states (one (N, C) tensor per clip) still tell their phonemes apart: the share of
    phonemes in the second half of the clips whose nearest class mean (cosine, standardised features, means taken
    over the first half's phonemes) is their own phoneme's. Near 1 for the embeddings and a fresh encoder; a text
    encoder whose states have drifted into context alone scores near the most common phoneme's share."""
    if len(states) < 2:
        raise ValueError("phoneme_identity needs at least two clips")
    half = len(states) // 2
    fit, fit_ids = torch.cat(states[:half]).float(), torch.cat(phone_ids[:half])
    test, test_ids = torch.cat(states[half:]).float(), torch.cat(phone_ids[half:])
    mean, std = fit.mean(0), fit.std(0) + 1e-5
    fit, test = F.normalize((fit - mean) / std, dim=1), F.normalize((test - mean) / std, dim=1)
    classes, fit_class = torch.unique(fit_ids, return_inverse=True)
    centroids = F.normalize(torch.zeros(len(classes), fit.shape[1]).index_add_(0, fit_class, fit), dim=1)
    known = torch.isin(test_ids, classes)  # phonemes never seen in the first half are not scored
    guessed = classes[(test[known] @ centroids.T).argmax(1)]
    return float((guessed == test_ids[known]).float().mean()) if bool(known.any()) else 0.0
