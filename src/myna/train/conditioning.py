"""Per-utterance checks and loudness normalisation of training audio.

Loudness is ITU-R BS.1770-4 integrated loudness (K-weighting, 400 ms gated blocks) as measured by
pyloudnorm; every utterance is brought to the same loudness, then limited to a peak of -0.5 dBFS
so the gain never clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from myna.train.extras import require

TARGET_LUFS = -20.0
PEAK_LIMIT = 0.944  # -0.5 dBFS
CLIP_LEVEL = 0.999
MAX_CLIPPED_FRACTION = 0.001
MIN_RMS_DBFS = -45.0


@dataclass(frozen=True)
class Verdict:
    """Whether an utterance is usable, and if not, a short reason (`kind`) and details."""

    kind: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the utterance is kept."""
        return self.kind is None


def check_piece(audio: np.ndarray, rate: int, min_seconds: float, max_seconds: float) -> Verdict:
    """Reject pieces that are too short/long, clipped or near-silent (audio as decoded, before gain)."""
    seconds = audio.shape[0] / rate
    if seconds < min_seconds:
        return Verdict("too short", f"{seconds:.2f} s < {min_seconds:g} s")
    if seconds > max_seconds:
        return Verdict("too long", f"{seconds:.2f} s > {max_seconds:g} s")
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > MAX_CLIPPED_FRACTION:
        return Verdict("clipped", f"{clipped:.2%} of samples at full scale")
    level = rms_dbfs(audio)
    if level < MIN_RMS_DBFS:
        return Verdict("near-silent", f"RMS {level:.1f} dBFS < {MIN_RMS_DBFS:g} dBFS")
    return Verdict()


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    mean_square = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    return 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def integrated_loudness(audio: np.ndarray, rate: int) -> float:
    """BS.1770 integrated loudness in LUFS (-inf when every block is gated out)."""
    pyloudnorm = require("pyloudnorm")
    meter = pyloudnorm.Meter(rate)
    if audio.shape[0] < int(meter.block_size * rate) + 1:
        return rms_dbfs(audio)  # shorter than one gating block: fall back to plain RMS
    return float(meter.integrated_loudness(audio.astype(np.float64)))


def normalize_loudness(audio: np.ndarray, rate: int, target_lufs: float = TARGET_LUFS) -> np.ndarray:
    """Scale to `target_lufs`, lowering the gain where needed so the peak stays under -0.5 dBFS."""
    loudness = integrated_loudness(audio, rate)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not math.isfinite(loudness) or peak == 0.0:
        return audio
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    gain = min(gain, PEAK_LIMIT / peak)
    return (audio * gain).astype(np.float32)
