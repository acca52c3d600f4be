"""Multi-reference timbre encoder (MRTE): content frames attend to the phoneme sequence, and the
reference timbre vector is added before projecting back to the content width."""

from __future__ import annotations

import torch
from torch import nn

from myna.models.attention import MultiHeadAttention


class MRTE(nn.Module):
    """Cross-attention from content (SSL) frames to text, plus the global timbre vector `ge`."""

    def __init__(
        self,
        content_channels: int = 192,
        hidden_size: int = 512,
        out_channels: int = 192,
        n_heads: int = 4,
    ) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden_size, hidden_size, n_heads)
        self.c_pre = nn.Conv1d(content_channels, hidden_size, 1)
        self.text_pre = nn.Conv1d(content_channels, hidden_size, 1)
        self.c_post = nn.Conv1d(hidden_size, out_channels, 1)

    def text_attention(
        self, content: torch.Tensor, content_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
    ) -> torch.Tensor:
        """Cross-attention weights (B, T, N) from each content frame to the phonemes, averaged over heads."""
        return self.forward(content, content_mask, text, text_mask, None, with_attention=True)[1]

    def forward(
        self,
        content: torch.Tensor,
        content_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        ge: torch.Tensor | None,
        with_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Fuse `content` (B, C, T) with `text` (B, C, N) and timbre `ge` (B, hidden, 1); `with_attention` also
        returns the attention weights (B, T, N), averaged over heads, before dropout (what `text_attention` gives)."""
        cross_mask = text_mask.unsqueeze(2) * content_mask.unsqueeze(-1)
        content = self.c_pre(content * content_mask)
        text = self.text_pre(text * text_mask)
        attended, weights = self.cross_attention(content * content_mask, text * text_mask, cross_mask, need_weights=True)
        fused = attended + content
        if ge is not None:
            fused = fused + ge
        out = self.c_post(fused * content_mask)
        return (out, weights.mean(1)) if with_attention else out
