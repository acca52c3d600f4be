"""An inaudible watermark on every clip myna makes: it survives codecs and carries a 32-bit payload.

How it works (keyed spread spectrum on the short-time spectrum, with informed embedding):

* Audio is cut into 32 ms frames every 16 ms (the same in seconds at every sampling rate) and the
  spectrum between 300 Hz and 7 kHz into 24 bands, equally spaced on the ERB scale. A frame x band
  cell is a *tile*; the key gives each tile of a 96-frame (1.536 s) period a sign, +1 or -1. Half
  the tiles are *sync* tiles with fixed signs; the other half carry the payload's 162 code bits
  (`watermark_code`: CRC-16 + rate-1/3 convolutional code), each spread over about 7 tiles per period.
* Embedding scales each tile by a gain of at most +3 / -4 dB. The detector looks at each tile's level
  relative to its frame and to its neighbours in time; the embedder measures the same statistic
  on its own output and raises a tile's gain, in the direction of its sign, only until the tile
  shows a 2 dB margin (three rounds of analysis by synthesis). The speech's own spectral detail,
  which would drown a fixed-strength mark, is thus compensated rather than fought, and tiles that
  already agree with their sign are left nearly alone. Tiles 40 dB below their frame's loudest
  band, and silence, are not touched: there is nothing to hide a mark in, and codecs drop them.
* Detection resamples to 16 kHz, tries 4 sub-frame offsets and all 96 phases of the period, and
  correlates the sync tiles' statistic (weighted by an estimate of each tile's signal-to-noise
  ratio) with the sync signs: a z-score, normally distributed on unmarked audio. Any 3 s excerpt
  holds about two periods, so a cut anywhere is found. Longer inputs are scored in 6 s segments.
  With the best alignment found, the payload tiles give soft code bits, summed over segments, and
  a Viterbi search decodes them; the payload is reported only when its CRC checks.

The mark is a gain per tile, so gain changes do not touch it, and it lives below 7 kHz, where
speech codecs keep the spectral envelope and a 16 kHz resampling keeps everything. Streams are
marked chunk by chunk (`Watermarker.stream`): a tile cut by a chunk boundary gets the part of the
mark each chunk computes for its side, so the joined stream carries the mark with no added delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from myna.audio.watermark_code import CODED_BITS, PAYLOAD_BITS, KeyStream, decode_payload, encode_payload
from myna.errors import InputError

__all__ = ["DEFAULT_KEY", "PAYLOAD_BITS", "Detection", "WatermarkStream", "Watermarker"]

DEFAULT_KEY = b"myna-watermark-v1"
DETECT_RATE = 16000
HOP_SECONDS = 0.016  # frames of twice this, overlapping by half
LOW_HZ, HIGH_HZ, BANDS = 300.0, 7000.0, 24
PERIOD = 96  # frames in one period of the pattern (1.536 s)
SYNC_SHARE = 0.5
MIN_RATE = 8000

# embedding: start gain, target margin, largest boost and cut (dB), rounds of analysis by synthesis, step
# (a 4 dB cut raised the 3 s excerpts' lowest scores by ~20% for 0.1 less PESQ than +-3 dB)
_START_DB, _MARGIN_DB, _MAX_DB, _MAX_CUT_DB, _ROUNDS, _STEP = 0.5, 2.0, 3.0, 4.0, 3, 0.7
_QUIET_DB = -40.0  # tiles this far below their frame's loudest band are left alone (and ignored)
_PIECE_FRAMES = 625  # marking works on at most this many frames (10 s) at a time
_SILENT_DB = -85.0  # tile level (dB re full-scale white noise power) below which a tile is silence
_CLIP_DB = 6.0  # the detector's statistic is clipped here: one odd tile cannot dominate
# detection: sub-frame offsets tried, segment length, z-score needed (see `Detection`)
_OFFSETS = 4
_SEGMENT_SECONDS = 6.0
THRESHOLD_CONFIDENCE = 0.999
_DECODE_SCORE = 3.0  # segments scoring this much add their soft bits to the payload's decoding


@dataclass(frozen=True)
class Detection:
    """What `Watermarker.detect` found.

    `score` is the best sync z-score; `confidence` is 1 minus the chance that unmarked audio scores
    as high (the normal tail, times the alignments and segments tried); `watermarked` means
    confidence >= 0.999. `payload` is the decoded 32-bit payload when its CRC checks, else None.
    """

    watermarked: bool
    confidence: float
    payload: int | None
    score: float
    best_guess: int | None = None  # the decoder's most likely payload, CRC checked or not (for measurements)

    def as_dict(self) -> dict[str, object]:
        """The JSON form: watermarked, confidence, payload (or null), score."""
        return {"watermarked": self.watermarked, "confidence": round(self.confidence, 6),
                "payload": self.payload, "score": round(self.score, 3)}


@dataclass(frozen=True)
class _Grid:
    """The frame and band layout at one sampling rate."""

    hop: int
    window: np.ndarray  # sqrt-Hann of 2 * hop samples: analysis and synthesis windows overlap-add to 1
    band_of_bin: np.ndarray  # band index of each rfft bin, BANDS for bins outside every band
    band_starts: np.ndarray  # first bin of each band (for np.add.reduceat), then the end
    bins_per_band: np.ndarray

    @classmethod
    def at(cls, rate: int) -> _Grid:
        hop = max(1, round(rate * HOP_SECONDS))
        size = 2 * hop
        window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size))
        edges = np.round(_band_edges_hz() * size / rate).astype(int)
        edges = np.minimum(edges, size // 2)  # low rates: bands past Nyquist are empty
        band_of_bin = np.full(size // 2 + 1, BANDS)
        for band in range(BANDS):
            band_of_bin[edges[band]:edges[band + 1]] = band
        counts = np.maximum(np.diff(edges), 1)
        return cls(hop, window, band_of_bin, edges, counts)

    def frames(self, buffer: np.ndarray) -> np.ndarray:
        """Windowed spectra (frames, bins) of a buffer holding whole frames every hop."""
        count = (len(buffer) - 2 * self.hop) // self.hop + 1
        index = np.arange(2 * self.hop)[None] + self.hop * np.arange(count)[:, None]
        return np.fft.rfft(buffer[index] * self.window, axis=1)

    def overlap_add(self, spectra: np.ndarray) -> np.ndarray:
        """The buffer whose `frames` are `spectra` (windowed again, overlap-added)."""
        pieces = np.fft.irfft(spectra, 2 * self.hop, axis=1) * self.window
        out = np.zeros((len(spectra) + 1) * self.hop)
        out[: len(spectra) * self.hop] += pieces[:, : self.hop].reshape(-1)
        out[self.hop :] += pieces[:, self.hop :].reshape(-1)
        return out

    def levels(self, spectra: np.ndarray) -> np.ndarray:
        """Band levels (frames, BANDS) in dB: mean power per bin, relative to full-scale white noise."""
        power = np.abs(spectra) ** 2
        start, end = self.band_starts[0], self.band_starts[-1]
        sums = np.add.reduceat(power[:, start : max(end, start + 1)], self.band_starts[:-1] - start, axis=1)
        sums[:, np.diff(self.band_starts) == 0] = 0.0
        mean = sums / self.bins_per_band / np.sum(self.window**2) * 3.0
        return 10 * np.log10(mean + 1e-30)

    def gains(self, gain_db: np.ndarray) -> np.ndarray:
        """Per-bin linear gains (frames, bins) of per-tile gains in dB (bins outside the bands: 1)."""
        padded = np.concatenate([10 ** (gain_db / 20), np.ones((len(gain_db), 1))], axis=1)
        return padded[:, self.band_of_bin]


def _band_edges_hz() -> np.ndarray:
    def erb(f):
        return 21.4 * np.log10(1 + 0.00437 * f)

    points = np.linspace(erb(LOW_HZ), erb(HIGH_HZ), BANDS + 1)
    return (10 ** (points / 21.4) - 1) / 0.00437


def _contrast(levels: np.ndarray) -> np.ndarray:
    """The statistic the mark is read from: a tile's level relative to its frame, minus its time neighbours'."""
    relative = levels - levels.mean(axis=1, keepdims=True)
    if len(relative) < 2:
        return np.zeros_like(relative)
    neighbours = np.empty_like(relative)
    neighbours[1:-1] = 0.5 * (relative[:-2] + relative[2:])
    neighbours[0], neighbours[-1] = relative[1], relative[-2]
    return relative - neighbours


def _audible(levels: np.ndarray) -> np.ndarray:
    """Tiles loud enough to carry the mark: not silence, within 40 dB of their frame's loudest band."""
    return (levels > _SILENT_DB) & (levels > levels.max(axis=1, keepdims=True) + _QUIET_DB)


