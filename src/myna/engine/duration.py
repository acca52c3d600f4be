"""Exact duration: share a requested length out over the fragments without changing their words.

Every fragment is time-warped by the same factor (its own rhythm, emphasis and rates kept), so its
output frame count is its natural length times that factor; rounding is carried from fragment to
fragment, and the last pause absorbs what is left (under one frame), so the audio is exact to the sample.
"""

from __future__ import annotations

import numpy as np

from myna.errors import InputError

MIN_FACTOR, MAX_FACTOR = 0.25, 4.0  # the range of SoVITS speed: 4x faster to 4x slower


def fragment_frames(natural: list[float], silence_seconds: float, duration: float, seconds_per_frame: float) -> list[int]:
    """Output frames per fragment so that speech plus `silence_seconds` lasts `duration` seconds."""
    speech = duration - silence_seconds
    total = float(sum(natural))
    if total <= 0:
        raise InputError("nothing was spoken, so no duration can be met")
    if speech <= 0:
        raise InputError(f"duration {duration:g} s is shorter than the pauses and breaks alone "
                         f"({silence_seconds:.2f} s); ask for more, or shorten the pauses")
    factor = speech / seconds_per_frame / total
    if not MIN_FACTOR <= factor <= MAX_FACTOR:
        natural_seconds = total * seconds_per_frame + silence_seconds
        low = total * seconds_per_frame * MIN_FACTOR + silence_seconds
        high = total * seconds_per_frame * MAX_FACTOR + silence_seconds
        raise InputError(f"duration {duration:g} s is out of reach for this text: it takes {natural_seconds:.2f} s "
                         f"at normal speed; ask for {low:.2f} to {high:.2f} s")
    ends = np.round(np.cumsum(natural) * factor).astype(int)
    frames = np.diff(np.concatenate([[0], ends]))
    return [max(1, int(n)) if natural[i] > 0 else 0 for i, n in enumerate(frames)]
