"""Reference encoder (`ref_enc`): a linear spectrogram of the reference clip -> one timbre vector.

Frame-wise MLP with Mish, two gated temporal convolutions, one self-attention layer, a projection,
then a masked mean over time.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _mish(x: torch.Tensor) -> torch.Tensor:
    # written out (not F.mish) to keep upstream's rounding
    return x * torch.tanh(F.softplus(x))


class _Linear(nn.Module):
    """nn.Linear under upstream's `.fc` name."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _mish(x)


class _ConvWrap(nn.Module):
    """nn.Conv1d under upstream's `.conv` name."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels_in, channels_out, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class GatedConv(nn.Module):
    """Residual gated linear unit over a 1-d convolution."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = _ConvWrap(channels, 2 * channels, kernel_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> same shape."""
        value, gate = torch.split(self.conv1(x), self.channels, dim=1)
        return x + self.dropout(value * torch.sigmoid(gate))


class StyleSelfAttention(nn.Module):
    """Multi-head self-attention over linear projections, with a residual connection."""

    def __init__(self, n_heads: int, d_model: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.temperature = math.sqrt(d_model)  # upstream scales by the model width, not the head width
        self.w_qs = nn.Linear(d_model, d_model)
        self.w_ks = nn.Linear(d_model, d_model)
        self.w_vs = nn.Linear(d_model, d_model)
        self.fc = nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(dropout)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        x = x.view(batch, length, self.n_heads, self.head_dim).permute(2, 0, 1, 3)
        return x.contiguous().view(-1, length, self.head_dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, C); `pad` (B, T) is True on padding frames."""
        batch, length, _ = x.shape
        q, k, v = self._heads(self.w_qs(x)), self._heads(self.w_ks(x)), self._heads(self.w_vs(x))
        scores = torch.bmm(q, k.transpose(1, 2)) / self.temperature
        if pad is not None:
            blocked = pad.unsqueeze(1).expand(-1, length, -1).repeat(self.n_heads, 1, 1)
            scores = scores.masked_fill(blocked, -math.inf)
        weights = self.attn_dropout(torch.softmax(scores, dim=2))
        out = torch.bmm(weights, v).view(self.n_heads, batch, length, self.head_dim)
        out = out.permute(1, 2, 0, 3).contiguous().view(batch, length, -1)
        return self.dropout(self.fc(out)) + x


class MelStyleEncoder(nn.Module):
    """Spectrogram (B, bins, T) -> timbre vector (B, out_dim, 1)."""

    def __init__(
        self,
        in_dim: int,
        hidden: int = 128,
        out_dim: int = 512,
        kernel_size: int = 5,
        n_heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.spectral = nn.Sequential(
            _Linear(in_dim, hidden),
            _Mish(),
            nn.Dropout(dropout),
            _Linear(hidden, hidden),
            _Mish(),
            nn.Dropout(dropout),
        )
        self.temporal = nn.Sequential(
            GatedConv(hidden, kernel_size, dropout), GatedConv(hidden, kernel_size, dropout)
        )
        self.slf_attn = StyleSelfAttention(n_heads, hidden, dropout)
        self.fc = _Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode `spec` (B, bins, T); `mask` (B, 1, T) is 1 on valid frames."""
        x = spec.transpose(1, 2)
        pad = (mask.int() == 0).squeeze(1) if mask is not None else None
        x = self.spectral(x)
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad))
        if pad is None:
            return x.mean(dim=1).unsqueeze(-1)
        counts = (~pad).sum(dim=1).view(-1, 1, 1)
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        # divide each frame before summing (upstream's order), in float32
        pooled = torch.div(x.float(), counts).sum(dim=1).to(x.dtype)
        return pooled.unsqueeze(-1)
