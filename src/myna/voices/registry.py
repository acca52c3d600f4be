"""The voice registry: reference clips with their transcript, language and consent record.

Layout of `data_dir` (everything the registry keeps):

    voices.sqlite3 (+ -wal, -shm)   voice and consent rows (see store.py)
    clips/<voice id>/clip-v<N>.wav  the clip of version N: float32 mono WAV at its own rate
                                    (`.wav.enc` when sealed with AES-256-GCM, see crypto.py)
    deletions.log                   one line per erased voice: UTC time and voice id, nothing else
                                    (an audit trail of erasures; the only place a deleted id remains)

With a key (32 bytes, AES-256-GCM), a folder is encrypted from its first use: clips and the personal
text fields (name, transcript, consent subject, statement, obtained_by) are sealed; ids, language,
times and lengths stay readable. The engine reads clips from a path, so `clip_path` writes a
decrypted copy (mode 0600) into a private folder in /dev/shm (memory) when available, else the
system temp folder; copies are removed on update, delete and `close()`.

Folders are 0700 and files 0600 (the database's -wal/-shm and the deletion log included; looser
modes left by older versions are tightened at start): clips, transcripts and consent are personal
data. Names are unique ignoring case (see names.py).

Writes are atomic: a clip goes to a temporary name, is fsynced and renamed, and only then is the row
committed; on any failure the files written so far are removed. A crash between the rename and the
commit leaves a folder without a row, which the next start removes. Deleting a voice removes its
rows first, then its folder, appends to the deletion log, then runs the `on_delete` callbacks.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from myna.atomic import atomic_write
from myna.errors import InputError, ServerFault
from myna.voices.audio_checks import (
    CheckedClip,
    ClipLimits,
    check_clip,
    check_language,
    check_transcript,
    clip_wav_bytes,
)
from myna.voices.crypto import ClipCipher, VoiceKeyError
from myna.voices.names import check_name, name_key
from myna.voices.store import VoiceStorageError, VoiceStore

DATABASE_NAME = "voices.sqlite3"
CLIPS_DIR = "clips"
DELETION_LOG = "deletions.log"
_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_KEEP = object()  # `update` argument left unchanged
_MAX_CONSENT_CHARS = 4000
_PRIVATE_DIR, _PRIVATE_FILE = 0o700, 0o600  # voices are personal data: only the server's user may read them


class UnknownVoiceError(InputError):
    """No voice with this id exists (never did, or was deleted)."""


class VoiceNameTaken(InputError):
    """Another voice has this name (names are unique ignoring case)."""


class ErasureIncomplete(ServerFault):
    """A voice's rows and files are erased, but something derived from it (a cache) could not be dropped."""

    status = 503
    code = "erasure_incomplete"


@dataclass(frozen=True)
class Consent:
    """Who agreed to their voice being cloned, what they agreed to, and when (set by the registry)."""

    subject: str
    statement: str
    recorded_at: str = ""
    obtained_by: str | None = None


@dataclass(frozen=True)
class VoiceRecord:
    """A registered voice as callers see it; `version` changes whenever the clip or text changes."""

    id: str
    name: str
    language: str
    transcript: str | None
    created_at: str
    version: int
    consent: Consent
    clip_seconds: float
    updated_at: str = ""
    created_by: str | None = None  # the name of the API key that registered it (None: unknown, or no keys)


