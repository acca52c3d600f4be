"""The registry's SQLite database: one connection behind a lock, WAL journal, secure delete.

Erasure matters here: `secure_delete` zeroes the bytes of deleted rows inside the database file,
and after a deletion the WAL is checkpointed and truncated, so neither file keeps a deleted voice's
name, transcript or consent text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from myna.errors import ServerFault

SCHEMA_VERSION = 2  # 2: voices.created_by (which API key registered it), voices.name_key (unique names)


class VoiceStorageError(ServerFault):
    """The voice folder or its database cannot be read or written (disk full, permissions, newer schema)."""

    code = "storage_error"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    transcript TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    clip_seconds REAL NOT NULL,
    clip_rate INTEGER NOT NULL,
    clip_file TEXT NOT NULL,
    encrypted INTEGER NOT NULL,
    created_by TEXT,
    name_key TEXT
);
CREATE TABLE IF NOT EXISTS consents (
    voice_id TEXT PRIMARY KEY REFERENCES voices(id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    statement TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    obtained_by TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""

_VOICE_COLUMNS = (
    "v.id, v.name, v.language, v.transcript, v.created_at, v.updated_at, v.version, v.clip_seconds, "
    "v.clip_rate, v.clip_file, v.encrypted, v.created_by, v.name_key, c.subject, c.statement, c.recorded_at, "
    "c.obtained_by"
)
_NAME_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS voices_name_key ON voices(name_key)"


class VoiceDatabase:
    """One connection to the voice database behind a lock, set up for erasure (WAL, full sync, secure delete).

    The tables of the voices (VoiceStore) and of their emotion references (registry_references)
    each hold one; the methods of a subclass take `_lock` around every use of `_db`.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON", "foreign_keys=ON"):
                self._db.execute(f"PRAGMA {pragma}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements in one write transaction, rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def flush(self) -> None:
        """Copy the WAL into the database file and truncate it, so no old page images remain."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Flush and close the connection."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()


class VoiceStore(VoiceDatabase):
    """Rows of voices and their consent records; every method is thread-safe."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self._db.close()
                raise VoiceStorageError(
                    f"{path}: the voice database has schema version {version}; this myna knows "
                    f"{SCHEMA_VERSION} (upgrade myna)"
                )
            self._db.executescript(_SCHEMA)
            if version == 1:  # a version-1 database: add the columns; names of its voices get keys from the registry
                self._db.execute("ALTER TABLE voices ADD COLUMN created_by TEXT")
                self._db.execute("ALTER TABLE voices ADD COLUMN name_key TEXT")
            self._db.execute(_NAME_INDEX)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def insert(self, voice: dict, consent: dict) -> None:
        """Add a voice row and its consent row in one transaction."""
        with self._transaction() as db:
            columns = ", ".join(voice)
            db.execute(f"INSERT INTO voices ({columns}) VALUES ({', '.join(':' + c for c in voice)})", voice)
            db.execute(
                "INSERT INTO consents VALUES (:voice_id, :subject, :statement, :recorded_at, :obtained_by)",
                {**consent, "voice_id": voice["id"]},
            )

    def update(self, voice_id: str, version: int, fields: dict) -> bool:
        """Set `fields` on a voice if it is still at `version`; False if it changed or is gone."""
        names = ", ".join(f"{name} = :{name}" for name in fields)
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE voices SET {names} WHERE id = :voice_id AND version = :expected",
                {**fields, "voice_id": voice_id, "expected": version},
            )
            return cursor.rowcount == 1

    def find_name(self, key: str) -> str | None:
        """The id of the voice whose name has this key, or None."""
        with self._lock:
            row = self._db.execute("SELECT id FROM voices WHERE name_key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_name_keys(self, keys: dict[str, str]) -> None:
        """Give voices without one a name key (a database from before version 2)."""
        with self._transaction() as db:
            for voice_id, key in keys.items():
                db.execute("UPDATE voices SET name_key = ? WHERE id = ? AND name_key IS NULL", (key, voice_id))

    def get(self, voice_id: str) -> sqlite3.Row | None:
        """The joined voice + consent row, or None."""
        with self._lock:
            return self._db.execute(
                f"SELECT {_VOICE_COLUMNS} FROM voices v JOIN consents c ON c.voice_id = v.id WHERE v.id = ?",
                (voice_id,),
            ).fetchone()

    def all(self) -> list[sqlite3.Row]:
        """Every voice + consent row, oldest first."""
        with self._lock:
            return self._db.execute(
                f"SELECT {_VOICE_COLUMNS} FROM voices v JOIN consents c ON c.voice_id = v.id "
                "ORDER BY v.created_at, v.id"
            ).fetchall()

    def ids(self) -> set[str]:
        """The ids of all voices."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT id FROM voices")}

    def delete(self, voice_id: str) -> bool:
        """Erase a voice's rows (consent included) and flush the WAL; False if there was none."""
        with self._transaction() as db:
            db.execute("DELETE FROM consents WHERE voice_id = ?", (voice_id,))
            found = db.execute("DELETE FROM voices WHERE id = ?", (voice_id,)).rowcount == 1
        if found:
            self.flush()
        return found

    def meta(self, key: str) -> bytes | None:
        """A registry-wide setting, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        """Store a registry-wide setting."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

