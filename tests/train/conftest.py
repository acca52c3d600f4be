"""Synthetic speech for the dataset tests: English sentences spoken by espeak-ng (apt package)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from myna.audio.decode import decode

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A journey of a thousand miles begins with a single step.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The rainbow is a division of white light into many beautiful colors.",
    "Every morning the baker opens the shop at seven o'clock.",
)
RATE = 32000


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict:
    """{"clips": [wav paths], "texts": [sentences], "audio": [mono float32 at 32 kHz]} spoken by espeak-ng."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed: run scripts/setup.sh (it installs the apt packages)")
    root = tmp_path_factory.mktemp("speech")
    clips = []
    for number, sentence in enumerate(SENTENCES):
        path = root / f"sentence{number}.wav"
        subprocess.run([espeak, "-s", "150", "-w", str(path), sentence], check=True, capture_output=True)
        clips.append(path)
    return {"clips": clips, "texts": list(SENTENCES), "audio": [decode(path, RATE) for path in clips]}


@pytest.fixture(scope="session")
def with_pauses():
    """A function: clips (32 kHz arrays) -> one recording of about `seconds` with pauses between them."""
    return _with_pauses


def _with_pauses(clips: list[np.ndarray], seconds: float, seed: int = 0) -> np.ndarray:
    """Clips one after another (cycling) with 0.5-1.0 s pauses of faint noise, until `seconds` long."""
    rng = np.random.default_rng(seed)
    parts, total, number = [], 0, 0
    while total < seconds * RATE:
        clip = clips[number % len(clips)]
        pause = (1e-4 * rng.standard_normal(int(RATE * rng.uniform(0.5, 1.0)))).astype(np.float32)
        parts += [clip, pause]
        total += clip.shape[0] + pause.shape[0]
        number += 1
    return np.concatenate(parts)