class VoiceRegistry:
    """Voices stored under one folder; thread-safe; survives restarts."""

    def __init__(self, data_dir: Path, key: bytes | None = None, limits: ClipLimits | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.limits = limits or ClipLimits()
        self._callbacks: list[Callable[[str], None]] = []
        self._mutate = threading.Lock()
        self._plain_lock = threading.Lock()
        self._cipher = ClipCipher(key) if key is not None else None
        # Names are made unique through a keyed hash; with encryption the key keeps names unguessable from it.
        self._name_secret = hmac.new(bytes(key), b"myna voice names", hashlib.sha256).digest() if key else None
        self._plain_dir: Path | None = None  # decrypted copies handed to the engine (encrypted mode)
        try:
            make_private_dir(self.data_dir / CLIPS_DIR)
            for path in (self.data_dir, *self.data_dir.rglob("*")):  # folders 0700, files 0600, also those of old installs
                os.chmod(path, _PRIVATE_DIR if path.is_dir() else _PRIVATE_FILE)
            database = self.data_dir / DATABASE_NAME
            os.close(os.open(database, os.O_CREAT | os.O_RDWR, _PRIVATE_FILE))  # SQLite gives -wal/-shm its mode
            self._store = VoiceStore(database)
        except (OSError, sqlite3.Error) as exc:
            raise VoiceStorageError(f"{self.data_dir}: cannot open the voice folder ({exc})") from exc
        self._check_key()
        self._key_old_names()
        self._sweep()

    def create(
        self,
        audio: bytes,
        filename: str,
        transcript: str | None,
        language: str,
        name: str,
        consent: Consent,
        created_by: str | None = None,
    ) -> VoiceRecord:
        """Check and store a new voice; raises an `InputError` saying what to fix, storing nothing.

        `created_by` names who registered it (the API key's name), kept with the record.
        """
        consent = _check_consent(consent)
        name = check_name(name, self.limits.max_name_chars)
        language = check_language(language)
        transcript = check_transcript(transcript, self.limits)
        clip = check_clip(audio, filename, self.limits)
        voice_id = uuid.uuid4().hex
        now = _utc_now()
        folder = self._folder(voice_id)
        try:
            make_private_dir(folder, exist_ok=False)
            clip_file = self._write_clip(voice_id, 1, clip)
            self._store.insert(
                {
                    "id": voice_id, "name": self._seal(voice_id, "name", name), "language": language,
                    "transcript": self._seal(voice_id, "transcript", transcript),
                    "created_at": now, "updated_at": now, "version": 1, "clip_seconds": clip.seconds,
                    "clip_rate": clip.rate, "clip_file": clip_file, "encrypted": int(self._cipher is not None),
                    "created_by": created_by, "name_key": name_key(name, self._name_secret),
                },
                {"subject": self._seal(voice_id, "subject", consent.subject),
                 "statement": self._seal(voice_id, "statement", consent.statement), "recorded_at": now,
                 "obtained_by": self._seal(voice_id, "obtained_by", consent.obtained_by)},
            )  # fmt: skip
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if _is_name_clash(exc):
                raise _name_taken(name) from None
            if isinstance(exc, OSError | sqlite3.Error):
                raise VoiceStorageError(f"could not store the voice under {self.data_dir}: {exc}") from exc
            raise
        return self.get(voice_id)

    def update(
        self,
        voice_id: str,
        audio: bytes | None = None,
        filename: str = "",
        transcript: str | None | object = _KEEP,
        language: str | None = None,
        name: str | None = None,
    ) -> VoiceRecord:
        """Replace a voice's clip and/or text; the version goes up, so results cached for it no longer match."""
        fields: dict[str, object] = {}
        if name is not None:
            name = check_name(name, self.limits.max_name_chars)
            fields.update(name=self._seal(voice_id, "name", name), name_key=name_key(name, self._name_secret))
        if language is not None:
            fields["language"] = check_language(language)
        if transcript is not _KEEP:
            checked = check_transcript(transcript, self.limits)  # type: ignore[arg-type]
            fields["transcript"] = self._seal(voice_id, "transcript", checked)
        clip = check_clip(audio, filename, self.limits) if audio is not None else None
        with self._mutate:
            row = self._row(voice_id)
            version = row["version"] + 1
            new_file = None
            try:
                if clip is not None:
                    new_file = self._write_clip(voice_id, version, clip)
                    fields.update(clip_file=new_file, clip_seconds=clip.seconds, clip_rate=clip.rate,
                                  encrypted=int(self._cipher is not None))  # fmt: skip
                fields.update(version=version, updated_at=_utc_now())
                if not self._store.update(voice_id, row["version"], fields):
                    raise UnknownVoiceError(f"voice {voice_id!r} was deleted while being updated")
            except BaseException as exc:
                if new_file is not None:
                    (self._folder(voice_id) / new_file).unlink(missing_ok=True)
                if _is_name_clash(exc):
                    raise _name_taken(name) from None
                if isinstance(exc, OSError | sqlite3.Error):
                    raise VoiceStorageError(f"could not update voice {voice_id}: {exc}") from exc
                raise
            if new_file is not None:
                (self._folder(voice_id) / row["clip_file"]).unlink(missing_ok=True)
                self._forget_plain(voice_id)
        if new_file is not None:
            self._notify(voice_id)
        return self.get(voice_id)

    def list(self) -> list[VoiceRecord]:
        """All voices, oldest first."""
        return [self._record(row) for row in self._store.all()]

    @staticmethod
    def is_voice_id(text: str) -> bool:
        """Whether `text` has the form of a voice id (32 lowercase hex digits)."""
        return _ID_PATTERN.fullmatch(text or "") is not None

    def exists(self, voice_id: str) -> bool:
        """Whether a voice with this id is registered now."""
        return _ID_PATTERN.fullmatch(voice_id or "") is not None and self._store.get(voice_id) is not None

    def find(self, id_or_name: str) -> VoiceRecord:
        """The voice with this id, else the one with this name (ignoring case), else `UnknownVoiceError`."""
        if self.exists(id_or_name):
            return self.get(id_or_name)
        found = self._store.find_name(name_key(id_or_name, self._name_secret))
        if found is not None:
            return self.get(found)
        raise UnknownVoiceError(f"no voice with the id or name {id_or_name!r}")

    def get(self, voice_id: str) -> VoiceRecord:
        """One voice, or `UnknownVoiceError`."""
        return self._record(self._row(voice_id))

    def clip_path(self, voice_id: str) -> Path:
        """A readable WAV file of the voice's clip (a private decrypted copy when clips are encrypted)."""
        row = self._row(voice_id)
        stored = self._folder(voice_id) / row["clip_file"]
        if not row["encrypted"]:
            if not stored.is_file():
                raise VoiceStorageError(f"voice {voice_id}: its clip file {stored} is missing")
            return stored
        with self._mutate:  # no copy may be written after the voice is deleted or replaced
            row = self._row(voice_id)
            target = self._plain_copies() / f"{voice_id}-{row['clip_file'].removesuffix('.enc')}"
            if not target.is_file():
                atomic_write(target, self.clip_bytes(voice_id), mode=0o600, durable=True)
        return target

    def clip_bytes(self, voice_id: str) -> bytes:
        """The voice's clip as WAV bytes (decrypted if stored encrypted)."""
        row = self._row(voice_id)
        stored = self._folder(voice_id) / row["clip_file"]
        try:
            data = stored.read_bytes()
        except OSError as exc:
            raise VoiceStorageError(f"voice {voice_id}: cannot read its clip ({exc})") from exc
        if not row["encrypted"]:
            return data
        if self._cipher is None:
            raise VoiceKeyError(f"voice {voice_id}: the clip is encrypted; start the registry with its key")
        return self._cipher.open(data, f"{voice_id}:{row['clip_file']}")

    def delete(self, voice_id: str) -> None:
        """Erase a voice: rows (consent included), clip and folder, then tell the `on_delete` callbacks."""
        if not _ID_PATTERN.fullmatch(voice_id or ""):
            raise UnknownVoiceError(f"no voice with id {voice_id!r}")
        with self._mutate:
            try:
                found = self._store.delete(voice_id)
            except sqlite3.Error as exc:
                raise VoiceStorageError(f"could not delete voice {voice_id}: {exc}") from exc
            if not found:
                raise UnknownVoiceError(f"no voice with id {voice_id!r} (already deleted?)")
            shutil.rmtree(self._folder(voice_id), ignore_errors=True)
            self._forget_plain(voice_id)
            descriptor = os.open(self.data_dir / DELETION_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _PRIVATE_FILE)
            with open(descriptor, "a", encoding="utf-8") as log:
                log.write(f"{_utc_now()}\tdeleted\t{voice_id}\n")
                log.flush()
                os.fsync(log.fileno())
        self._notify(voice_id)

    def on_delete(self, callback: Callable[[str], None]) -> None:
        """Call `callback(voice_id)` after a voice is deleted or its clip replaced (drop what you derived)."""
        with self._mutate:
            self._callbacks.append(callback)

    def close(self) -> None:
        """Flush the database and remove decrypted copies."""
        self._store.close()
        if self._plain_dir is not None:
            shutil.rmtree(self._plain_dir, ignore_errors=True)
            self._plain_dir = None

    def __enter__(self) -> VoiceRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _row(self, voice_id: str) -> sqlite3.Row:
        """The stored row of a voice, or `UnknownVoiceError`."""
        row = self._store.get(voice_id) if _ID_PATTERN.fullmatch(voice_id or "") else None
        if row is None:
            raise UnknownVoiceError(f"no voice with id {voice_id!r}; list the voices to see their ids")
        return row

    def _seal(self, voice_id: str, field: str, text: str | None) -> str | bytes | None:
        """A personal text field as stored: sealed bytes when a key is set, else the text."""
        if text is None or self._cipher is None:
            return text
        return self._cipher.seal(text.encode("utf-8"), f"{voice_id}:{field}")

    def _unseal(self, voice_id: str, field: str, stored: str | bytes | None) -> str | None:
        """The text of a stored field."""
        if not isinstance(stored, bytes):
            return stored
        if self._cipher is None:
            raise VoiceKeyError(f"voice {voice_id}: its records are encrypted; start the registry with its key")
        return self._cipher.open(stored, f"{voice_id}:{field}").decode("utf-8")

    def _record(self, row: sqlite3.Row) -> VoiceRecord:
        """A `VoiceRecord` from a joined voice + consent row."""
        voice_id = row["id"]
        text = {field: self._unseal(voice_id, field, row[field])
                for field in ("name", "transcript", "subject", "statement", "obtained_by")}  # fmt: skip
        consent = Consent(text["subject"], text["statement"], row["recorded_at"], text["obtained_by"])
        return VoiceRecord(
            id=voice_id, name=text["name"], language=row["language"], transcript=text["transcript"],
            created_at=row["created_at"], version=row["version"], consent=consent,
            clip_seconds=row["clip_seconds"], updated_at=row["updated_at"], created_by=row["created_by"],
        )  # fmt: skip

    def _folder(self, voice_id: str) -> Path:
        return self.data_dir / CLIPS_DIR / voice_id

    def _write_clip(self, voice_id: str, version: int, clip: CheckedClip) -> str:
        """Write a clip file atomically (sealed when a key is set); return its file name."""
        data = clip_wav_bytes(clip)
        name = f"clip-v{version}.wav"
        if self._cipher is not None:
            name += ".enc"
            data = self._cipher.seal(data, f"{voice_id}:{name}")
        atomic_write(self._folder(voice_id) / name, data, mode=0o600, durable=True)
        return name

    def _notify(self, voice_id: str) -> None:
        """Run every callback; all run even if one fails, then the first failure is raised."""
        errors = []
        for callback in list(self._callbacks):
            try:
                callback(voice_id)
            except Exception as exc:  # noqa: BLE001 - every callback must get its turn
                errors.append(exc)
        if errors:
            raise ErasureIncomplete(f"voice {voice_id} is erased, but a cache could not drop it: {errors[0]}; "
                                    "send the DELETE again once the cache is back (it drops what is left)") from errors[0]

    def _plain_copies(self) -> Path:
        """A private folder (in memory when /dev/shm exists) for decrypted clips."""
        with self._plain_lock:
            if self._plain_dir is None:
                shm = Path("/dev/shm")
                base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
                self._plain_dir = Path(tempfile.mkdtemp(prefix="myna-voices-", dir=base))
            return self._plain_dir

    def _forget_plain(self, voice_id: str) -> None:
        if self._plain_dir is not None:
            for path in self._plain_dir.glob(f"{voice_id}-*"):
                path.unlink(missing_ok=True)

    def _check_key(self) -> None:
        """Refuse a wrong key, or a missing key for an encrypted folder, before anything is written."""
        token = self._store.meta("key_check")
        if token is None:
            if self._cipher is not None:
                if self._store.ids():
                    raise VoiceKeyError(
                        f"{self.data_dir}: this voice folder was created without encryption; encrypting "
                        "existing voices is not supported: use a new folder for an encrypted registry"
                    )
                self._store.set_meta("key_check", self._cipher.key_check())
        elif self._cipher is None:
            raise VoiceKeyError(f"{self.data_dir}: the voices here are encrypted; give the encryption key")
        else:
            self._cipher.verify(token)

    def _key_old_names(self) -> None:
        """Give the voices of a database from before unique names their name keys (a clash keeps none)."""
        rows = [row for row in self._store.all() if row["name_key"] is None]
        if not rows:
            return
        taken = {row["name_key"] for row in self._store.all() if row["name_key"] is not None}
        keys = {}
        for row in rows:
            key = name_key(self._unseal(row["id"], "name", row["name"]), self._name_secret)
            if key not in taken:  # a duplicate from before stays reachable by id only
                keys[row["id"]] = key
                taken.add(key)
        self._store.set_name_keys(keys)

    def _sweep(self) -> None:
        """Remove what an interrupted write left: folders without a row, files that are not the current clip."""
        rows = {row["id"]: row["clip_file"] for row in self._store.all()}
        for folder in (self.data_dir / CLIPS_DIR).iterdir():
            if folder.name not in rows:
                shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)
                continue
            for path in folder.iterdir():  # subfolders are not the registry's (refs/: voices/registry_references.py)
                if path.name != rows[folder.name] and not path.is_dir():
                    path.unlink(missing_ok=True)


