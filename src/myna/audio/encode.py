"""Float audio -> file bytes: wav, pcm/raw (16-bit little-endian), flac, ogg (Vorbis), opus, mp3, aac.

Whole files go through `encode`. Streams go through `StreamEncoder`, one per response: a header (WAV
only), then one piece per chunk, then `finish()`. MP3, Opus (in Ogg) and AAC (ADTS) streams come
from one encoder fed chunk by chunk (PyAV, FFmpeg's libraries), so the pieces join into one
continuous file of the right length, exactly as a whole file would be. Ogg Vorbis (upstream
api_v2's `ogg`) is streamed as upstream streams it: each chunk a complete Ogg stream, chained.
FLAC cannot be streamed (its header holds the length), so it is sent whole. WAV/PCM can be
resampled on the way out (`out_rate`: OpenAI's pcm is 24 kHz) by one streaming resampler.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from myna.audio.io import resample_soxr, to_int16
from myna.errors import InputError

# format -> (MIME type, whether chunks can be sent as they come)
FORMATS = {
    "wav": ("audio/wav", True),
    "pcm": ("audio/pcm", True),
    "raw": ("audio/raw", True),
    "flac": ("audio/flac", False),
    "ogg": ("audio/ogg", True),
    "opus": ("audio/ogg", True),
    "mp3": ("audio/mpeg", True),
    "aac": ("audio/aac", True),
}
_RAW = ("wav", "pcm", "raw")
_SOUNDFILE = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
# format -> (container, codec, fixed codec rate or None, bits per second, muxer options)
_AV = {
    "mp3": ("mp3", "libmp3lame", None, 128_000, {"id3v2_version": "0", "write_xing": "0"}),
    "opus": ("ogg", "libopus", 48000, 64_000, {"page_duration": "20000"}),  # a page per 20 ms: no held-back audio
    "aac": ("adts", "aac", None, 128_000, {}),
}


def check_format(fmt: str) -> str:
    """Return `fmt` if myna can encode it, else raise with the list of formats."""
    if fmt not in FORMATS:
        raise InputError(f"unsupported audio format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def media_type(fmt: str) -> str:
    """The MIME type of a format."""
    return FORMATS[check_format(fmt)][0]


def streamable(fmt: str) -> bool:
    """Whether a format's chunks can leave as they are made (FLAC: no, it is sent whole)."""
    return FORMATS[check_format(fmt)][1]


def wav_header(rate: int, data_bytes: int = 0) -> bytes:
    """A 44-byte header of a 16-bit mono WAV file holding `data_bytes` of samples (0: length unknown)."""
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16
    ) + b"data" + struct.pack("<I", data_bytes)


def pcm16(audio: np.ndarray) -> bytes:
    """Samples as 16-bit little-endian PCM bytes."""
    return to_int16(np.asarray(audio, dtype=np.float32)).astype("<i2").tobytes()


def encode(audio: np.ndarray, rate: int, fmt: str, out_rate: int | None = None) -> bytes:
    """A complete file of `audio` (float32 mono at `rate`) in format `fmt`; wav/pcm/raw at `out_rate` if given."""
    check_format(fmt)
    if fmt in _RAW:
        if out_rate and out_rate != rate:
            audio, rate = resample_soxr(np.asarray(audio, np.float32), rate, out_rate), out_rate
        data = pcm16(audio)
        return wav_header(rate, len(data)) + data if fmt == "wav" else data
    if fmt in _AV:
        encoder = _AvEncoder(fmt, rate)
        return encoder.encode(audio) + encoder.finish()
    return _soundfile(audio, rate, fmt)


class StreamEncoder:
    """Encode a sequence of chunks into one playable stream: `header()`, `chunk(a)` each, `finish()`."""

    def __init__(self, fmt: str, rate: int, wav_length: int = 0, out_rate: int | None = None):
        self.fmt = check_format(fmt)
        self.rate = out_rate if out_rate and fmt in _RAW else rate  # the rate of the bytes sent
        self.wav_length = wav_length  # data size written in a streamed WAV header (0 as upstream)
        self._held: list[np.ndarray] = []
        self._resampler = None
        if self.rate != rate:
            import soxr

            self._resampler = soxr.ResampleStream(rate, self.rate, 1, dtype="float32", quality="HQ")
        self._av = _AvEncoder(fmt, rate) if fmt in _AV else None

    @property
    def streams(self) -> bool:
        """Whether chunks leave as they come (False: everything is sent by `finish`)."""
        return FORMATS[self.fmt][1]

    def header(self) -> bytes:
        """Bytes that open the stream (a WAV header with an open length), before any audio."""
        return wav_header(self.rate, self.wav_length) if self.fmt == "wav" else b""

    def chunk(self, audio: np.ndarray) -> bytes:
        """Bytes of one chunk of audio."""
        audio = np.asarray(audio, dtype=np.float32)
        if not self.streams:
            self._held.append(audio)
            return b""
        if self.fmt in _RAW:
            return pcm16(self._resampler.resample_chunk(audio) if self._resampler is not None else audio)
        if self._av is not None:
            return self._av.encode(audio)
        return _soundfile(audio, self.rate, self.fmt) if audio.size else b""  # ogg: one chained stream per chunk

    def finish(self) -> bytes:
        """Bytes that close the stream (the whole file for formats that cannot stream)."""
        if self._av is not None:
            return self._av.finish()
        if self._resampler is not None:
            return pcm16(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        if self.streams:
            return b""
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.float32)
        self._held = []
        return encode(held, self.rate, self.fmt)


class _Sink:
    """A write-only file for the muxer: collects what it writes until taken (not seekable, like a socket)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class _AvEncoder:
    """One codec and muxer for a whole response: chunks of float audio in, the continuing file's bytes out."""

    def __init__(self, fmt: str, rate: int):
        import av

        container, codec, codec_rate, bit_rate, options = _AV[fmt]
        self._av, self._rate = av, rate
        self._sink = _Sink()
        self._out = av.open(self._sink, "w", format=container, options=dict(options))
        self._stream = self._out.add_stream(codec, rate=codec_rate or rate, layout="mono")
        self._stream.bit_rate = bit_rate
        self._resampler = av.AudioResampler(format=self._stream.codec_context.format.name, layout="mono",
                                            rate=codec_rate or rate)  # fmt: skip

    def encode(self, audio: np.ndarray) -> bytes:
        """The bytes the muxer has written after this chunk (may be empty while the codec fills a frame)."""
        if audio.size:
            samples = np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)[None]
            frame = self._av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = self._rate
            self._mux(self._resampler.resample(frame))
        return self._sink.take()

    def finish(self) -> bytes:
        """Flush the resampler, codec and muxer: the file's last bytes."""
        self._mux(self._resampler.resample(None))
        self._mux([None])
        self._out.close()
        return self._sink.take()

    def _mux(self, frames) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._out.mux(packet)


def _soundfile(audio: np.ndarray, rate: int, fmt: str) -> bytes:
    container, subtype = _SOUNDFILE[fmt]
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        audio = np.zeros(1, np.float32)  # libsndfile cannot write an empty compressed stream
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=1, format=container, subtype=subtype) as out:
        out.write(np.clip(audio, -1.0, 1.0))
    return buffer.getvalue()
