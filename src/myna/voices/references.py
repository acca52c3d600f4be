"""Emotion references: more clips of a voice, each with its transcript, language and emotion label.

A voice speaks with its main clip; its emotion references are clips of the same speaker in other
moods (`happy`, `whisper`, free labels: myna.text.emotion_markup). The engine
(myna.engine.emotion) prompts the GPT with the reference of the asked label while SoVITS keeps the
main clip's timbre. Every reference needs its transcript: the emotion reaches the GPT through the
clip's tokens and the transcript's phonemes. One reference per label and voice.

Two stores keep them:

* `ReferenceFolder`: a voice folder (a voice trained with `myna train`, the default voice, or any
  folder used with `myna say --references DIR`) holding `references.json` and the clips under
  `references/`:

      {"references": [{"id": "5f0c1d2e3a4b", "emotion": "happy", "clip": "references/happy-5f0c1d2e3a4b.wav",
                       "text": "What a lovely day!", "lang": "en", "seconds": 4.2}]}

  Hand-written files may leave out `id` (the clip's file stem is used) and `seconds`; clip paths
  are relative to the folder or absolute. voice.json is left as it is.
* `RegistryReferences` (myna.voices.registry_references): references of a registered voice,
  stored with the voice under its consent record and erased with it.

Clips are checked and stored the registry's way (myna.voices.audio_checks): decoded, mixed to
mono, float32 WAV at their own rate, 3-60 s.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myna.atomic import atomic_write
from myna.errors import InputError
from myna.text.emotion_markup import check_label
from myna.voices.audio_checks import ClipLimits, check_clip, check_language, check_transcript, clip_wav_bytes
from myna.voices.store import VoiceStorageError

REFERENCES_FILE = "references.json"
CLIPS_FOLDER = "references"


@dataclass(frozen=True)
class EmotionReference:
    """One emotion reference as the engine reads it: a readable clip, its transcript, language and label."""

    id: str
    emotion: str
    clip: Path
    text: str
    lang: str
    seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "clip", Path(self.clip))  # a str path is taken too

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the clip as a string path)."""
        return {"id": self.id, "emotion": self.emotion, "clip": str(self.clip), "text": self.text,
                "lang": self.lang, "seconds": self.seconds}


def check_reference_text(text: str | None, limits: ClipLimits) -> str:
    """The transcript of an emotion reference, stripped; it may not be empty."""
    checked = check_transcript(text, limits)
    if checked is None:
        raise InputError("an emotion reference needs its transcript (what is said in the clip): the emotion "
                         "reaches the GPT through the clip's tokens and the transcript's phonemes")
    return checked


def new_reference_id() -> str:
    """A fresh reference id: 12 lowercase hex digits."""
    return uuid.uuid4().hex[:12]


class ReferenceFolder:
    """The emotion references kept in a voice folder (`references.json` + `references/`)."""

    def __init__(self, folder: str | Path, limits: ClipLimits | None = None) -> None:
        self.folder = Path(folder)
        self.limits = limits or ClipLimits()

    @property
    def manifest(self) -> Path:
        """The folder's references.json."""
        return self.folder / REFERENCES_FILE

    def list(self) -> list[EmotionReference]:
        """The references in the order they were added (none when the folder has no references.json)."""
        if not self.manifest.is_file():
            return []
        try:
            record = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.manifest}: not a readable references file ({exc})") from None
        entries = record.get("references") if isinstance(record, dict) else None
        if not isinstance(entries, list):
            raise InputError(f"{self.manifest}: expected {{\"references\": [...]}}")
        references = [self._entry(index, entry) for index, entry in enumerate(entries)]
        seen: dict[str, str] = {}
        for ref in references:
            if ref.emotion in seen:
                raise InputError(f"{self.manifest}: two references are labelled {ref.emotion!r} ({seen[ref.emotion]} "
                                 f"and {ref.id}); a voice has one reference per label")
            seen[ref.emotion] = ref.id
        return references

    def add(self, audio: bytes, filename: str, text: str, lang: str, emotion: str,
            replace: bool = False) -> EmotionReference:
        """Check a clip and store it under `emotion`; `replace` swaps out a reference with that label."""
        emotion = check_label(emotion)
        text = check_reference_text(text, self.limits)
        lang = check_language(lang)
        clip = check_clip(audio, filename, self.limits)
        references = self.list()
        old = [ref for ref in references if ref.emotion == emotion]
        if old and not replace:
            raise InputError(f"{self.folder} already has a {emotion!r} reference ({old[0].id}); remove it first "
                             "or replace it")
        ref_id = new_reference_id()
        target = self.folder / CLIPS_FOLDER / f"{emotion}-{ref_id}.wav"
        added = EmotionReference(ref_id, emotion, target, text, lang, round(clip.seconds, 3))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, clip_wav_bytes(clip), mode=0o600, durable=True)
            self._write([ref for ref in references if ref.emotion != emotion] + [added])
        except BaseException as exc:
            target.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise VoiceStorageError(f"{self.folder}: cannot store the reference ({exc})") from exc
            raise
        for ref in old:
            self._drop_clip(ref)
        return added

    def remove(self, key: str) -> list[EmotionReference]:
        """Remove the reference with this id, or the one with this label; returns what was removed."""
        references = self.list()
        gone = [ref for ref in references if key in (ref.id, ref.emotion)]
        if not gone:
            have = ", ".join(f"{ref.emotion} ({ref.id})" for ref in references) or "none"
            raise InputError(f"{self.folder}: no reference with id or label {key!r} (references: {have})")
        try:
            self._write([ref for ref in references if ref not in gone])
        except OSError as exc:
            raise VoiceStorageError(f"{self.folder}: cannot update {REFERENCES_FILE} ({exc})") from exc
        for ref in gone:
            self._drop_clip(ref)
        return gone

    def _entry(self, index: int, entry: Any) -> EmotionReference:
        where = f"{self.manifest}: reference {index + 1}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object with emotion, clip, text and lang")
        for key in ("emotion", "clip", "text", "lang"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise InputError(f"{where}: {key!r} is missing or not a string")
        try:
            emotion, lang = check_label(entry["emotion"]), check_language(entry["lang"])
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        clip = Path(entry["clip"])
        clip = clip if clip.is_absolute() else (self.folder / clip)
        seconds = entry.get("seconds")
        return EmotionReference(str(entry.get("id") or clip.stem), emotion, clip, entry["text"].strip(), lang,
                                float(seconds) if isinstance(seconds, int | float) else None)

    def _write(self, references: list[EmotionReference]) -> None:
        entries = []
        for ref in references:
            entry = ref.to_dict()
            if ref.clip.is_relative_to(self.folder):
                entry["clip"] = ref.clip.relative_to(self.folder).as_posix()
            entries.append(entry)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.manifest, json.dumps({"references": entries}, ensure_ascii=False, indent=2) + "\n",
                     mode=0o600, durable=True)

    def _drop_clip(self, ref: EmotionReference) -> None:
        """Delete a removed reference's clip if this folder stored it (hand-listed clips elsewhere stay)."""
        if ref.clip.parent == self.folder / CLIPS_FOLDER:
            ref.clip.unlink(missing_ok=True)
