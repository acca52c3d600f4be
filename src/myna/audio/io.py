"""Reading, mixing down, resampling and writing audio.

Audio inside myna is float32 in [-1, 1]. Two resamplers exist because upstream GPT-SoVITS uses two
and same weights must give the same numbers:

- `resample_soxr`: libsoxr's high-quality mode with librosa's length rule; upstream reads the
  reference clip for HuBERT with `librosa.load(path, sr=16000)`.
- `resample_sinc`: a Hann-windowed sinc interpolator, the algorithm of torchaudio's `Resample`
  (lowpass width 6, rolloff 0.99); upstream uses it for the reference spectrogram (to 32 kHz) and for
  the v2Pro speaker-verification input (to 16 kHz). torchaudio itself has no CPU build for the
  pinned torch, so this is a small re-implementation, checked against torchaudio's output in tests.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from myna.errors import InputError

if TYPE_CHECKING:  # torch is imported where it is used: reading and checking clips must not load it
    import torch


class AudioError(InputError):
    """An audio file is missing, unreadable or unusable."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 (channels, samples) and its sampling rate."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"{path}: not a readable audio file ({exc}); use WAV, FLAC, OGG or MP3"
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    return np.ascontiguousarray(data.T), int(rate)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of (channels, samples) audio into (samples,)."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=0, dtype=audio.dtype) if audio.shape[0] > 1 else audio[0]


def resample_soxr(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample mono audio with libsoxr (HQ) to exactly ceil(n * target / rate) samples, as librosa does."""
    import soxr

    if rate == target:
        return audio
    length = math.ceil(audio.shape[-1] * target / rate)
    out = soxr.resample(audio, rate, target, quality="soxr_hq")
    if out.shape[-1] > length:
        out = out[..., :length]
    elif out.shape[-1] < length:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])])
    return np.asarray(out, dtype=audio.dtype)


def resample_sinc(audio: torch.Tensor, rate: int, target: int) -> torch.Tensor:
    """Resample (..., samples) audio with a Hann-windowed sinc filter (torchaudio's `Resample` algorithm)."""
    import torch

    if rate == target:
        return audio
    step = math.gcd(rate, target)
    src, dst = rate // step, target // step
    kernel, width = _sinc_kernel(src, dst)
    kernel = kernel.to(audio.dtype)
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    padded = torch.nn.functional.pad(flat, (width, width + src))
    out = torch.nn.functional.conv1d(padded[:, None], kernel, stride=src)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    length = math.ceil(dst * shape[-1] / src)
    return out[:, :length].reshape(*shape[:-1], -1)


@lru_cache(maxsize=16)
def _sinc_kernel(src: int, dst: int, lowpass_width: int = 6, rolloff: float = 0.99) -> tuple[torch.Tensor, int]:
    """Polyphase filter bank (dst, 1, taps) for reduced rates src -> dst, computed in float64."""
    import torch

    cutoff = min(src, dst) * rolloff
    width = math.ceil(lowpass_width * src / cutoff)
    taps = torch.arange(-width, width + src, dtype=torch.float64)[None, None] / src
    # The phase offsets are float32, as in torchaudio; the tap positions float64.
    phase = torch.arange(0, -dst, -1, dtype=torch.float32)[:, None, None] / dst + taps
    phase = (phase * cutoff).clamp(-lowpass_width, lowpass_width)
    window = torch.cos(phase * math.pi / lowpass_width / 2) ** 2
    phase = phase * math.pi
    sinc = torch.where(phase == 0, torch.ones_like(phase), phase.sin() / phase)
    return (sinc * window * (cutoff / src)).to(torch.float32), width


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio -> int16 the way upstream converts (scale by 32768, truncate), clipped instead of wrapping."""
    return np.clip(audio.astype(np.float64) * 32768.0, -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    """Write mono float audio as a 16-bit PCM WAV file."""
    import soundfile

    path = Path(path)
    if path.parent and not path.parent.exists():
        raise AudioError(f"{path}: the folder {path.parent} does not exist")
    soundfile.write(str(path), to_int16(np.asarray(audio)), rate, subtype="PCM_16")
