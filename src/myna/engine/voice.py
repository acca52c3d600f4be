"""A prepared voice: what the GPT is prompted with and what conditions SoVITS (made by `Synthesizer.voice`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from myna.engine.textprep import Fragment


@dataclass(frozen=True)
class PromptMix:
    """A second GPT prompt (an emotion clip's) decoded beside the voice's own and mixed at `strength`.

    The next-token distribution is p_voice^(1-s) * p_mix^s, normalized (myna.engine.emotion_decode).
    """

    semantic: torch.Tensor  # (1, T) the clip's semantic tokens
    prompt: Fragment  # its transcript's phonemes + BERT features
    strength: float  # s, in (0, 1) or (1, 1.5]


@dataclass
class Voice:
    """A reference voice, prepared once: prompt tokens and phonemes (None when ref-free), timbre inputs."""

    semantic: torch.Tensor | None  # (1, T) prompt semantic tokens
    prompt: Fragment | None  # the reference transcript's phonemes + BERT features
    specs: list[torch.Tensor]  # one (1, 1025, frames) spectrogram per reference clip
    sv_embs: list[torch.Tensor] | None  # v2Pro: one speaker embedding per clip
    notes: list[str] = field(default_factory=list)  # what was changed about the clips, for the user
    mix: PromptMix | None = None  # a second GPT prompt mixed in (emotion strength, myna.engine.emotion)
