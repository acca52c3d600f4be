"""Float audio -> file bytes: wav, pcm/raw (16-bit little-endian), flac, ogg (Vorbis), opus, mp3, aac.

Whole files go through `encode`. Streams go through `StreamEncoder`: a header (WAV only), then one
piece per chunk. Compressed formats encode each chunk as a complete stream; Ogg and MP3 and ADTS AAC
players read such concatenations as one stream. FLAC cannot be cut that way, so it is sent whole.
libsndfile does wav/flac/ogg/opus/mp3; AAC needs the ffmpeg binary.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess

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
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_SOUNDFILE = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III")}


def check_format(fmt: str) -> str:
    """Return `fmt` if myna can encode it, else raise with the list of formats."""
    if fmt not in FORMATS:
        raise InputError(f"unsupported audio format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "aac" and shutil.which("ffmpeg") is None:
        raise InputError("aac output needs the ffmpeg program, which is not installed here; choose another format")
    return fmt


def media_type(fmt: str) -> str:
    """The MIME type of a format."""
    return FORMATS[check_format(fmt)][0]


def wav_header(rate: int, data_bytes: int = 0) -> bytes:
    """A 44-byte header of a 16-bit mono WAV file holding `data_bytes` of samples (0: length unknown)."""
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16
    ) + b"data" + struct.pack("<I", data_bytes)


def pcm16(audio: np.ndarray) -> bytes:
    """Samples as 16-bit little-endian PCM bytes."""
    return to_int16(np.asarray(audio, dtype=np.float32)).astype("<i2").tobytes()


def encode(audio: np.ndarray, rate: int, fmt: str) -> bytes:
    """A complete file of `audio` (float32 mono) in format `fmt`."""
    check_format(fmt)
    if fmt == "wav":
        data = pcm16(audio)
        return wav_header(rate, len(data)) + data
    if fmt in ("pcm", "raw"):
        return pcm16(audio)
    if fmt == "aac":
        return _ffmpeg_aac(audio, rate)
    return _soundfile(audio, rate, fmt)


class StreamEncoder:
    """Encode a sequence of chunks into one playable stream: `header()`, `chunk(a)` each, `finish()`."""

    def __init__(self, fmt: str, rate: int, wav_length: int = 0):
        self.fmt = check_format(fmt)
        self.rate = rate
        self.wav_length = wav_length  # data size written in a streamed WAV header (0 as upstream)
        self._held: list[np.ndarray] = []

    @property
    def streams(self) -> bool:
        """Whether chunks leave as they come (False: everything is sent by `finish`)."""
        return FORMATS[self.fmt][1]

    def header(self) -> bytes:
        """Bytes that open the stream (a WAV header with an open length), before any audio."""
        return wav_header(self.rate, self.wav_length) if self.fmt == "wav" else b""

    def chunk(self, audio: np.ndarray) -> bytes:
        """Bytes of one chunk of audio."""
        if not self.streams:
            self._held.append(audio)
            return b""
        if self.fmt in ("wav", "pcm", "raw"):
            return pcm16(audio)
        return encode(audio, self.rate, self.fmt) if audio.size else b""

    def finish(self) -> bytes:
        """Bytes that close the stream (the whole file for formats that cannot stream)."""
        if self.streams:
            return b""
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.float32)
        self._held = []
        return encode(held, self.rate, self.fmt)


def _soundfile(audio: np.ndarray, rate: int, fmt: str) -> bytes:
    container, subtype = _SOUNDFILE[fmt]
    audio = np.asarray(audio, dtype=np.float32)
    if fmt == "opus" and rate not in _OPUS_RATES:
        audio, rate = resample_soxr(audio, rate, 48000), 48000
    if audio.size == 0:
        audio = np.zeros(1, np.float32)  # libsndfile cannot write an empty compressed stream
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=1, format=container, subtype=subtype) as out:
        out.write(np.clip(audio, -1.0, 1.0))
    return buffer.getvalue()


def _ffmpeg_aac(audio: np.ndarray, rate: int) -> bytes:
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
               "-i", "pipe:0", "-c:a", "aac", "-b:a", "128k", "-f", "adts", "pipe:1"]
    done = subprocess.run(command, input=pcm16(audio), capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to encode aac: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout
