"""Local, freely licensed text-to-speech voices that render the synthetic corpus: flite, festival, espeak-ng.

Each engine runs as a subprocess (no linking), so the GPL of espeak-ng's program does not reach myna;
the licence of each voice's data is recorded by `licences.py`. Audio comes back as mono float32.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from myna.errors import InputError

_TIMEOUT_S = 300
_FESTIVAL_VOICE_DIRS = (Path("/usr/share/festival/voices"),)


class VoiceUnavailable(InputError):
    """A voice's engine or data is not installed; the message names the Debian package to install."""


@dataclass(frozen=True)
class BaseVoice:
    """One installed voice: `name` is its corpus id, `family` the recorded speaker behind it."""

    name: str
    engine: str     # flite | festival | espeak-ng
    voice: str      # the engine's own voice id
    family: str     # voices built from the same person's recordings share a family
    packages: tuple[str, ...]  # Debian packages providing the program and the voice data

    def command(self, text_file: Path, wav: Path) -> list[str]:
        """The command line that renders `text_file` to `wav`."""
        if self.engine == "flite":
            return ["flite", "-voice", self.voice, "-f", str(text_file), "-o", str(wav)]
        if self.engine == "festival":
            return ["text2wave", "-eval", f"(voice_{self.voice})", "-o", str(wav), str(text_file)]
        return ["espeak-ng", "-v", self.voice, "-f", str(text_file), "-w", str(wav)]

    def check(self) -> None:
        """Raise VoiceUnavailable naming the Debian package when the program or the voice is missing."""
        program = {"flite": "flite", "festival": "text2wave", "espeak-ng": "espeak-ng"}[self.engine]
        if shutil.which(program) is None:
            raise VoiceUnavailable(f"voice {self.name}: `{program}` is not installed; "
                                   f"run `apt-get install {' '.join(self.packages)}`")
        if not _voice_installed(self.engine, self.voice):
            raise VoiceUnavailable(f"voice {self.name}: the {self.engine} voice {self.voice!r} is not installed; "
                                   f"run `apt-get install {' '.join(self.packages)}`")

    def render(self, text: str) -> tuple[np.ndarray, int]:
        """Speak `text`; returns (mono float32 samples, sample rate). MynaError if the engine fails."""
        with tempfile.TemporaryDirectory(prefix="myna-synth-") as tmp:
            text_file, wav = Path(tmp) / "text.txt", Path(tmp) / "out.wav"
            text_file.write_text(text + "\n", encoding="utf-8")
            try:
                done = subprocess.run(self.command(text_file, wav), capture_output=True, timeout=_TIMEOUT_S,
                                      check=False, stdin=subprocess.DEVNULL)
            except FileNotFoundError as exc:
                raise VoiceUnavailable(f"voice {self.name}: {exc.filename} is not installed; "
                                       f"run `apt-get install {' '.join(self.packages)}`") from exc
            except subprocess.TimeoutExpired as exc:
                raise InputError(f"voice {self.name}: no audio within {_TIMEOUT_S} s for {text[:60]!r}") from exc
            if done.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
                reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no audio written"]
                raise InputError(f"voice {self.name}: {self.engine} failed ({reason[0]}) for {text[:60]!r}")
            audio, rate = sf.read(wav, dtype="float32", always_2d=True)
        return np.ascontiguousarray(audio.mean(axis=1)), int(rate)


def _voice_installed(engine: str, voice: str) -> bool:
    if engine == "flite":
        return voice in _flite_voices()
    if engine == "festival":
        return any(any(root.glob(f"*/{voice}")) for root in _FESTIVAL_VOICE_DIRS if root.is_dir())
    return _espeak_ok(voice)


@cache
def _flite_voices() -> frozenset[str]:
    done = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30, check=False)
    return frozenset(done.stdout.replace("Voices available:", "").split())


@cache
def _espeak_ok(voice: str) -> bool:
    language, _, variant = voice.partition("+")
    done = subprocess.run(["espeak-ng", "-v", language, "-q", "a"], capture_output=True, text=True, timeout=30,
                          check=False)
    if done.returncode != 0 or done.stderr.strip():
        return False
    return not variant or variant in _espeak_variants()


@cache
def _espeak_variants() -> frozenset[str]:
    done = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, timeout=30, check=False)
    return frozenset(line.split()[-1].removeprefix("!v/") for line in done.stdout.splitlines()[1:] if line.split())


_FLITE = ("flite", "libflite1")
_ESPEAK = ("espeak-ng", "espeak-ng-data")

BASE_VOICES: dict[str, BaseVoice] = {v.name: v for v in (
    BaseVoice("flite-awb", "flite", "awb", "awb", _FLITE),
    BaseVoice("flite-rms", "flite", "rms", "rms", _FLITE),
    BaseVoice("flite-slt", "flite", "slt", "slt", _FLITE),
    BaseVoice("flite-kal16", "flite", "kal16", "kal", _FLITE),
    BaseVoice("flite-kal", "flite", "kal", "kal", _FLITE),  # 8 kHz source
    BaseVoice("festival-slt-hts", "festival", "cmu_us_slt_arctic_hts", "slt", ("festival", "festvox-us-slt-hts")),
    BaseVoice("festival-kal", "festival", "kal_diphone", "kal", ("festival", "festvox-kallpc16k")),
    BaseVoice("festival-ked", "festival", "ked_diphone", "ked", ("festival", "festvox-kdlpc16k")),
    BaseVoice("espeak-us-m3", "espeak-ng", "en-us+m3", "espeak", _ESPEAK),
    BaseVoice("espeak-us-f2", "espeak-ng", "en-us+f2", "espeak", _ESPEAK),
    BaseVoice("espeak-gb-m1", "espeak-ng", "en-gb+m1", "espeak", _ESPEAK),
    BaseVoice("espeak-gb-f4", "espeak-ng", "en-gb-x-rp+f4", "espeak", _ESPEAK),
    BaseVoice("espeak-scot-m7", "espeak-ng", "en-gb-scotland+m7", "espeak", _ESPEAK),
)}

DEFAULT_VOICES = tuple(BASE_VOICES)


def base_voices(names: list[str] | tuple[str, ...]) -> list[BaseVoice]:
    """The named voices (InputError listing the known ones for an unknown name), each checked installed."""
    unknown = [n for n in names if n not in BASE_VOICES]
    if unknown:
        raise InputError(f"unknown voice(s) {', '.join(unknown)}; known: {', '.join(BASE_VOICES)}")
    voices = [BASE_VOICES[n] for n in dict.fromkeys(names)]
    for voice in voices:
        voice.check()
    return voices
