"""Decoding any audio file to mono float32 at one rate.

soundfile (libsndfile) reads WAV, FLAC, OGG and MP3; anything it cannot read (m4a/AAC, opus in
other containers, ...) is decoded by an `ffmpeg` subprocess when ffmpeg is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from myna.audio.io import AudioError, read_audio, resample_soxr, to_mono

_FFMPEG_TIMEOUT_S = 600


def decode(path: str | Path, rate: int) -> np.ndarray:
    """Mono float32 audio of any readable file at `rate` Hz; raises AudioError saying why not."""
    path = Path(path)
    try:
        channels, source_rate = read_audio(path)
    except AudioError as soundfile_error:
        if not path.is_file():
            raise
        mono = _ffmpeg_decode(path, rate, soundfile_error)
    else:
        mono = resample_soxr(np.ascontiguousarray(to_mono(channels)), source_rate, rate)
    if mono.size == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: the audio holds NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _ffmpeg_decode(path: Path, rate: int, cause: AudioError) -> np.ndarray:
    """Decode with ffmpeg to raw mono float32 at `rate`; AudioError with ffmpeg's reason on failure."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(f"{cause}; for other formats (e.g. m4a) install ffmpeg") from cause
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate),
               "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"{path}: ffmpeg did not finish decoding within {_FFMPEG_TIMEOUT_S} s") from exc
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else "no audio stream"
        raise AudioError(f"{path}: not a readable audio file (ffmpeg: {detail})")
    usable = len(done.stdout) // 4 * 4
    return np.frombuffer(done.stdout[:usable], dtype="<f4").astype(np.float32)