def _check_consent(consent: Consent | None) -> Consent:
    """A consent record with a subject and a statement, or an `InputError` saying what is missing."""
    if not isinstance(consent, Consent):
        raise InputError(
            "a voice needs a consent record: who is speaking (subject) and what they agreed to (statement)"
        )
    subject, statement = (consent.subject or "").strip(), (consent.statement or "").strip()
    if not subject:
        raise InputError("the consent record needs the subject: the name of the person whose voice this is")
    if not statement:
        raise InputError("the consent record needs the statement the speaker agreed to")
    if len(subject) > _MAX_CONSENT_CHARS or len(statement) > _MAX_CONSENT_CHARS:
        raise InputError(f"consent subject and statement are limited to {_MAX_CONSENT_CHARS} characters each")
    obtained_by = (consent.obtained_by or "").strip() or None
    return replace(consent, subject=subject, statement=statement, obtained_by=obtained_by)


def make_private_dir(path: Path, exist_ok: bool = True) -> None:
    """Create a folder (and its parents) only its owner can enter (0700)."""
    path.mkdir(parents=True, exist_ok=exist_ok, mode=_PRIVATE_DIR)
    os.chmod(path, _PRIVATE_DIR)


def _is_name_clash(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError) and "name_key" in str(exc)


def _name_taken(name: str) -> VoiceNameTaken:
    return VoiceNameTaken(f"a voice named {name!r} exists already (names are unique, ignoring case); "
                          "choose another name or delete that voice")


def _utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds, e.g. 2026-01-02T03:04:05.678901Z."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
