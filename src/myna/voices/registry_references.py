"""Emotion references of registered voices: stored with the voice, under its consent, erased with it.

Rows live in the registry's database (table `voice_references`, a foreign key on the voice with
ON DELETE CASCADE), clips in the voice's own folder:

    clips/<voice id>/refs/<reference id>.wav   (.wav.enc when the registry encrypts)

so deleting the voice (VoiceRegistry.delete) erases its references in the same steps as its clip:
the cascade removes the rows (secure_delete zeroes them, the WAL is truncated) and the folder goes
with everything in it. With an encryption key the clips and transcripts are sealed like the
voice's own (bound to the voice id and the reference), and the engine reads decrypted copies kept
next to the registry's (dropped when the voice is deleted or the registry closed).

A reference belongs to the voice: it is added under the voice's consent record (the registry
refuses voices without one) and can only be listed, read or removed through the voice's id.
Writes are atomic: the clip is written first, then the row; a failure removes the clip, and clips
without a row (a crash in between) are removed when the store opens.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from myna.atomic import atomic_write
from myna.errors import InputError
from myna.text.emotion_markup import check_label
from myna.voices.audio_checks import check_clip, check_language, clip_wav_bytes
from myna.voices.references import EmotionReference, check_reference_text, new_reference_id
from myna.voices.registry import CLIPS_DIR, DATABASE_NAME, UnknownVoiceError, VoiceRegistry
from myna.voices.store import VoiceDatabase, VoiceStorageError

REFS_FOLDER = "refs"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS voice_references (
    id TEXT PRIMARY KEY,
    voice_id TEXT NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    emotion TEXT NOT NULL,
    transcript BLOB NOT NULL,
    language TEXT NOT NULL,
    clip_file TEXT NOT NULL,
    clip_seconds REAL NOT NULL,
    created_at TEXT NOT NULL,
    encrypted INTEGER NOT NULL,
    UNIQUE (voice_id, emotion)
);
"""


class UnknownReferenceError(InputError):
    """The voice has no reference with this id or label."""


class DuplicateReferenceError(InputError):
    """The voice already has a reference with this label (one per label: remove or replace it)."""


@dataclass(frozen=True)
class ReferenceRecord:
    """A registered voice's emotion reference as callers see it (no clip path: see `clip_path`)."""

    id: str
    voice_id: str
    emotion: str
    transcript: str
    language: str
    clip_seconds: float
    created_at: str


