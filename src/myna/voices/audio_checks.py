"""Checks on an uploaded reference clip, and the one form a registered clip is stored in.

A clip is stored as float32 mono WAV at its own sampling rate. Float keeps the decoded samples
exactly (no second quantization, no clipping of peaks above 1), and the channel mix is the
engine's own `to_mono`, so a voice synthesized from the stored clip sounds the same as one made
from the uploaded file. The uploaded bytes themselves are not kept: less personal data at rest.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np

from myna.audio.io import AudioError, to_mono
from myna.errors import InputError
from myna.text.mixed import MODES

_SILENT_PEAK_DB = -60.0  # a clip whose loudest sample is below this is silence


@dataclass(frozen=True)
class ClipLimits:
    """What the registry accepts; the defaults suit the engine (it uses 3-10 s of a clip)."""

    min_seconds: float = 3.0
    max_seconds: float = 60.0
    max_channels: int = 8
    max_rate: int = 192_000
    max_upload_bytes: int = 128 * 2**20
    max_transcript_chars: int = 1000
    max_name_chars: int = 100


@dataclass(frozen=True)
class CheckedClip:
    """A decoded clip that passed every check: mono float32 samples, their rate and length."""

    samples: np.ndarray
    rate: int
    seconds: float


def check_clip(audio: bytes, filename: str, limits: ClipLimits) -> CheckedClip:
    """Decode an upload and check it is usable speech-length audio, or raise an `AudioError` saying why."""
    import soundfile

    label = filename or "the uploaded clip"
    audio = with_data_length(audio)
    if not audio:
        raise AudioError(f"{label}: the file is empty; upload 3-60 s of speech as WAV, FLAC, OGG or MP3")
    if len(audio) > limits.max_upload_bytes:
        raise AudioError(
            f"{label}: the file is {len(audio) / 2**20:.1f} MiB; the limit is "
            f"{limits.max_upload_bytes / 2**20:.0f} MiB (upload a shorter or compressed clip)"
        )
    try:
        info = soundfile.info(io.BytesIO(audio))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{label}: not a readable audio file; use WAV, FLAC, OGG or MP3 ({_reason(exc)})") from exc
    if info.channels > limits.max_channels:
        raise AudioError(
            f"{label}: the clip has {info.channels} channels; at most {limits.max_channels} are accepted "
            "(mix it down to mono)"
        )
    if info.samplerate > limits.max_rate or info.samplerate <= 0:
        raise AudioError(
            f"{label}: the sampling rate is {info.samplerate} Hz; at most {limits.max_rate} Hz is accepted "
            "(resample it to 48 kHz or lower)"
        )
    if info.frames > 0 and info.frames / info.samplerate > limits.max_seconds + 1.0:
        raise _too_long(label, info.frames / info.samplerate, limits)
    try:
        data, rate = soundfile.read(io.BytesIO(audio), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{label}: the audio could not be decoded ({_reason(exc)}); re-export it as WAV") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{label}: the file holds no audio samples; upload 3-60 s of speech")
    if not np.isfinite(data).all():
        raise AudioError(f"{label}: the audio holds NaN or infinite samples; re-export it from the recording")
    mono = np.ascontiguousarray(to_mono(np.ascontiguousarray(data.T)), dtype=np.float32)
    seconds = mono.shape[0] / rate
    if seconds < limits.min_seconds:
        raise AudioError(
            f"{label}: the clip is {seconds:.2f} s long; it needs at least {limits.min_seconds:g} s of speech"
        )
    if seconds > limits.max_seconds:
        raise _too_long(label, seconds, limits)
    peak = float(np.max(np.abs(mono)))
    if peak == 0.0 or 20.0 * math.log10(peak) < _SILENT_PEAK_DB:
        raise AudioError(
            f"{label}: the clip is silent (peak below {_SILENT_PEAK_DB:g} dBFS); record clear speech"
        )
    return CheckedClip(mono, int(rate), seconds)


def _reason(exc: Exception) -> str:
    """libsndfile's own words for a failure, without the Python repr of the buffer it read from."""
    return getattr(exc, "error_string", None) or str(exc).split(": ", 1)[-1]


def with_data_length(audio: bytes) -> bytes:
    """A streamed WAV (myna's and upstream's say 0, or 0xFFFFFFFF, for the data length) with its real length.

    A stream's header is written before its length is known; the samples simply run to the end of
    the file. libsndfile reads a length of 0 as no samples, so the header is completed here: the data
    chunk takes every byte after its header (whole sample frames), and the RIFF size follows.
    """
    if len(audio) < 44 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return audio
    offset, align = 12, 1
    while offset + 8 <= len(audio):
        chunk, size = audio[offset:offset + 4], struct.unpack_from("<I", audio, offset + 4)[0]
        if chunk == b"fmt " and offset + 22 <= len(audio):
            align = max(1, struct.unpack_from("<H", audio, offset + 20)[0])  # bytes per sample frame
        if chunk == b"data":
            available = len(audio) - offset - 8
            if size != 0 and size <= available:
                return audio  # a complete file
            length = available - available % align
            patched = bytearray(audio[:offset + 8 + length])
            struct.pack_into("<I", patched, offset + 4, length)
            struct.pack_into("<I", patched, 4, len(patched) - 8)
            return bytes(patched)
        offset += 8 + size + (size & 1)
    return audio


def _too_long(label: str, seconds: float, limits: ClipLimits) -> AudioError:
    """The error for a clip above the length limit."""
    return AudioError(
        f"{label}: the clip is {seconds:.1f} s long; at most {limits.max_seconds:g} s is accepted "
        "(the engine uses the best 10 s; 3-10 s of clean speech works best)"
    )


def clip_wav_bytes(clip: CheckedClip) -> bytes:
    """The stored form of a clip: float32 mono WAV at the clip's own rate."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, clip.samples, clip.rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def check_language(language: str) -> str:
    """Return the language code if the engine accepts it, else raise with the accepted codes."""
    if language not in MODES:
        raise InputError(f"unsupported language {language!r}; expected one of {', '.join(MODES)}")
    return language


def check_transcript(transcript: str | None, limits: ClipLimits) -> str | None:
    """The clip's transcript, stripped; None or empty means reference-free use of the clip."""
    if transcript is None:
        return None
    transcript = transcript.strip()
    if "\x00" in transcript:
        raise InputError("the transcript contains a NUL character; give plain text")
    if len(transcript) > limits.max_transcript_chars:
        raise InputError(
            f"the transcript is {len(transcript)} characters; at most {limits.max_transcript_chars} are allowed "
            "(it should be what is said in the 3-10 s clip)"
        )
    return transcript or None
