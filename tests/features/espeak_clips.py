"""Short speech clips rendered with espeak-ng for the encoder tests (skipped where it is missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "She sells sea shells by the sea shore every summer morning.",
    "A journey of a thousand miles begins with a single step forward.",
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def espeak_clip(folder: Path, voice: str, text: str) -> tuple[np.ndarray, int]:
    """Render `text` with espeak-ng voice `voice`; returns (float32 mono audio, rate)."""
    path = folder / f"{voice.replace('+', '_')}_{abs(hash(text)) % 10**8}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    audio, rate = soundfile.read(str(path), dtype="float32")
    return audio, rate
