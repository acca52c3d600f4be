"""Multi-reference timbre encoder (MRTE): content frames attend to the phoneme sequence, and the
reference timbre vector is added before projecting back to the content width.

Upstream's attention sees no position: which phoneme a frame attends to must come from matching what the
frame sounds like to the phonemes' identities and neighbours. A from-scratch decoder may never find that
(docs/default-voice.md), so `position_prior` adds to each head's scores a learned multiple of the squared
distance between a frame's and a phoneme's share of their sequences (frame t of T and phoneme n of N:
((t + 1/2) / T - (n + 1/2) / N)^2 / (2 POSITION_PRIOR_WIDTH^2)), a soft window along the diagonal.
The shares are of what MRTE is given: a window decoder (myna.engine.streaming) that gives it part of an
utterance's tokens with all of its phonemes would misplace them, so a model with the prior decodes whole
utterances until that path passes the window's place along the utterance.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from myna.models.attention import MultiHeadAttention

POSITION_PRIOR_WIDTH = 0.1  # in shares of the sequences


class MRTE(nn.Module):
    """Cross-attention from content (SSL) frames to text, plus the global timbre vector `ge`."""

    def __init__(
        self,
        content_channels: int = 192,
        hidden_size: int = 512,
        out_channels: int = 192,
        n_heads: int = 4,
        position_prior: bool = False,
    ) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden_size, hidden_size, n_heads)
        # softplus(0) ~0.69 a head: a window of ~2.4 widths at the start, which training may sharpen or relax
        self.position_scale = nn.Parameter(torch.zeros(n_heads)) if position_prior else None
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
        bias = None if self.position_scale is None else self.position_bias(content_mask, text_mask)
        attended, weights = self.cross_attention(content * content_mask, text * text_mask, cross_mask, need_weights=True,
                                                 bias=bias)
        fused = attended + content
        if ge is not None:
            fused = fused + ge
        out = self.c_post(fused * content_mask)
        return (out, weights.mean(1)) if with_attention else out

    def position_bias(self, content_mask: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """The diagonal prior (B, heads, T, N) from the masks' lengths (module doc)."""
        frames = content_mask.sum((1, 2)).clamp(min=1)
        phones = text_mask.sum((1, 2)).clamp(min=1)
        t = (torch.arange(content_mask.shape[-1], device=frames.device, dtype=frames.dtype) + 0.5)[None, :, None]
        n = (torch.arange(text_mask.shape[-1], device=phones.device, dtype=phones.dtype) + 0.5)[None, None, :]
        distance = (t / frames[:, None, None] - n / phones[:, None, None]) ** 2 / (2 * POSITION_PRIOR_WIDTH**2)
        return -F.softplus(self.position_scale)[None, :, None, None] * distance[:, None]
