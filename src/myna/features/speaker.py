"""Speaker embeddings for v2Pro/v2ProPlus SoVITS: ERes2NetV2 over Kaldi filterbanks of 16 kHz audio.

Upstream GPT-SoVITS takes the reference clip at the SoVITS rate (32 kHz), resamples it to 16 kHz
with torchaudio's `Resample` (`myna.audio.io.resample_sinc`), computes an 80-bin Kaldi filterbank
per clip (dither 0) and feeds the stack to ERes2NetV2; the 20480-value time-averaged feature map
is SoVITS's `sv_emb` input. The weights are the released
`pretrained_models/sv/pretrained_eres2netv2w24s4ep4.ckpt`, a plain state dict.
"""

from __future__ import annotations

from pathlib import Path

import torch

from myna.audio.fbank import kaldi_fbank
from myna.audio.io import resample_sinc
from myna.checkpoints import CheckpointError, read_state_dict
from myna.errors import InputError
from myna.models.eres2net import ERes2NetV2, ERes2NetV2Config

SPEAKER_RATE = 16000
RELEASED_FILE = "pretrained_eres2netv2w24s4ep4.ckpt"


class SpeakerEncoder:
    """16 kHz audio (batch, samples) -> speaker vectors (batch, 20480), as upstream's `compute_embedding3`."""

    def __init__(self, model: ERes2NetV2, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> SpeakerEncoder:
        """Load the released ERes2NetV2 (w24 s4 e4) speaker-verification weights from a local file."""
        state = read_state_dict(path)
        with torch.device("meta"):
            model = ERes2NetV2(ERes2NetV2Config())
        _check_state(path, model, state)
        model.load_state_dict(state, strict=True, assign=True)
        # Files saved in fp16 load into an fp32 model, as upstream's `load_state_dict` copy does.
        return cls(model.float(), device)

    @property
    def dim(self) -> int:
        """Length of one speaker vector."""
        return self.model.output_dim

    @torch.inference_mode()
    def embed(self, audio: torch.Tensor, rate: int = SPEAKER_RATE) -> torch.Tensor:
        """Speaker vectors (batch, dim) of float audio (batch, samples) or (samples,); resampled to 16 kHz first."""
        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        if audio.dim() != 2 or audio.shape[0] == 0 or not audio.is_floating_point():
            raise InputError(f"speaker audio must be float (batch, samples), got {audio.dtype} {tuple(audio.shape)}")
        audio = resample_sinc(audio.float(), rate, SPEAKER_RATE)
        fbank = kaldi_fbank(audio.to(self.device), self.model.config.feat_dim, SPEAKER_RATE)
        return self.model(fbank)


def _check_state(path: str | Path, model: ERes2NetV2, state: dict[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming what differs when `state` is not this model's weights."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or wrong):
        return
    details = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            details.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    raise CheckpointError(
        f"{path}: not the ERes2NetV2 w24 s4 e4 speaker-verification weights ({'; '.join(details)}); "
        f"use GPT-SoVITS's pretrained_models/sv/{RELEASED_FILE}"
    )
