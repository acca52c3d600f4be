"""Choosing a trained voice's default reference clip by measured quality, not by length alone.

Each candidate utterance (3-10 s, else any) is scored from what can be measured offline:
- signal-to-noise ratio: the loud level (95th percentile of 10 ms frame levels) over the noise floor
  (10th percentile), capped at 40 dB;
- speech ratio: the share of frames well above the noise floor (a clip that is half pause prompts worse);
- transcript confidence: the mean Whisper word probability recorded by `myna data prepare` (0.7 when
  unknown, e.g. for a `.list` input);
- loudness: clips quieter than -35 LUFS or with clipped samples lose points;
- length: closeness to 6 s, as a small tie-breaker.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from myna.errors import InputError, MynaError
from myna.train.dataset import WAV_RATE, FeatureCache
from myna.train.slicing import frame_levels

UNKNOWN_CONFIDENCE = 0.7
REFS_DIR = "refs"
REFS_FILE = "refs.json"


@dataclass(frozen=True)
class RefChoice:
    """A candidate reference clip and its measurements."""

    audio: str
    text: str
    lang: str
    seconds: float
    score: float
    snr_db: float
    speech_ratio: float
    confidence: float | None
    loudness_lufs: float | None
    clipped: float

    def describe(self) -> str:
        """One line for the console."""
        conf = "unknown" if self.confidence is None else f"{self.confidence:.2f}"
        return (f"{Path(self.audio).name} ({self.seconds:.1f} s, SNR {self.snr_db:.0f} dB, speech "
                f"{self.speech_ratio:.0%}, transcript confidence {conf}, score {self.score:.2f})")


def measure(audio: np.ndarray, rate: int) -> tuple[float, float, float | None, float]:
    """(SNR dB, speech ratio, loudness LUFS or None, clipped-sample share) of a clip."""
    levels = frame_levels(audio, rate)
    loud, floor = float(np.percentile(levels, 95)), float(np.percentile(levels, 10))
    snr = min(max(loud - floor, 0.0), 40.0)
    speech_ratio = float(np.mean(levels > floor + 0.5 * (loud - floor))) if loud > floor else 0.0
    try:
        from myna.train.conditioning import integrated_loudness

        loudness = float(integrated_loudness(audio, rate))
        loudness = loudness if math.isfinite(loudness) else None
    except (MynaError, ValueError):  # pyloudnorm missing or a clip it cannot gate: loudness is only a hint
        loudness = None
    clipped = float(np.mean(np.abs(audio) >= 0.999))
    return snr, speech_ratio, loudness, clipped


def score(seconds: float, snr: float, speech_ratio: float, confidence: float | None, loudness: float | None,
          clipped: float) -> float:
    """Combined quality in [0, 1] (see the module doc)."""
    conf = UNKNOWN_CONFIDENCE if confidence is None else confidence
    ratio = min(speech_ratio / 0.6, 1.0)
    length = max(0.0, 1.0 - abs(seconds - 6.0) / 4.0)
    value = 0.4 * snr / 40.0 + 0.2 * ratio + 0.3 * conf + 0.1 * length
    if loudness is not None and loudness < -35.0:
        value -= 0.1
    return round(max(value - min(clipped * 100, 0.3), 0.0), 4)


def load_confidences(list_path: Path | None) -> dict[str, float]:
    """Clip file name -> mean word probability, from the transcripts.json beside a prepared .list."""
    if list_path is None:
        return {}
    path = list_path.parent / "transcripts.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {name: float(item["confidence"]) for name, item in data.items()
            if isinstance(item, dict) and item.get("confidence") is not None}


def rank_references(cache: FeatureCache, confidences: dict[str, float] | None = None) -> list[RefChoice]:
    """Candidate reference clips of a feature cache, best first."""
    confidences = confidences or {}
    usable = [u for u in cache.items if 3.0 <= u.record["seconds"] <= 10.0] or list(cache.items)
    ranked = []
    for utt in usable:
        snr, ratio, loudness, clipped = measure(utt.wav(), WAV_RATE)
        conf = confidences.get(Path(utt.record["audio"]).name)
        seconds = float(utt.record["seconds"])
        ranked.append(RefChoice(utt.record["audio"], utt.record["text"], utt.record["lang"], seconds,
                                score(seconds, snr, ratio, conf, loudness, clipped), round(snr, 1), round(ratio, 3),
                                conf, None if loudness is None else round(loudness, 1), clipped))
    return sorted(ranked, key=lambda c: (-c.score, abs(c.seconds - 6.0)))


def pick(ranked: list[RefChoice], wanted: str | None) -> RefChoice:
    """The best clip, or the one `wanted` names (a path or file name among the dataset's clips)."""
    if not ranked:
        raise InputError("no utterances to take a reference clip from")
    if wanted is None:
        return ranked[0]
    for choice in ranked:
        if wanted in (choice.audio, Path(choice.audio).name, Path(choice.audio).stem) or \
                Path(wanted).resolve() == Path(choice.audio).resolve():
            return choice
    names = ", ".join(Path(c.audio).name for c in ranked[:8])
    raise InputError(f"--ref-clip {wanted}: not one of the training clips of 3-10 s (e.g. {names}); after "
                     "training, `myna say --ref CLIP --ref-text ...` speaks with any other clip")


def keep_references(home: Path, chosen: RefChoice, ranked: list[RefChoice], alternatives: int = 2) -> list[Path]:
    """Copy the chosen clip and up to `alternatives` next-best ones into HOME/refs/ (with refs.json listing
    their measurements); returns the copies, the chosen one first."""
    folder = home / REFS_DIR
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    kept = [chosen] + [c for c in ranked if c.audio != chosen.audio][:alternatives]
    copies, listing = [], []
    for choice in kept:
        target = folder / Path(choice.audio).name
        shutil.copyfile(choice.audio, target)
        copies.append(target)
        record: dict[str, Any] = asdict(choice)
        record["audio"] = target.name
        record["source"] = choice.audio
        listing.append(record)
    from myna.atomic import atomic_write

    atomic_write(folder / REFS_FILE, json.dumps({"chosen": copies[0].name, "clips": listing}, indent=1,
                                                ensure_ascii=False) + "\n")
    return copies
