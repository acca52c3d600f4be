"""Content encoders: 16 kHz waveform -> frame features that SoVITS quantizes into semantic tokens.

Upstream GPT-SoVITS uses chinese-hubert-base through transformers' `HubertModel`, fed the raw
waveform (its feature extractor's normalisation is not applied on this path) at 50 frames/s; myna
runs the same model as its own module (myna.features.hubert), with equal numbers.
`ContentEncoder` is the seam for other encoders (e.g. a Whisper encoder) later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

CONTENT_RATE = 16000


class ContentEncoder(Protocol):
    """Waveform (1, samples) at 16 kHz -> features (1, dim, frames)."""

    dim: int

    def encode(self, wave_16k: torch.Tensor) -> torch.Tensor:
        """Frame features of a 16 kHz waveform."""
        ...


class HubertContentEncoder:
    """chinese-hubert-base (or another HuBERT in transformers' layout) from a local directory."""

    def __init__(self, model_dir: str | Path, device: str | torch.device = "cpu"):
        from myna.features.hubert import load_hubert

        self.model = load_hubert(model_dir, device)
        self.dim = int(self.model.config.hidden_size)
        self.device = torch.device(device)

    @torch.inference_mode()
    def encode(self, wave_16k: torch.Tensor) -> torch.Tensor:
        """Last hidden state, transposed to (1, dim, frames)."""
        return self.model(wave_16k.to(self.device)).transpose(1, 2)
