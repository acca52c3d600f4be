"""Cutting long recordings into utterances at pauses.

Frame levels (RMS in dBFS, 10 ms hop) are compared with a threshold set per recording: 35 dB below its
loud level (95th percentile of frame levels), so quiet and loud recordings slice alike, but above its
noise floor (10th percentile) where the noise would otherwise hide the pauses. Pauses of at least
`min_pause` seconds are cut points; neighbouring pieces are merged until an utterance reaches `target`
seconds, and any utterance still longer than `max_seconds` is cut again at its quietest frame. The
settings map onto upstream's slicer: `threshold_db` (its `threshold`, fixed instead of automatic),
`min_pause` (`min_interval`), `hop` (`hop_size`) and `keep_silence` (`max_sil_kept`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOP_SECONDS = 0.01
WINDOW_SECONDS = 0.03
_FLOOR_DB = -60.0
_SILENCE_EPS = 1e-10


@dataclass(frozen=True)
class SliceConfig:
    """Slicing limits and pause detection (seconds; levels in dB)."""

    min_seconds: float = 2.0
    max_seconds: float = 12.0
    target: float = 3.0
    min_pause: float = 0.3  # shortest pause cut at
    keep_silence: float = 0.15  # pause kept at each end of an utterance
    threshold_below_loud: float = 35.0
    threshold_db: float | None = None  # a fixed pause threshold in dBFS; None: set per recording
    hop: float = HOP_SECONDS  # level analysis hop; the window is 3 hops
    noise_margin_db: float = 6.0  # an automatic threshold stays this far above the noise floor

    def __post_init__(self) -> None:
        from myna.errors import InputError

        if not 0.001 <= self.hop <= 0.1:
            raise InputError(f"the slicing hop must be 1-100 ms, got {self.hop * 1000:g} ms")
        if self.min_pause <= 0 or self.keep_silence < 0:
            raise InputError("the minimum pause must be > 0 and the silence kept >= 0")
        if self.threshold_db is not None and not -120 < self.threshold_db < 0:
            raise InputError(f"the slicing threshold is in dBFS (below 0), got {self.threshold_db:g}")


def frame_levels(audio: np.ndarray, rate: int, hop_seconds: float = HOP_SECONDS) -> np.ndarray:
    """RMS level in dBFS of each hop (a window of 3 hops centred on it; 10 ms / 30 ms by default)."""
    hop = max(1, int(hop_seconds * rate))
    window = max(hop, int(hop_seconds * WINDOW_SECONDS / HOP_SECONDS * rate))
    frames = max(1, -(-audio.shape[0] // hop))
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    centres = np.arange(frames) * hop + hop // 2
    lo = np.clip(centres - window // 2, 0, audio.shape[0])
    hi = np.clip(centres + window // 2, 0, audio.shape[0])
    mean = (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(mean + _SILENCE_EPS)


def noise_floor(levels: np.ndarray) -> float:
    """A recording's noise floor: the 10th percentile of its frame levels (dBFS)."""
    return float(np.percentile(levels, 10)) if levels.size else _FLOOR_DB


def loud_level(levels: np.ndarray) -> float:
    """A recording's loud level: the 95th percentile of its frame levels (dBFS)."""
    return float(np.percentile(levels, 95)) if levels.size else _FLOOR_DB


def silence_threshold(levels: np.ndarray, config: SliceConfig) -> float:
    """The dBFS level under which a frame counts as pause."""
    if config.threshold_db is not None:
        return config.threshold_db
    loud, floor = loud_level(levels), noise_floor(levels)
    threshold = max(_FLOOR_DB, loud - config.threshold_below_loud)
    # Noise above that threshold would fill every pause; when the floor is clearly below the speech
    # (a recording with pauses), sit just above the floor instead, but never past halfway to the speech.
    if floor + config.noise_margin_db > threshold and loud - floor >= 15.0:
        threshold = min(floor + config.noise_margin_db, (floor + loud) / 2)
    return threshold


def slice_on_silence(audio: np.ndarray, rate: int, config: SliceConfig | None = None) -> list[tuple[int, int]]:
    """(start, stop) sample ranges of utterances in `audio`; pieces shorter than min_seconds are kept
    in the result too (the caller drops them with a reason)."""
    config = config or SliceConfig()
    hop = max(1, int(config.hop * rate))
    levels = frame_levels(audio, rate, config.hop)
    voiced = levels >= silence_threshold(levels, config)
    regions = _voiced_regions(voiced, int(round(config.min_pause / config.hop)))
    if not regions:
        return []
    keep = int(round(config.keep_silence / config.hop))
    padded = _pad_regions(regions, keep, len(levels))
    groups = _merge(padded, config.target / config.hop, config.max_seconds / config.hop)
    pieces: list[tuple[int, int]] = []
    for start, stop in groups:
        pieces.extend(_split_long(levels, start, stop, config))
    total = audio.shape[0]
    return [(min(s * hop, total), min(e * hop, total)) for s, e in pieces if s * hop < total]


def _voiced_regions(voiced: np.ndarray, min_pause_frames: int) -> list[tuple[int, int]]:
    """[start, stop) frame runs of voice, bridging pauses shorter than `min_pause_frames`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
    merged: list[tuple[int, int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] < min_pause_frames:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _pad_regions(regions: list[tuple[int, int]], keep: int, frames: int) -> list[tuple[int, int]]:
    """Extend each region by up to `keep` frames of pause on each side, never past a neighbour's half."""
    padded = []
    for i, (start, stop) in enumerate(regions):
        left_limit = (regions[i - 1][1] + start) // 2 if i else 0
        right_limit = (stop + regions[i + 1][0]) // 2 if i + 1 < len(regions) else frames
        padded.append((max(start - keep, left_limit), min(stop + keep, right_limit)))
    return padded


def _merge(regions: list[tuple[int, int]], target: float, limit: float) -> list[tuple[int, int]]:
    """Join consecutive regions (with the pause between) while a group is under `target` frames."""
    groups = [regions[0]]
    for start, stop in regions[1:]:
        first, last = groups[-1]
        if last - first < target and stop - first <= limit:
            groups[-1] = (first, stop)
        else:
            groups.append((start, stop))
    return groups


def _split_long(levels: np.ndarray, start: int, stop: int, config: SliceConfig) -> list[tuple[int, int]]:
    """Cut [start, stop) at its quietest frame, recursively, until each piece is at most max_seconds."""
    max_frames = int(config.max_seconds / config.hop)
    if stop - start <= max_frames:
        return [(start, stop)]
    # Both halves must keep at least min_seconds, and the longer half must shrink below the whole.
    margin = max(int(config.min_seconds / config.hop), (stop - start) - max_frames if stop - start < 2 * max_frames else 1)
    margin = min(margin, (stop - start) // 2)
    lo, hi = start + margin, stop - margin
    cut = lo + int(np.argmin(levels[lo:hi])) if hi > lo else (start + stop) // 2
    return _split_long(levels, start, cut, config) + _split_long(levels, cut, stop, config)
