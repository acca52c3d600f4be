"""Unsupervised semantic tokens: k-means codes of content frames, installed as SoVITS's quantizer.

A from-scratch model needs its `ssl_proj` and codebook before SoVITS trains on frozen tokens. Here
the 25 Hz token's frames (two 50 Hz frames stacked, as the stride-2 `ssl_proj` sees them) are
normalised per channel, projected onto their leading principal axes (as many as the quantizer has
channels), and clustered; `ssl_proj` becomes that affine projection and the codebook the centroids,
so `extract_latent` returns each token's nearest centroid exactly as the clustering assigned it.

Why k-means and not phones (myna.train.phonetic): in a probe decoder (tokens + phonemes -> 16 kHz
mel, Griffin-Lim, Whisper tiny.en on held-out speakers) 1024 k-means codes kept more words than
phone x 16 product codes or 55 phone classes (the recipe's docstring has the figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from myna.errors import InputError
from myna.train.phonetic import FrameBank, token_starts


def kmeans(points: torch.Tensor, count: int, gen: torch.Generator, rounds: int = 15, chunk: int = 8192) -> torch.Tensor:
    """`count` centroids of `points` (N, D): Lloyd's iterations from random points; an empty one is re-seeded."""
    if len(points) < count:
        raise InputError(f"k-means of {count} codes needs at least {count} token frames, got {len(points)}")
    centroids = points[torch.randperm(len(points), generator=gen)[:count]].clone()
    for _ in range(rounds):
        nearest = assign(points, centroids, chunk)
        sums = torch.zeros_like(centroids).index_add_(0, nearest, points)
        counts = torch.bincount(nearest, minlength=count)
        alive = counts > 0
        centroids[alive] = sums[alive] / counts[alive, None].to(points.dtype)
        dead = (~alive).nonzero().flatten()
        if len(dead):  # an empty cluster restarts at a random point rather than staying useless
            centroids[dead] = points[torch.randint(0, len(points), (len(dead),), generator=gen)]
    return centroids


def assign(points: torch.Tensor, centroids: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Index of the nearest centroid of every point (in chunks, to bound the distance matrix)."""
    return torch.cat([torch.cdist(points[i : i + chunk], centroids).argmin(1) for i in range(0, len(points), chunk)])


CONTENT_SCALE = 16.0  # ~ sqrt(384): per-channel spread near 1 for Whisper tiny's 384 axes


def fit_kmeans_tokenizer(model, clips: Sequence[torch.Tensor], codes: int = 1024, sample: int = 60_000,
                         rounds: int = 15, seed: int = 0) -> float:
    """Fit `codes` k-means codes of `clips` ((T, ssl_dim) content frames) and install them in `model`.

    The installed weights are rounded to fp16, the precision of exported files, so training, token
    extraction and the engine all pick the same tokens. Returns the share of the projected frames'
    variance the principal axes keep."""
    c = model.config
    span = 2 if c.semantic_frame_rate == "25hz" else 1
    book = model.quantizer.vq.layers[0]._codebook
    if codes > book.embed.shape[0]:
        raise InputError(f"the codebook holds {book.embed.shape[0]} codes, asked for {codes}")
    bank = FrameBank(clips)
    inputs = bank.inputs(token_starts(bank, span), tuple(range(span)))  # normalised, (N, span * ssl_dim)
    gen = torch.Generator().manual_seed(seed)
    picked = inputs[torch.randperm(len(inputs), generator=gen)[:sample]].double()
    center = picked.mean(0)
    _, spread, axes = torch.linalg.svd(picked - center, full_matrices=False)
    dims = min(c.ssl_dim, axes.shape[0])
    kept = float((spread[:dims] ** 2).sum() / (spread**2).sum())
    # One scale for every axis keeps the geometry. The prior encoder reads the codes' vectors as its
    # content input, so they need about unit spread per channel: at a total variance of 1 (0.05 per
    # channel) its transformer layers passed almost nothing of them on, and a decoder trained from
    # scratch learned only the mean spectrum. A power of two keeps fp16 rounding, hence the tokens,
    # the same at any scale.
    basis = axes[:dims] * CONTENT_SCALE / math.sqrt(float((spread[:dims] ** 2).sum()) / len(picked))
    projection = basis / bank.std.repeat(span).double()  # acts on raw frames
    offset = -(basis @ (bank.mean.repeat(span).double() / bank.std.repeat(span).double() + center))
    projection, offset = projection.half().double(), offset.half().double()  # the exported precision
    raw = inputs.double() * bank.std.repeat(span).double() + bank.mean.repeat(span).double()
    points = (raw[torch.randperm(len(raw), generator=gen)[:sample]] @ projection.t() + offset).float()
    centroids = kmeans(points, codes, gen, rounds).half().float()
    with torch.no_grad():
        weight = torch.zeros(c.ssl_dim, span * c.ssl_dim, dtype=torch.float64)
        weight[:dims] = projection
        bias = torch.zeros(c.ssl_dim, dtype=torch.float64)
        bias[:dims] = offset
        embed = torch.zeros_like(book.embed)
        embed[:, :dims] = 1e3  # codes beyond `codes` (none by default) never win
        embed[:codes, :dims] = centroids
        model.ssl_proj.weight.copy_(weight.view(c.ssl_dim, span, c.ssl_dim).transpose(1, 2).float())
        model.ssl_proj.bias.copy_(bias.float())
        book.embed.copy_(embed)
        book.embed_avg.copy_(embed)
        book.cluster_size.fill_(1.0)
        book.inited.fill_(1.0)
    return kept
