"""Real speech for consent tests: flite reads a text; Whisper tiny.en judges what it hears.

Consent challenges are random sentences, and Whisper tiny.en mishears flite's voices on a few of them
(e.g. "cloned" as "gloined"). A test about a later check (speaker, protected voices, the CLI's
verdict) is judged on a challenge that was heard: `until_heard` draws a new challenge after a
`wrong_sentence` refusal, a few times at most, so a real regression still fails.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
HEARING_TRIES = 4


def flite(voice: str, text: str) -> bytes:
    """WAV bytes of flite's `voice` reading `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], capture_output=True, check=True,
                       timeout=60)
        return out.read_bytes()


def until_heard(attempt: Callable[[], T], misheard: Callable[[T], bool]) -> T:
    """Run `attempt` (a fresh challenge each time) until `misheard` says no, at most HEARING_TRIES times."""
    for _ in range(HEARING_TRIES - 1):
        outcome = attempt()
        if not misheard(outcome):
            return outcome
    return attempt()