class Watermarker:
    """Embeds and detects the watermark of one key (the default key: anyone can check myna's clips)."""

    def __init__(self, key: bytes = DEFAULT_KEY):
        stream = KeyStream(key, "pattern-v1")
        cells = PERIOD * BANDS
        self.chips = stream.signs(cells).reshape(PERIOD, BANDS)
        order = stream.permutation(cells)
        role = np.full(cells, -1)
        sync = int(round(SYNC_SHARE * cells))
        role[order[sync:]] = np.arange(cells - sync) % CODED_BITS
        self.role = role.reshape(PERIOD, BANDS)  # -1: sync tile, else the code bit it carries
        self._grids: dict[int, _Grid] = {}

    def grid(self, rate: int) -> _Grid:
        """The frame and band layout at `rate` (cached)."""
        if rate not in self._grids:
            self._grids[rate] = _Grid.at(rate)
        return self._grids[rate]

    def signs(self, payload: int) -> np.ndarray:
        """The sign of every tile of one period (PERIOD, BANDS) for a payload."""
        if isinstance(payload, bool) or not isinstance(payload, int | np.integer) or not 0 <= payload < 2**PAYLOAD_BITS:
            raise InputError(f"a watermark payload is a {PAYLOAD_BITS}-bit unsigned integer, got {payload!r}")
        code = encode_payload(int(payload))
        signs = self.chips.copy()
        carries = self.role >= 0
        signs[carries] *= 1 - 2 * code[self.role[carries]]
        return signs

    @cached_property
    def _sync_by_phase(self) -> tuple[np.ndarray, np.ndarray]:
        """Sync signs and sync mask for every phase: [phase, frame, band] = pattern row (frame + phase)."""
        sync = np.where(self.role < 0, self.chips, 0.0)
        rows = (np.arange(PERIOD)[:, None] + np.arange(PERIOD)[None, :]) % PERIOD
        return sync[rows], (sync != 0)[rows].astype(np.float64)

    # -- embedding ----------------------------------------------------------------------------

    def embed(self, audio: np.ndarray, rate: int, payload: int = 0) -> np.ndarray:
        """`audio` (mono float) with the watermark carrying `payload` (a 32-bit unsigned int)."""
        return self.stream(rate, payload).push(audio)

    def stream(self, rate: int, payload: int = 0) -> WatermarkStream:
        """A marker for one stream: push its chunks in order, each comes back marked, same length."""
        return WatermarkStream(self, rate, payload)

    def _mark(self, buffer: np.ndarray, first_frame: int, grid: _Grid, signs: np.ndarray) -> np.ndarray:
        """The additive mark for a buffer whose frames (every hop) are global frames first_frame, ..."""
        spectra = grid.frames(buffer)
        levels = grid.levels(spectra)
        carries = _audible(levels)
        if not carries.any():
            return np.zeros_like(buffer)
        tile_signs = signs[(first_frame + np.arange(len(spectra))) % PERIOD] * carries
        gain_db = _START_DB * tile_signs
        for _ in range(_ROUNDS):
            marked = grid.frames(grid.overlap_add(spectra * grid.gains(gain_db)))
            shortfall = np.maximum(_MARGIN_DB - _contrast(grid.levels(marked)) * tile_signs, 0.0)
            gain_db = np.clip(gain_db + _STEP * shortfall * tile_signs, -_MAX_CUT_DB, _MAX_DB)
        return grid.overlap_add(spectra * (grid.gains(gain_db) - 1.0))

    # -- detection ----------------------------------------------------------------------------

    def detect(self, audio: np.ndarray, rate: int) -> Detection:
        """Look for the watermark in mono float `audio` at `rate` (any excerpt of 3 s or more)."""
        audio = _check_audio(audio)
        _check_rate(rate)
        if rate != DETECT_RATE:
            from myna.audio.io import resample_soxr

            audio = resample_soxr(audio, rate, DETECT_RATE)
        grid = self.grid(DETECT_RATE)
        seg = int(_SEGMENT_SECONDS * DETECT_RATE)
        bounds = list(range(0, max(len(audio) - seg // 2, 0) + 1, seg))  # the last segment: 3-9 s
        results = []
        for i, start in enumerate(bounds):
            end = bounds[i + 1] if i + 1 < len(bounds) else len(audio)
            results.append(self._scan(audio[start:end], grid))
        best = max(results, key=lambda r: r[0])
        # chance that unmarked audio scores this high somewhere: the sub-Gaussian (Hoeffding) tail of a
        # sum with random signs, times the alignments tried (measured tails are heavier than normal)
        trials = len(results) * _OFFSETS * PERIOD
        chance = min(1.0, trials * math.exp(-0.5 * max(best[0], 0.0) ** 2))
        guess, checked = None, False
        if best[0] >= _DECODE_SCORE:
            guess, checked = decode_payload(np.sum([soft for z, soft in results if z >= _DECODE_SCORE], axis=0))
            if not checked and len(results) > 1:
                guess, checked = decode_payload(best[1])
            if checked:  # a CRC that checks is a 2 * 2**-16 chance on unmarked audio
                chance *= 2.0 / 2**16
        confidence = 1.0 - chance
        watermarked = confidence >= THRESHOLD_CONFIDENCE
        payload = guess if watermarked and checked else None
        score = float(best[0]) if np.isfinite(best[0]) else 0.0  # too short to scan: no evidence either way
        return Detection(watermarked, confidence, payload, score, guess)

    def _scan(self, audio: np.ndarray, grid: _Grid) -> tuple[float, np.ndarray]:
        """Best sync z-score of one segment over offsets and phases, and the soft code bits there."""
        signs, mask = self._sync_by_phase
        best = (-np.inf, np.zeros(CODED_BITS))
        for k in range(_OFFSETS):
            part = audio[k * grid.hop // _OFFSETS :]
            if len(part) < 4 * grid.hop:
                continue
            weighted = self._statistic(grid.levels(grid.frames(part)))
            count = len(weighted)
            folds = -(-count // PERIOD)
            padded = np.zeros((folds * PERIOD, BANDS))
            padded[:count] = weighted
            folded = padded.reshape(folds, PERIOD, BANDS).sum(0)
            energy = (padded**2).reshape(folds, PERIOD, BANDS).sum(0)
            z = np.einsum("jb,pjb->p", folded, signs) / np.sqrt(np.einsum("jb,pjb->p", energy, mask) + 1e-12)
            phase = int(np.argmax(z))
            if z[phase] > best[0]:
                rows = (np.arange(count) + phase) % PERIOD
                role, chips = self.role[rows], self.chips[rows]
                carries = role >= 0
                soft = np.bincount(role[carries], (weighted * chips)[carries], minlength=CODED_BITS)
                best = (float(z[phase]), soft)
        return best

    @staticmethod
    def _statistic(levels: np.ndarray) -> np.ndarray:
        """Each tile's contrast, clipped, weighted by an estimate of its signal-to-noise ratio."""
        contrast = np.clip(_contrast(levels), -_CLIP_DB, _CLIP_DB)
        power = 10 ** (levels / 10)
        floor = np.percentile(power, 10, axis=0, keepdims=True)  # the band's noise, where there is noise
        weight = np.clip(1 - 2 * floor / np.maximum(power, 1e-30), 0.0, 1.0) * _audible(levels)
        return contrast * weight


class WatermarkStream:
    """Marks one stream chunk by chunk (see `Watermarker.stream`); no delay, same length out as in."""

    def __init__(self, marker: Watermarker, rate: int, payload: int = 0):
        _check_rate(rate)
        self.marker = marker
        self.grid = marker.grid(rate)
        self.signs = marker.signs(payload)
        self.offset = 0  # samples of the stream seen so far
        self._carry = np.zeros(0)  # mark of earlier chunks that falls past their end

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """The next chunk (mono float32), marked; the mark's edges continue into the next chunk."""
        chunk = _check_audio(chunk)
        piece = _PIECE_FRAMES * self.grid.hop  # long audio in pieces: memory stays bounded
        if len(chunk) > piece:
            return np.concatenate([self._push(chunk[at : at + piece]) for at in range(0, len(chunk), piece)])
        return self._push(chunk)

    def _push(self, chunk: np.ndarray) -> np.ndarray:
        n, hop = len(chunk), self.grid.hop
        if n == 0:
            return chunk
        first = self.offset // hop  # global frame f spans samples [(f - 1) * hop, (f + 1) * hop)
        last = (self.offset + n - 1) // hop + 1
        start = (first - 1) * hop
        buffer = np.zeros((last - first + 2) * hop)
        at = self.offset - start
        buffer[at : at + n] = chunk
        mark = self.marker._mark(buffer, first, self.grid, self.signs)
        out = chunk.astype(np.float64) + mark[at : at + n]
        carried = min(n, len(self._carry))
        out[:carried] += self._carry[:carried]
        rest = mark[at + n :]
        leftover = self._carry[carried:]
        merged = np.zeros(max(len(rest), len(leftover)))
        merged[: len(rest)] += rest
        merged[: len(leftover)] += leftover
        self._carry = merged
        self.offset += n
        return np.clip(out, -1.0, 1.0).astype(np.float32)


def _check_rate(rate: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate < MIN_RATE:
        raise InputError(f"watermarking needs a sampling rate of at least {MIN_RATE} Hz, got {rate!r}")


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(f"watermarking takes mono audio (one dimension), got shape {audio.shape}")
    if audio.size and not np.isfinite(audio).all():
        raise InputError("the audio holds NaN or infinite samples")
    return audio.astype(np.float32, copy=False)
