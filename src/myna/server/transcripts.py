"""A fine-tune job's transcript list (upstream's `path|speaker|LANG|text` format), read and corrected in place.

Beside the list, `myna data prepare` writes `transcripts.json`: per clip file name, Whisper's mean word
probability and each word's (`{"confidence": 0.81, "words": [["Hello", 0.93], ...]}`). The API shows
them so a reviewer starts with the transcripts Whisper doubted; a corrected transcript loses them
(`"text"` records the correction, as `myna data review` does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from myna.atomic import atomic_write
from myna.errors import InputError
from myna.features.asr import LOW_CONFIDENCE

MAX_TEXT_CHARS = 1000
WORDS_FILE = "transcripts.json"
_PUNCTUATION = ".,!?;:\"'()[]…，。！？；：、「」『』"  # Whisper's words carry their punctuation; shown without


@dataclass(frozen=True)
class Utterance:
    """One line of the list: the clip, who speaks, its language code and what it says."""

    index: int
    path: Path
    speaker: str
    language: str
    text: str

    def to_dict(self) -> dict:
        """The API view (the clip by its file name only: server paths stay private)."""
        return {"index": self.index, "file": self.path.name, "language": self.language, "text": self.text}


def read_list(list_path: Path) -> list[Utterance]:
    """The utterances of a transcript list (lines that are not `path|speaker|LANG|text` are skipped)."""
    items = []
    for line in list_path.read_text(encoding="utf-8").splitlines():
        parts = line.split("|", 3)
        if len(parts) == 4:
            items.append(Utterance(len(items), Path(parts[0]), parts[1], parts[2], parts[3]))
    return items


def correct(list_path: Path, changes: dict[int, str]) -> list[Utterance]:
    """Replace the text of the numbered utterances and rewrite the list in one step; returns the new list."""
    items = read_list(list_path)
    for index, text in changes.items():
        if not 0 <= index < len(items):
            raise InputError(f"there is no utterance {index}; the list has {len(items)} (numbered from 0)")
        text = " ".join(text.split())
        if not text:
            raise InputError(f"utterance {index}: the transcript is empty; say what the clip says, "
                             "or remove the recording and prepare again")
        if "|" in text:
            raise InputError(f"utterance {index}: a transcript may not contain '|' (it separates the list's fields)")
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"utterance {index}: the transcript is {len(text)} characters; at most "
                             f"{MAX_TEXT_CHARS} are allowed")
        old = items[index]
        items[index] = Utterance(index, old.path, old.speaker, old.language, text)
    atomic_write(list_path, "".join(f"{u.path}|{u.speaker}|{u.language}|{u.text}\n" for u in items), mode=0o600)
    words = _words(list_path)
    for index in changes:
        record = words.get(items[index].path.name)
        if record is not None:
            record.update(confidence=None, words=[], text=items[index].text)
    if words:
        atomic_write(list_path.parent / WORDS_FILE, json.dumps(words, ensure_ascii=False, indent=1) + "\n", mode=0o600)
    return items


def reviewed(list_path: Path, items: list[Utterance]) -> list[dict]:
    """The API view of each utterance with Whisper's doubts: `confidence` (mean word probability, None when
    unknown or corrected), `doubted` (words under LOW_CONFIDENCE) and `flagged`."""
    words = _words(list_path)
    views = []
    for item in items:
        record = words.get(item.path.name) or {}
        edited = record.get("text") not in (None, item.text)
        confidence = None if edited else record.get("confidence")
        doubted = [] if edited else [word for w, p in record.get("words") or []
                                     if float(p) < LOW_CONFIDENCE and (word := str(w).strip().strip(_PUNCTUATION))]
        flagged = bool(doubted) or (confidence is not None and confidence < LOW_CONFIDENCE)
        views.append({**item.to_dict(), "confidence": confidence, "doubted": doubted, "flagged": flagged})
    return views


def _words(list_path: Path) -> dict:
    try:
        words = json.loads((list_path.parent / WORDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return words if isinstance(words, dict) else {}


def clip_of(list_path: Path, index: int) -> Path:
    """The clip of utterance `index`, if it lies in the list's own folder (the prepared `wavs/`)."""
    items = read_list(list_path)
    if not 0 <= index < len(items):
        raise InputError(f"there is no utterance {index}; the list has {len(items)} (numbered from 0)")
    clip = items[index].path
    clip = clip if clip.is_absolute() else list_path.parent / clip
    if not clip.resolve().is_relative_to(list_path.parent.resolve()) or not clip.is_file():
        raise InputError(f"utterance {index}'s clip is not in the prepared data")
    return clip
