"""Pseudo-speakers: a base voice with its pitch, formants (vocal-tract length) and tempo shifted.

The shift is done by Rubber Band (the `rubberband` program, run as a subprocess): the audio is first
resampled so that every frequency, formants included, scales by `formant_ratio` (a shorter or longer
vocal tract), then Rubber Band moves the pitch to `pitch_semitones` from the original with formant
preservation on (so the formant scaling stays) and stretches the duration to the wanted tempo.
Parameters are drawn from a seeded generator: the same seed gives the same pseudo-speakers.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from myna.audio.io import resample_soxr
from myna.errors import InputError
from myna.train.synth.voices import BaseVoice, VoiceUnavailable

RUBBERBAND_PACKAGE = "rubberband-cli"
SHIFTER = "rubberband --fine --formant (R3 engine), after a resampling by the formant ratio"
_TIMEOUT_S = 300


@dataclass(frozen=True)
class Speaker:
    """A corpus speaker: a base voice, unchanged or shifted (semitones, formant ratio, tempo factor)."""

    name: str
    base: BaseVoice
    pitch_semitones: float = 0.0
    formant_ratio: float = 1.0
    tempo: float = 1.0

    @property
    def augmented(self) -> bool:
        """Whether any shift applies."""
        return (self.pitch_semitones, self.formant_ratio, self.tempo) != (0.0, 1.0, 1.0)

    def record(self) -> dict[str, object]:
        """JSON-ready description (base voice, family, shifts)."""
        return {"name": self.name, "base": self.base.name, "family": self.base.family,
                "engine": self.base.engine, "pitch_semitones": self.pitch_semitones,
                "formant_ratio": self.formant_ratio, "tempo": self.tempo,
                "packages": list(self.base.packages), "voice": self.base.voice,
                "shifter": SHIFTER if self.augmented else None}


def plan_speakers(bases: list[BaseVoice], pseudo: int, seed: int) -> list[Speaker]:
    """Every base voice as is, then `pseudo` shifted speakers spread round-robin over the bases."""
    rng = random.Random(f"myna-synth-speakers-{seed}")
    speakers = [Speaker(base.name, base) for base in bases]
    for index in range(pseudo):
        base = bases[index % len(bases)]
        while True:
            pitch = round(rng.uniform(-5.0, 5.0), 2)
            # formants follow pitch a little (a lower voice tends to have a longer vocal tract), plus spread
            formant = round(2 ** ((0.3 * pitch + rng.uniform(-1.6, 1.6)) / 12), 3)
            tempo = round(rng.uniform(0.85, 1.18), 3)
            if abs(pitch) >= 1.0 or abs(math.log2(formant)) >= 0.05:
                break
        speakers.append(Speaker(f"{base.name}-p{index:02d}", base, pitch, formant, tempo))
    return speakers


def check_rubberband() -> None:
    """Raise VoiceUnavailable naming the Debian package when `rubberband` is missing."""
    if shutil.which("rubberband") is None:
        raise VoiceUnavailable(f"`rubberband` is not installed (needed for pseudo-speakers); "
                               f"run `apt-get install {RUBBERBAND_PACKAGE}` or pass --pseudo-speakers 0")


def shift(audio: np.ndarray, rate: int, speaker: Speaker) -> np.ndarray:
    """`audio` at `rate` as `speaker` would say it: same rate, shifted pitch/formants, changed tempo."""
    if not speaker.augmented:
        return audio
    # Played back at `rate`, audio resampled to rate/ratio has every frequency times ratio, duration / ratio.
    scaled = resample_soxr(audio, rate, round(rate / speaker.formant_ratio)) if speaker.formant_ratio != 1 else audio
    pitch = speaker.pitch_semitones - 12 * math.log2(speaker.formant_ratio)
    time_ratio = speaker.formant_ratio / speaker.tempo
    with tempfile.TemporaryDirectory(prefix="myna-shift-") as tmp:
        source, target = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(source, scaled, rate, subtype="FLOAT")
        # --fine (the R3 engine) is needed: R2's --formant left the formants moving with the pitch here
        command = ["rubberband", "-q", "--fine", "--formant", "--pitch", f"{pitch:.4f}",
                   "--time", f"{time_ratio:.5f}", str(source), str(target)]
        try:
            done = subprocess.run(command, capture_output=True, timeout=_TIMEOUT_S, check=False)
        except FileNotFoundError as exc:
            raise VoiceUnavailable(f"`rubberband` is not installed; run `apt-get install {RUBBERBAND_PACKAGE}`") \
                from exc
        if done.returncode != 0 or not target.is_file():
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise InputError(f"speaker {speaker.name}: rubberband failed ({reason[0]})")
        shifted, _ = sf.read(target, dtype="float32", always_2d=True)
    return np.ascontiguousarray(shifted.mean(axis=1))
