"""Transformer encoder of the SoVITS text encoder: multi-head attention with windowed relative
positions (keys and values), a convolutional feed-forward block and post-norm residuals.

Parameter names (`conv_q`, `emb_rel_k`, `attn_layers`, `norm_layers_1`, ...) are upstream's.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from myna.models.layers import ChannelLayerNorm

# score given to masked positions before the softmax (not -inf: a fully masked row stays finite)
MASKED_SCORE = -1e4


def _relative_window(table: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """Rows of a (heads, 2*window+1, dim) table for offsets -(length-1)..length-1, zero outside."""
    offsets = torch.arange(-(length - 1), length, device=table.device)
    inside = offsets.abs() <= window
    picked = table[:, (offsets.clamp(-window, window) + window)]
    return picked * inside.to(table.dtype)[None, :, None] if not bool(inside.all()) else picked


def _offset_index(length: int, device: torch.device) -> torch.Tensor:
    """(length, length) index of the relative offset column `j - i + length - 1` for query i, key j."""
    pos = torch.arange(length, device=device)
    return pos.unsqueeze(0) - pos.unsqueeze(1) + (length - 1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over 1x1 convolutions; optional relative-position window (self-attention)."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        p_dropout: float = 0.0,
        window_size: int | None = None,
    ) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels ({channels}) must be a multiple of n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window_size is not None:
            scale = self.head_dim**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.head_dim) * scale)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.head_dim) * scale)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, length = x.shape
        return x.view(batch, self.n_heads, self.head_dim, length).transpose(2, 3)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from `x` (B, C, Tq) to `context` (B, C, Tk); `mask` (B, 1, Tq, Tk) is 1 where allowed.

        `need_weights`: also return the softmax weights (B, heads, Tq, Tk), before dropout. `bias` (B, heads or 1,
        Tq, Tk) is added to the scores."""
        batch, channels, q_len = x.shape
        query = self._split_heads(self.conv_q(x)) / math.sqrt(self.head_dim)
        key = self._split_heads(self.conv_k(context))
        value = self._split_heads(self.conv_v(context))

        scores = torch.matmul(query, key.transpose(-2, -1))
        if self.window_size is not None:
            if key.shape[2] != q_len:
                raise ValueError("relative positions need self-attention (same query and key length)")
            rel_keys = _relative_window(self.emb_rel_k, q_len, self.window_size)
            rel_logits = torch.matmul(query, rel_keys.unsqueeze(0).transpose(-2, -1))
            index = _offset_index(q_len, x.device).expand(batch, self.n_heads, q_len, q_len)
            scores = scores + torch.gather(rel_logits, 3, index)
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            scores = scores.masked_fill(mask == 0, MASKED_SCORE)
        softmax = F.softmax(scores, dim=-1)
        weights = self.drop(softmax)
        out = torch.matmul(weights, value)
        if self.window_size is not None:
            # scatter each row's weights into relative-offset columns, then mix the value table
            rel_weights = weights.new_zeros(batch, self.n_heads, q_len, 2 * q_len - 1)
            index = _offset_index(q_len, x.device).expand(batch, self.n_heads, q_len, q_len)
            rel_weights.scatter_(3, index, weights)
            rel_values = _relative_window(self.emb_rel_v, q_len, self.window_size)
            out = out + torch.matmul(rel_weights, rel_values.unsqueeze(0))
        out = self.conv_o(out.transpose(2, 3).contiguous().view(batch, channels, q_len))
        return (out, softmax) if need_weights else out


class FeedForward(nn.Module):
    """Two 'same'-padded convolutions with a ReLU between them, masked in and out."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filter_channels: int,
        kernel_size: int,
        p_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Apply the block to `x` (B, C, T) under `mask` (B, 1, T)."""
        h = torch.relu(self.conv_1(F.pad(x * mask, self.pad)))
        h = self.drop(h)
        return self.conv_2(F.pad(h * mask, self.pad)) * mask


class TransformerEncoder(nn.Module):
    """Stack of post-norm layers: relative self-attention then feed-forward, each with a residual."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int = 4,
    ) -> None:
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout, window_size)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FeedForward(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout)
            for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode `x` (B, C, T) where `mask` (B, 1, T) marks valid frames."""
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, norm_1, ffn, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm_1(x + self.drop(attn(x, x, pair_mask)))
            x = norm_2(x + self.drop(ffn(x, mask)))
        return x * mask
