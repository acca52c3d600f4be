"""Cutting long recordings into utterances at pauses.

Frame levels (RMS in dBFS, 10 ms hop) are compared with a threshold set relative to the recording's
own loud level, so quiet and loud recordings slice alike. Pauses of at least `min_pause` seconds are
cut points; neighbouring pieces are merged until an utterance reaches `target` seconds, and any
utterance still longer than `max_seconds` is cut again at its quietest frame.
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
    """Slicing limits (seconds) and the silence threshold relative to the loud level (dB)."""

    min_seconds: float = 2.0
    max_seconds: float = 12.0
    target: float = 3.0
    min_pause: float = 0.3
    keep_silence: float = 0.15
    threshold_below_loud: float = 35.0


def frame_levels(audio: np.ndarray, rate: int) -> np.ndarray:
    """RMS level in dBFS of each 10 ms hop (30 ms window centred on it)."""
    hop = max(1, int(HOP_SECONDS * rate))
    window = max(hop, int(WINDOW_SECONDS * rate))
    frames = max(1, -(-audio.shape[0] // hop))
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    centres = np.arange(frames) * hop + hop // 2
    lo = np.clip(centres - window // 2, 0, audio.shape[0])
    hi = np.clip(centres + window // 2, 0, audio.shape[0])
    mean = (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(mean + _SILENCE_EPS)


def silence_threshold(levels: np.ndarray, config: SliceConfig) -> float:
    """The dBFS level under which a frame counts as pause."""
    loud = float(np.percentile(levels, 95)) if levels.size else _FLOOR_DB
    return max(_FLOOR_DB, loud - config.threshold_below_loud)


def slice_on_silence(audio: np.ndarray, rate: int, config: SliceConfig | None = None) -> list[tuple[int, int]]:
    """(start, stop) sample ranges of utterances in `audio`; pieces shorter than min_seconds are kept
    in the result too (the caller drops them with a reason)."""
    config = config or SliceConfig()
    hop = max(1, int(HOP_SECONDS * rate))
    levels = frame_levels(audio, rate)
    voiced = levels >= silence_threshold(levels, config)
    regions = _voiced_regions(voiced, int(round(config.min_pause / HOP_SECONDS)))
    if not regions:
        return []
    keep = int(round(config.keep_silence / HOP_SECONDS))
    padded = _pad_regions(regions, keep, len(levels))
    groups = _merge(padded, config.target / HOP_SECONDS, config.max_seconds / HOP_SECONDS)
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
    max_frames = int(config.max_seconds / HOP_SECONDS)
    if stop - start <= max_frames:
        return [(start, stop)]
    # Both halves must keep at least min_seconds, and the longer half must shrink below the whole.
    margin = max(int(config.min_seconds / HOP_SECONDS), (stop - start) - max_frames if stop - start < 2 * max_frames else 1)
    margin = min(margin, (stop - start) // 2)
    lo, hi = start + margin, stop - margin
    cut = lo + int(np.argmin(levels[lo:hi])) if hi > lo else (start + stop) // 2
    return _split_long(levels, start, cut, config) + _split_long(levels, cut, stop, config)
