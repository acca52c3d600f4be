"""GE2E speaker embeddings with Resemblyzer's pretrained voice encoder (Apache-2.0), without its package.

The network (Resemblyzer 0.1.4, `resemblyzer/pretrained.pt`, a dict whose "model_state" holds
`lstm.{weight,bias}_{ih,hh}_l{0,1,2}` of a 3-layer LSTM 40 -> 256 and `linear.{weight,bias}` 256 ->
256, plus GE2E's `similarity_weight/bias`, unused here): the last layer's final hidden state goes
through the linear layer and a ReLU and is L2-normalised. An utterance is cut into 1.6-s partials
(160 frames of a 40-bin power mel spectrogram, 25 ms windows every 10 ms) starting every 1/1.3 s; its
embedding is the L2-normalised mean of the partial embeddings, so two clips compare by a dot product.

Resemblyzer's own preprocessing raises quiet clips to -30 dBFS and removes long pauses with
webrtcvad; here the pauses are found with an energy threshold instead (no compiled VAD dependency).
`myna/assets/speaker/` holds the weights converted to safetensors (scripts/convert_resemblyzer.py);
`from_file` also reads the original `pretrained.pt`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from myna.audio.io import resample_soxr
from myna.audio.mel import mel_filterbank
from myna.checkpoints import CheckpointError
from myna.errors import InputError

IDENTITY = "resemblyzer"
GE2E_RATE = 16000
EMBEDDING_DIM = 256
N_MELS, N_FFT, HOP = 40, 400, 160  # 25 ms windows every 10 ms at 16 kHz
PARTIAL_FRAMES = 160  # 1.6 s per partial utterance
PARTIALS_PER_SECOND = 1.3
MIN_COVERAGE = 0.75  # a last partial that is less than this much audio is dropped (if not the only one)
TARGET_DBFS = -30.0
BUNDLED = Path(__file__).resolve().parent.parent / "assets" / "speaker" / "resemblyzer_ge2e.safetensors"
_VAD_WINDOW = 480  # 30 ms
_VAD_SMOOTH, _VAD_KEEP = 8, 7  # moving-average width, windows of pause kept around speech
_VAD_RANGE_DB, _VAD_FLOOR_DB = 40.0, -60.0  # speech: within 40 dB of the loudest window and above -60 dBFS


class GE2EEncoder(nn.Module):
    """Resemblyzer's voice encoder: (batch, frames, 40) mel partials -> (batch, 256) unit vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, EMBEDDING_DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """Unit-length embedding of each partial."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp(min=1e-12)


def read_ge2e_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The encoder's state dict from our safetensors file or Resemblyzer's `pretrained.pt`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected Resemblyzer's pretrained.pt or {BUNDLED.name}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)
        state = data.get("model_state", data) if isinstance(data, dict) else None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: not Resemblyzer's pretrained.pt (no 'model_state' dict)")
    return {k: v.float() for k, v in state.items() if not k.startswith("similarity_")}


class GE2ESpeakerEmbedder:
    """Float audio -> (1, 256) L2-normalised speaker embedding; `similarity` compares two of them."""

    dim = EMBEDDING_DIM
    identity = IDENTITY

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        path = BUNDLED if path is None else Path(path)
        state = read_ge2e_weights(path)
        self.model = GE2EEncoder()
        expected = self.model.state_dict()
        if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
            raise CheckpointError(f"{path}: not Resemblyzer's 3-layer LSTM voice encoder weights")
        self.model.load_state_dict(state)
        self.device = torch.device(device)
        self.model.eval().to(self.device)
        mel = _slaney_filterbank()
        self.filterbank = mel.to(self.device)
        self.window = torch.hann_window(N_FFT, periodic=True, device=self.device)

    @torch.inference_mode()
    def embed(self, audio: torch.Tensor | np.ndarray, rate: int = GE2E_RATE) -> torch.Tensor:
        """Embedding (1, 256) of one clip, on the embedder's device: (samples,) or (1, samples) float audio at `rate`."""
        wave = audio.detach().float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio, np.float32)
        if wave.ndim == 2 and wave.shape[0] == 1:
            wave = wave[0]
        if wave.ndim != 1:
            raise InputError(f"speaker audio must be one mono clip (samples,) or (1, samples), got {wave.shape}")
        if rate != GE2E_RATE:
            wave = resample_soxr(wave.astype(np.float32), rate, GE2E_RATE)
        wave = drop_long_pauses(raise_quiet(wave))
        if wave.size < HOP * 2:
            raise InputError("the clip holds no speech to take a speaker embedding from")
        partials = self._partials(wave)
        mean = self.model(partials).mean(0, keepdim=True)
        return mean / mean.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def _partials(self, wave: np.ndarray) -> torch.Tensor:
        """(n_partials, 160, 40) power mel slices covering the clip, zero-padded at the end."""
        starts = partial_starts(wave.size)
        needed = (starts[-1] + PARTIAL_FRAMES) * HOP
        padded = np.pad(wave, (0, max(0, needed - wave.size)))
        signal = torch.from_numpy(padded.astype(np.float32)).to(self.device)
        spec = torch.stft(signal, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True).abs().pow(2)
        mel = (self.filterbank @ spec).T  # (frames, 40)
        return torch.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])

    @staticmethod
    def similarity(a: torch.Tensor, b: torch.Tensor) -> float:
        """Cosine similarity of two embeddings."""
        return float(torch.nn.functional.cosine_similarity(a.reshape(1, -1), b.reshape(1, -1)).item())


def partial_starts(samples: int) -> list[int]:
    """First mel frame of each 160-frame partial: one every 1/1.3 s, the last dropped if mostly padding."""
    frames = -(-(samples + 1) // HOP)
    step = int(round(GE2E_RATE / PARTIALS_PER_SECOND / HOP))
    starts = list(range(0, max(1, frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def raise_quiet(wave: np.ndarray) -> np.ndarray:
    """Scale a clip quieter than -30 dBFS RMS up to it (louder clips are left alone)."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    if rms == 0.0:
        raise InputError("the clip is digital silence; no speaker embedding can be taken")
    change = TARGET_DBFS - 20 * np.log10(rms)
    return (wave * 10 ** (change / 20)).astype(np.float32) if change > 0 else wave.astype(np.float32)


def drop_long_pauses(wave: np.ndarray) -> np.ndarray:
    """Remove pauses longer than about 0.2 s (30-ms windows far below the loudest), as GE2E was trained."""
    usable = wave[: wave.size - wave.size % _VAD_WINDOW]
    if usable.size == 0:
        return wave
    windows = usable.reshape(-1, _VAD_WINDOW).astype(np.float64)
    level = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)
    voiced = (level > level.max() - _VAD_RANGE_DB) & (level > _VAD_FLOOR_DB)
    kernel = np.ones(_VAD_SMOOTH) / _VAD_SMOOTH
    smoothed = np.round(np.convolve(voiced.astype(np.float64), kernel, mode="same")).astype(bool)
    keep = np.convolve(smoothed.astype(np.float64), np.ones(_VAD_KEEP), mode="same") > 0
    return usable.reshape(-1, _VAD_WINDOW)[keep].reshape(-1) if keep.any() else wave


def _slaney_filterbank() -> torch.Tensor:
    """(40, 201) Slaney-scale, Slaney-normalised mel filters (librosa's default) for 400-point FFTs."""
    return mel_filterbank(GE2E_RATE, N_FFT, N_MELS)