class RegistryReferences(VoiceDatabase):
    """The emotion references of the voices in one `VoiceRegistry`; thread-safe."""

    def __init__(self, registry: VoiceRegistry) -> None:
        self.registry = registry
        # The registry's own cipher (None without a key): a reference is sealed with its voice's key.
        self._cipher = registry._cipher
        try:
            super().__init__(registry.data_dir / DATABASE_NAME)
            with self._lock:
                self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise VoiceStorageError(f"{registry.data_dir}: cannot open the reference table ({exc})") from exc
        self._sweep()

    def add(self, voice_id: str, audio: bytes, filename: str, transcript: str, language: str, emotion: str,
            replace: bool = False) -> ReferenceRecord:
        """Check a clip and store it as the voice's `emotion` reference; `replace` swaps out an existing one."""
        self.registry.get(voice_id)  # UnknownVoiceError first: nothing else is said about unknown ids
        emotion = check_label(emotion)
        transcript = check_reference_text(transcript, self.registry.limits)
        language = check_language(language)
        clip = check_clip(audio, filename, self.registry.limits)
        ref_id = new_reference_id()
        name = f"{ref_id}.wav" + (".enc" if self._cipher is not None else "")
        data = clip_wav_bytes(clip)
        if self._cipher is not None:
            data = self._cipher.seal(data, f"{voice_id}:{REFS_FOLDER}/{name}")
        path = self._folder(voice_id) / name
        old: list[sqlite3.Row] = []
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)  # private like the voice's folder, which must exist:
            # never recreate a deleted one
            atomic_write(path, data, mode=0o600, durable=True)
            with self._transaction() as db:
                old = db.execute("SELECT * FROM voice_references WHERE voice_id = ? AND emotion = ?",
                                 (voice_id, emotion)).fetchall()
                if old and not replace:
                    raise DuplicateReferenceError(f"voice {voice_id} already has a {emotion!r} reference ({old[0]['id']}); "
                                     "remove it first or replace it")
                db.execute("DELETE FROM voice_references WHERE voice_id = ? AND emotion = ?", (voice_id, emotion))
                db.execute("INSERT INTO voice_references VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (ref_id, voice_id, emotion, self._seal(voice_id, ref_id, transcript), language, name,
                            clip.seconds, _utc_now(), int(self._cipher is not None)))
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.IntegrityError | FileNotFoundError) and not self._voice_exists(voice_id):
                raise UnknownVoiceError(f"voice {voice_id!r} was deleted while its reference was added") from None
            if isinstance(exc, OSError | sqlite3.Error):
                raise VoiceStorageError(f"could not store the reference of voice {voice_id}: {exc}") from exc
            raise
        for row in old:
            self._drop_files(voice_id, row)
        self.flush()  # no old page keeps a removed transcript
        return self.get(voice_id, ref_id)

    def list(self, voice_id: str) -> list[ReferenceRecord]:
        """The voice's references, oldest first."""
        self.registry.get(voice_id)
        with self._lock:
            rows = self._db.execute("SELECT * FROM voice_references WHERE voice_id = ? ORDER BY created_at, id",
                                    (voice_id,)).fetchall()
        return [self._record(row) for row in rows]

    def get(self, voice_id: str, key: str) -> ReferenceRecord:
        """The voice's reference with id or label `key`, or `UnknownReferenceError`."""
        return self._record(self._row(voice_id, key))

    def remove(self, voice_id: str, key: str) -> ReferenceRecord:
        """Erase the voice's reference with id or label `key`: its row, clip and decrypted copy."""
        row = self._row(voice_id, key)
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM voice_references WHERE id = ?", (row["id"],))
        except sqlite3.Error as exc:
            raise VoiceStorageError(f"could not remove reference {row['id']}: {exc}") from exc
        self._drop_files(voice_id, row)
        self.flush()  # no old page keeps a removed transcript
        return self._record(row)

    def clip_path(self, voice_id: str, key: str) -> Path:
        """A readable WAV file of the reference's clip (a private decrypted copy when clips are encrypted)."""
        row = self._row(voice_id, key)
        stored = self._folder(voice_id) / row["clip_file"]
        if not row["encrypted"]:
            if not stored.is_file():
                raise VoiceStorageError(f"voice {voice_id}: the clip of reference {row['id']} is missing")
            return stored
        # Named "<voice id>-..." inside the registry's folder of decrypted copies, so the registry's own
        # erasure of the voice (and its close) removes these copies too; written under the registry's
        # lock, as its own copies are, so none is written after the voice is deleted.
        with self.registry._mutate:
            row = self._row(voice_id, row["id"])
            target = self.registry._plain_copies() / f"{voice_id}-ref-{row['id']}.wav"
            if not target.is_file():
                try:
                    sealed = stored.read_bytes()
                except OSError as exc:
                    raise VoiceStorageError(f"voice {voice_id}: cannot read reference {row['id']} ({exc})") from exc
                context = f"{voice_id}:{REFS_FOLDER}/{row['clip_file']}"
                atomic_write(target, self._cipher_or_fail(voice_id).open(sealed, context), mode=0o600)
        return target

    def references(self, voice_id: str) -> list[EmotionReference]:
        """The voice's references as the engine takes them (myna.engine.emotion), readable clips included."""
        return [EmotionReference(rec.id, rec.emotion, self.clip_path(voice_id, rec.id), rec.transcript,
                                 rec.language, rec.clip_seconds) for rec in self.list(voice_id)]

    # -- internals -------------------------------------------------------------------------------

    def _voice_exists(self, voice_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM voices WHERE id = ?", (voice_id,)).fetchone() is not None

    def _row(self, voice_id: str, key: str) -> sqlite3.Row:
        self.registry.get(voice_id)
        with self._lock:
            row = self._db.execute("SELECT * FROM voice_references WHERE voice_id = ? AND (id = ? OR emotion = ?)",
                                   (voice_id, key, (key or "").strip().lower())).fetchone()
        if row is None:
            raise UnknownReferenceError(f"voice {voice_id} has no reference with id or label {key!r}; "
                                        "list its references to see them")
        return row

    def _record(self, row: sqlite3.Row) -> ReferenceRecord:
        transcript = row["transcript"]
        if isinstance(transcript, bytes):
            transcript = self._cipher_or_fail(row["voice_id"]).open(
                transcript, f"{row['voice_id']}:ref-text:{row['id']}").decode("utf-8")
        return ReferenceRecord(row["id"], row["voice_id"], row["emotion"], transcript, row["language"],
                               row["clip_seconds"], row["created_at"])

    def _seal(self, voice_id: str, ref_id: str, text: str) -> str | bytes:
        if self._cipher is None:
            return text
        return self._cipher.seal(text.encode("utf-8"), f"{voice_id}:ref-text:{ref_id}")

    def _cipher_or_fail(self, voice_id: str):
        if self._cipher is None:
            from myna.voices.crypto import VoiceKeyError

            raise VoiceKeyError(f"voice {voice_id}: its references are encrypted; start the registry with its key")
        return self._cipher

    def _folder(self, voice_id: str) -> Path:
        return self.registry.data_dir / CLIPS_DIR / voice_id / REFS_FOLDER

    def _drop_files(self, voice_id: str, row: sqlite3.Row) -> None:
        (self._folder(voice_id) / row["clip_file"]).unlink(missing_ok=True)
        if self.registry._plain_dir is not None:
            (self.registry._plain_dir / f"{voice_id}-ref-{row['id']}.wav").unlink(missing_ok=True)

    def _sweep(self) -> None:
        """Remove reference clips without a row (a crash between writing the clip and committing the row)."""
        with self._lock:
            kept = {(row[0], row[1]) for row in self._db.execute("SELECT voice_id, clip_file FROM voice_references")}
        for folder in (self.registry.data_dir / CLIPS_DIR).glob(f"*/{REFS_FOLDER}"):
            for path in folder.iterdir():
                if (folder.parent.name, path.name) not in kept:
                    path.unlink(missing_ok=True)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
