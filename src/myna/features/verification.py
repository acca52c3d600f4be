"""The audio side of the consent check: speaker embeddings and speech recognition as plain numpy in/out.

`SpeakerVerifier` embeds a clip with ERes2NetV2 (the 192-dim speaker-verification x-vector of the
v2Pro/v2ProPlus `sv` model, over mean-normalised 80-bin Kaldi filterbanks, as 3D-Speaker verifies
speakers) when that model file is given, else with the bundled Resemblyzer GE2E encoder.
`WhisperListener` transcribes with faster-whisper: the bundled Whisper tiny.en for English, a local
multilingual model (MYNA_CONSENT_ASR_MODEL) for Chinese and Japanese (and English, if there is no
bundled model). Both satisfy the protocols of `myna.voices.consent`, which stays free of torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from myna.audio.io import resample_soxr
from myna.errors import InputError

ASR_RATE = 16000


class SpeakerVerifier:
    """Float mono audio at any rate -> unit-length speaker embedding (numpy); `identity` names the encoder."""

    def __init__(self, sv_path: str | Path | None = None, device: str = "cpu") -> None:
        self.device = torch.device(device)
        if sv_path is not None:
            from myna.features.speaker import SpeakerEncoder

            self._eres2net = SpeakerEncoder.from_file(sv_path, device).model
            self._ge2e = None
            self.identity = "eres2net"
        else:
            from myna.features.ge2e import GE2ESpeakerEmbedder

            self._eres2net = None
            self._ge2e = GE2ESpeakerEmbedder(device=device)
            self.identity = "resemblyzer"

    @torch.inference_mode()
    def embed(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """The speaker embedding of one clip, L2-normalised."""
        wave = np.ascontiguousarray(samples, dtype=np.float32).ravel()
        if wave.size == 0:
            raise InputError("the clip holds no audio to take a speaker embedding from")
        if self._ge2e is not None:
            vector = self._ge2e.embed(wave, rate).cpu().numpy().ravel()
        else:
            from myna.audio.fbank import kaldi_fbank

            wave16 = resample_soxr(wave, rate, ASR_RATE) if rate != ASR_RATE else wave
            fbank = kaldi_fbank(torch.from_numpy(wave16).unsqueeze(0).to(self.device), 80, ASR_RATE)
            fbank = fbank - fbank.mean(dim=1, keepdim=True)
            vector = self._eres2net.xvector(fbank).float().cpu().numpy().ravel()
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector


class WhisperListener:
    """faster-whisper transcription per language, models loaded on first use."""

    def __init__(self, multilingual_model: str | Path | None = None, threads: int = 0, beam_size: int = 5) -> None:
        self.multilingual_model = Path(multilingual_model) if multilingual_model is not None else None
        self.threads = threads
        self.beam_size = beam_size
        self._models: dict[str, object] = {}

    def supports(self, language: str) -> bool:
        """English always (bundled tiny.en or the multilingual model); zh/ja only with a multilingual model."""
        if language == "en":
            return self.multilingual_model is not None or _bundled_available()
        return language in ("zh", "ja") and self.multilingual_model is not None

    def transcribe(self, samples: np.ndarray, rate: int, language: str) -> str:
        """What was said in `language`."""
        wave = np.ascontiguousarray(samples, dtype=np.float32).ravel()
        wave16 = resample_soxr(wave, rate, ASR_RATE) if rate != ASR_RATE else wave
        text, _ = self._model(language).transcribe(wave16, language)
        return text

    def _model(self, language: str):
        from myna.features.asr import Transcriber

        bundled = language == "en" and _bundled_available()
        name = "bundled" if bundled else "multilingual"
        if name not in self._models:
            if not bundled and self.multilingual_model is None:
                raise InputError(f"no speech recognition model for {language!r}: set MYNA_CONSENT_ASR_MODEL to a local "
                                 "multilingual faster-whisper model folder")
            directory = None if bundled else self.multilingual_model
            self._models[name] = Transcriber(directory, threads=self.threads, beam_size=self.beam_size)
        return self._models[name]


def _bundled_available() -> bool:
    try:
        from myna.features.asr import bundled_model_dir

        return (bundled_model_dir() / "model.bin").is_file()
    except Exception:  # noqa: BLE001 - any failure to find the package means "not available"
        return False
