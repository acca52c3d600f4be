"""Word and phoneme timing: align SoVITS's content frames to the phonemes, and map frames to output time.

The soft alignment is MRTE's cross-attention (each 50 Hz content frame attends over the fragment's
phonemes). A monotonic path through it (every phoneme gets at least one frame, in order) is found by
dynamic programming, with a prior that favours the diagonal: where the attention says little (an
untrained model, a flat head), the path falls back to sharing the frames out evenly, so timing is
always monotonic and covers the audio. The same frames drive the time warp that lengthens emphasized
words and meets an exact duration, so timing, emphasis and breaks agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_PRIOR_WIDTH = 0.15  # std of the diagonal prior, as a fraction of the fragment
_FLOOR = 1e-4


@dataclass(frozen=True)
class WordTiming:
    """A word of the text and where it is spoken, in seconds from the start of the audio."""

    text: str
    start: float
    end: float

    def to_dict(self) -> dict:
        """JSON-ready record: text, start, end (seconds, rounded to the millisecond)."""
        return {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme symbol and where it is spoken, in seconds from the start of the audio."""

    phoneme: str
    start: float
    end: float

    def to_dict(self) -> dict:
        """JSON-ready record: phoneme, start, end (seconds, rounded to the millisecond)."""
        return {"phoneme": self.phoneme, "start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass
class Speech:
    """Synthesized audio with its word and phoneme timing."""

    audio: np.ndarray
    sampling_rate: int
    words: list[WordTiming] = field(default_factory=list)
    phonemes: list[PhonemeTiming] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sampling_rate

    def timing_dict(self) -> dict:
        """The JSON sidecar: duration, words and phonemes with start/end seconds."""
        return {"duration": round(self.seconds, 3), "sampling_rate": self.sampling_rate,
                "words": [w.to_dict() for w in self.words], "phonemes": [p.to_dict() for p in self.phonemes]}


@dataclass
class SpeechChunk:
    """One piece of a stream: audio, plus the words and phonemes that ended within the audio so far."""

    audio: np.ndarray
    words: list[WordTiming] = field(default_factory=list)
    phonemes: list[PhonemeTiming] = field(default_factory=list)


def phoneme_frames(attention: np.ndarray) -> np.ndarray:
    """Frames per phoneme (N,), summing to T, from a (T, N) soft alignment: the best monotonic path."""
    frames, phones = attention.shape
    if phones == 0:
        return np.zeros(0, dtype=int)
    if frames < phones:  # too few frames for one each: share them out in order
        edges = np.floor(np.arange(phones + 1) * frames / phones).astype(int)
        return np.diff(edges)
    t = (np.arange(frames)[:, None] + 0.5) / frames
    n = (np.arange(phones)[None, :] + 0.5) / phones
    score = np.log(np.maximum(attention, _FLOOR)) - 0.5 * ((t - n) / _PRIOR_WIDTH) ** 2
    best = np.full(phones, -np.inf)
    best[0] = score[0, 0]
    stay = np.zeros((frames, phones), dtype=bool)
    for frame in range(1, frames):
        moved = np.concatenate([[-np.inf], best[:-1]])
        stay[frame] = best >= moved
        best = np.maximum(best, moved) + score[frame]
        lowest = phones - (frames - frame)  # later phonemes still need a frame each
        if lowest > 0:
            best[:lowest] = -np.inf
    counts = np.zeros(phones, dtype=int)
    phone = phones - 1
    for frame in range(frames - 1, -1, -1):
        counts[phone] += 1
        if frame and not stay[frame, phone]:
            phone -= 1
    return counts


def warp_positions(frame_factors: np.ndarray, out_frames: int) -> np.ndarray:
    """Fractional source frame read by each of `out_frames` output frames, source frame t lasting
    `frame_factors[t]` (relative) output frames; `frame_factors` all equal gives SoVITS's own speed warp."""
    edges = np.concatenate([[0.0], np.cumsum(frame_factors)])
    edges *= out_frames / edges[-1]
    centres = np.arange(out_frames) + 0.5
    return np.interp(centres, edges, np.arange(len(frame_factors) + 1)) - 0.5


def output_edges(frame_factors: np.ndarray, out_frames: int) -> np.ndarray:
    """Output-frame position (T + 1,) of each source-frame edge under the warp of `warp_positions`."""
    edges = np.concatenate([[0.0], np.cumsum(frame_factors)])
    return edges * (out_frames / edges[-1])


def fragment_timing(
    phones: list[str],
    counts: np.ndarray,
    edges: np.ndarray,
    words: list,
    seconds_per_frame: float,
    offset: float,
) -> tuple[list[WordTiming], list[PhonemeTiming]]:
    """Word and phoneme timing of one fragment: `counts` source frames per phoneme, `edges` the output
    position of each source-frame edge, `words` WordSpans (phoneme ranges), `offset` seconds before it."""
    starts = np.concatenate([[0], np.cumsum(counts)])
    times = offset + edges[starts] * seconds_per_frame
    phone_times = [PhonemeTiming(p, float(times[i]), float(times[i + 1])) for i, p in enumerate(phones)]
    word_times = [WordTiming(w.text, float(times[w.start]), float(times[w.end])) for w in words]
    return word_times, phone_times
