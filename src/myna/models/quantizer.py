"""Residual vector quantizer that turns projected SSL features into semantic tokens and back.

Buffers follow upstream's layout (`vq.layers.N._codebook.{inited,cluster_size,embed,embed_avg}`);
only `embed` is used at inference. Codebook training (EMA updates, k-means init) lives in train/.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Codebook(nn.Module):
    """One Euclidean codebook: nearest-entry lookup and embedding."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.register_buffer("inited", torch.zeros(1))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed", torch.zeros(size, dim))
        self.register_buffer("embed_avg", torch.zeros(size, dim))

    def encode(self, vectors: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry for each row of `vectors` (N, dim)."""
        entries = self.embed.t()
        # |x|^2 - 2 x.e + |e|^2, summed in this order so near-ties resolve as upstream's do
        distance = (
            vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ entries + entries.pow(2).sum(0, keepdim=True)
        )
        return (-distance).max(dim=-1).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook vectors for `indices` (any shape) -> (..., dim)."""
        return F.embedding(indices, self.embed)


class _Stage(nn.Module):
    """One residual stage; wraps its codebook under upstream's `_codebook` name."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self._codebook = Codebook(dim, size)


class _Stages(nn.Module):
    def __init__(self, dim: int, size: int, n_q: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Stage(dim, size) for _ in range(n_q))


class ResidualVectorQuantizer(nn.Module):
    """`n_q` codebooks applied to successive residuals (GPT-SoVITS uses one)."""

    def __init__(self, dimension: int = 768, n_q: int = 1, bins: int = 1024) -> None:
        super().__init__()
        self.vq = _Stages(dimension, bins, n_q)

    @property
    def bins(self) -> int:
        """Codes per stage."""
        return self.vq.layers[0]._codebook.embed.shape[0]

    def encode(self, features: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Codes (n_q, B, T) for `features` (B, dim, T)."""
        residual = features.transpose(1, 2)
        batch, frames, dim = residual.shape
        codes = []
        for stage in self.vq.layers[: n_q or len(self.vq.layers)]:
            book = stage._codebook
            idx = book.encode(residual.reshape(-1, dim)).view(batch, frames)
            residual = residual - book.decode(idx)
            codes.append(idx)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Features (B, dim, T) for codes (n_q, B, T): the sum of each stage's vectors."""
        total = None
        for stage, idx in zip(self.vq.layers, codes, strict=False):
            vectors = stage._codebook.decode(idx)
            total = vectors if total is None else total + vectors
        if total is None:
            raise ValueError("codes must hold at least one quantizer stage")
        return total.transpose(1, 2)
