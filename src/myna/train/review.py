"""Proofreading a prepared dataset: the operations behind `myna data review` (the web page shows the same
doubts through myna.server.transcripts, which reads transcripts.json itself: the server imports no training code).

A `Review` wraps one `.list` (and the transcripts.json `myna data prepare` writes beside it with
Whisper's word probabilities). Every operation edits the list and saves it at once (atomically; the
list as it was before the first change is kept as a backup): `edit` a transcript, `drop` a line,
`merge` a line with the next (their audio joined into a new clip), `split` a line at a time (two new
clips). `items()` lists every line with its length, transcript confidence and the words Whisper
doubted; `flagged()` those under the threshold. Indices are positions in the current list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myna.audio.decode import decode
from myna.audio.io import write_wav
from myna.errors import InputError
from myna.features.asr import LOW_CONFIDENCE
from myna.train.listfile import ListEntry, read_list, write_list

REVIEW_RATE = 32000


@dataclass(frozen=True)
class ReviewItem:
    """One line of the list as the reviewer sees it."""

    index: int
    audio: Path
    speaker: str
    lang: str
    text: str
    seconds: float | None
    confidence: float | None  # mean word probability (None: not transcribed by prepare)
    doubtful_words: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """True when Whisper doubted the transcript (or a word of it)."""
        return bool(self.doubtful_words) or (self.confidence is not None and self.confidence < LOW_CONFIDENCE)


class Review:
    """The proofreading operations on one `.list`."""

    def __init__(self, list_path: str | Path, threshold: float = LOW_CONFIDENCE) -> None:
        self.path = Path(list_path)
        self.entries, problems = read_list(self.path)
        if problems:
            number, reason = problems[0]
            raise InputError(f"{self.path}:{number}: {reason}; fix the line by hand first")
        self.threshold = threshold
        self.backup: Path | None = None
        try:
            self.words = json.loads((self.path.parent / "transcripts.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.words = {}

    # -- reading ------------------------------------------------------------------------------------
    def items(self) -> list[ReviewItem]:
        """Every line, in order."""
        return [self.item(i) for i in range(len(self.entries))]

    def item(self, index: int) -> ReviewItem:
        """Line `index`."""
        entry = self.entries[self._check(index)]
        record = self.words.get(entry.audio.name) or {}
        edited = record.get("text") not in (None, entry.text)
        confidence = None if edited else record.get("confidence")
        doubtful = [] if edited else [w for w, p in record.get("words", []) if p < self.threshold]
        try:
            import soundfile

            seconds = round(soundfile.info(str(entry.audio)).duration, 2)
        except (OSError, RuntimeError):
            seconds = None
        return ReviewItem(index, entry.audio, entry.speaker, entry.lang, entry.text, seconds, confidence, doubtful)

    def flagged(self) -> list[ReviewItem]:
        """Lines whose transcript Whisper doubted."""
        return [item for item in self.items() if item.flagged]

    # -- changes ------------------------------------------------------------------------------------
    def edit(self, index: int, text: str) -> ReviewItem:
        """Replace line `index`'s transcript."""
        text = " ".join(text.split())
        if not text:
            raise InputError("the transcript cannot be empty; drop the line instead")
        entry = self.entries[self._check(index)]
        self.entries[index] = ListEntry(entry.audio, entry.speaker, entry.lang, text)
        self.words.get(entry.audio.name, {}).update(confidence=None, words=[], text=text)
        self._save()
        return self.item(index)

    def drop(self, index: int) -> None:
        """Remove line `index` from the list (its audio file stays)."""
        del self.entries[self._check(index)]
        self._save()

    def merge(self, index: int) -> ReviewItem:
        """Join line `index` and the next: one clip (written beside the first), transcripts joined."""
        first, second = self.entries[self._check(index)], self.entries[self._check(index + 1)]
        audio = np.concatenate([decode(first.audio, REVIEW_RATE), decode(second.audio, REVIEW_RATE)])
        target = self._free_name(first.audio, "merged")
        write_wav(target, audio, REVIEW_RATE)
        self.entries[index: index + 2] = [ListEntry(target, first.speaker, first.lang, f"{first.text} {second.text}")]
        self._save()
        return self.item(index)

    def split(self, index: int, at_seconds: float, first_text: str, second_text: str) -> list[ReviewItem]:
        """Cut line `index`'s clip at `at_seconds` into two lines with these transcripts."""
        entry = self.entries[self._check(index)]
        audio = decode(entry.audio, REVIEW_RATE)
        cut = int(round(at_seconds * REVIEW_RATE))
        if not 0 < cut < audio.shape[0]:
            raise InputError(f"split point {at_seconds:g} s is outside the clip (0-{audio.shape[0] / REVIEW_RATE:.2f} s)")
        if not first_text.strip() or not second_text.strip():
            raise InputError("give a transcript for both halves")
        parts = []
        for number, (piece, text) in enumerate(((audio[:cut], first_text), (audio[cut:], second_text)), start=1):
            target = self._free_name(entry.audio, f"part{number}")
            write_wav(target, piece, REVIEW_RATE)
            parts.append(ListEntry(target, entry.speaker, entry.lang, " ".join(text.split())))
        self.entries[index: index + 1] = parts
        self._save()
        return [self.item(index), self.item(index + 1)]

    # -- internals ----------------------------------------------------------------------------------
    def _check(self, index: int) -> int:
        if not 0 <= index < len(self.entries):
            raise InputError(f"no line {index + 1}: the list has {len(self.entries)} lines")
        return index

    def _free_name(self, near: Path, tag: str) -> Path:
        target, n = near.with_name(f"{near.stem}_{tag}.wav"), 1
        while target.exists():
            n += 1
            target = near.with_name(f"{near.stem}_{tag}{n}.wav")
        return target

    def _save(self) -> None:
        if self.backup is None:
            from myna.train.prepare import _backup

            self.backup = _backup(self.path)
        write_list(self.path, self.entries)
