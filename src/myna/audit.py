"""The audit trail: an append-only, hash-chained log of what happened to voices and what was synthesized.

One JSON object per line. Each record names the event (`voice.create`, `voice.update`,
`voice.delete`, `synthesis`, `admin.<action>`, `audit.erase`), who did it (`actor`: an API key's
name, `cli`, ...), the voice it concerns, non-personal `data` (hashes, ids, payloads), and
`prev`, the hash of the record before it. Its `hash` covers every field but `personal`:

    hash = H(canonical JSON of {seq, time, event, actor, voice, data, commit, prev})

H is HMAC-SHA256 under the audit key when one is configured (MYNA_AUDIT_KEY_FILE; then nobody
without the key can rewrite the chain after editing a line), else SHA-256 (which catches edits
by anyone who does not recompute every later hash). Personal content (names, consent statements,
transcripts) lives in `personal` = {"salt", "fields"} and enters the chain only through
`commit` = SHA-256 of it, salted so that the commitment of a short name cannot be guessed.
Erasing a voice removes `personal` from its records and leaves `commit`: the chain still
verifies, and nothing personal remains. With a `personal_key` (a service whose voices are
encrypted at rest passes the voice key) the fields are sealed with AES-256-GCM, `personal` =
{"salt", "sealed"}, so names and transcripts are no more readable in the log than in the registry;
`readable` opens them for whoever has the key.

Beside the log, `<log>.head` holds the last record's number and hash (and an HMAC of them under
the key), rewritten after every append, so cutting records off the end is detected too; for
protection against someone who can also roll the head file back, record `myna audit head`
elsewhere now and then and check with `myna audit verify --expect-head`. Appends from several
processes are serialised by an exclusive lock on `<log>.lock` (fcntl). The log holds personal fields
until they are erased, so its files are created 0600 and a folder it creates 0700.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from myna.errors import MynaError

GENESIS = "0" * 64
_CHAINED = ("seq", "time", "event", "actor", "voice", "data", "commit", "prev")


class AuditError(MynaError):
    """The audit log cannot be read or written, or is inconsistent in a way that stops appending."""


@dataclass(frozen=True)
class AuditRecord:
    """One line of the log."""

    seq: int
    time: str
    event: str
    actor: str | None
    voice: str | None
    data: dict[str, Any]
    commit: str | None
    prev: str
    hash: str
    personal: dict[str, Any] | None = None

    def line(self) -> str:
        """The record as one JSON line (no trailing newline); `personal` only while it is kept."""
        body = asdict(self)
        if body["personal"] is None:
            del body["personal"]
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass
class VerifyReport:
    """What `verify` found: `ok` is False when any problem was found."""

    records: int = 0
    erased: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """An audit log file; safe to share between threads and processes."""

    def __init__(self, path: str | Path, key: bytes | None = None, personal_key: bytes | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self._cipher = None
        if personal_key is not None:
            from myna.voices.crypto import ClipCipher

            self._cipher = ClipCipher(personal_key)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    # -- writing ---------------------------------------------------------------------------------

    def append(self, event: str, *, actor: str | None = None, voice: str | None = None,
               data: dict[str, Any] | None = None, personal: dict[str, Any] | None = None) -> AuditRecord:
        """Add a record at the end of the chain and return it; `personal` is kept apart so it can be erased."""
        if not event or any(ch in event for ch in "\r\n"):
            raise AuditError("an audit event needs a one-line name, e.g. 'voice.create'")
        with self._locked():
            return self._append_locked(event, actor, voice, dict(data or {}), personal)

    def hash_text(self, text: str) -> str:
        """A digest of synthesized text for `synthesis` records (keyed with the audit key when there is one)."""
        payload = text.encode("utf-8")
        if self.key is not None:
            return "hmac-sha256:" + hmac.new(self.key, payload, hashlib.sha256).hexdigest()
        return "sha256:" + hashlib.sha256(payload).hexdigest()

    def erase(self, voice_id: str, actor: str | None = None) -> int:
        """Remove the personal fields of every record about `voice_id`, keep the chain; returns how many."""
        with self._locked():
            lines = self._read_lines()
            erased, kept = 0, []
            for number, text in enumerate(lines, 1):
                body = _parse(text, number, self.path)
                if body.get("voice") == voice_id and "personal" in body:
                    del body["personal"]
                    erased += 1
                    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                kept.append(text)
            if erased:
                self._rewrite(kept)
            self._append_locked("audit.erase", actor, voice_id, {"records": erased}, None)
        return erased

    # -- reading ---------------------------------------------------------------------------------

    @property
    def can_open(self) -> bool:
        """Whether this log was given the key that opens sealed personal fields."""
        return self._cipher is not None

    def readable(self, record: AuditRecord) -> AuditRecord:
        """The record with sealed personal fields opened (AuditError without the key they were sealed with)."""
        if record.personal is None or "sealed" not in record.personal:
            return record
        if self._cipher is None:
            raise AuditError(f"record {record.seq}: its personal fields are sealed; give the voice key to read them")
        from myna.voices.crypto import VoiceKeyError

        try:
            data = self._cipher.open(base64.b64decode(record.personal["sealed"]), _context(record.seq, record.voice))
        except (VoiceKeyError, ValueError) as exc:
            raise AuditError(f"record {record.seq}: its personal fields do not open with this key ({exc})") from exc
        return AuditRecord(**{**asdict(record), "personal": {"salt": record.personal["salt"],
                                                             "fields": json.loads(data)}})

    def records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first (AuditError on a line that is not a record)."""
        for number, text in enumerate(self._read_lines(), 1):
            yield _record(_parse(text, number, self.path), number, self.path)

    def head(self) -> dict[str, Any]:
        """The head anchor: {"seq", "hash"} of the last record (seq 0 and the genesis hash when empty)."""
        try:
            return json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"seq": 0, "hash": GENESIS, "mac": None}
        except (OSError, ValueError) as exc:
            raise AuditError(f"{self.head_path}: unreadable head anchor ({exc})") from exc

    def verify(self, expect_head: str | None = None) -> VerifyReport:
        """Check every line: its hash, its link to the one before, its number, its personal commitment, and the head."""
        report = VerifyReport()
        prev, seq = GENESIS, 0
        if not self.path.exists():  # a mistyped path must not pass as an empty, intact log
            report.problems.append(f"{self.path}: no audit log here (nothing was ever recorded, or it was deleted)")
            self._check_head(report, 0, prev, expect_head)
            return report
        try:
            lines = self._read_lines()
        except AuditError as exc:
            report.problems.append(str(exc))
            return report
        for number, text in enumerate(lines, 1):
            try:
                record = _record(_parse(text, number, self.path), number, self.path)
            except AuditError as exc:
                report.problems.append(str(exc))
                prev, seq = "?", seq + 1
                continue
            where = f"line {number} (record {record.seq})"
            if record.seq != seq + 1:
                report.problems.append(f"{where}: expected record {seq + 1}: a record was removed, inserted or moved")
            if record.prev != prev:
                report.problems.append(f"{where}: does not follow the record before it (removed, inserted or moved)")
            if self._digest(record) != record.hash:
                report.problems.append(f"{where}: its content does not match its hash (the line was edited)")
            if record.personal is None:
                report.erased += record.commit is not None
            elif record.commit != _commitment(record.personal):
                report.problems.append(f"{where}: its personal fields do not match their commitment (edited)")
            prev, seq = record.hash, record.seq
        report.records, report.head = len(lines), prev
        self._check_head(report, seq, prev, expect_head)
        return report

    # -- internals -------------------------------------------------------------------------------

    def _append_locked(self, event: str, actor: str | None, voice: str | None, data: dict[str, Any],
                       personal: dict[str, Any] | None) -> AuditRecord:
        seq, prev = self._tail_locked()
        sealed = {"salt": secrets.token_hex(16), "fields": personal} if personal else None
        if sealed is not None and self._cipher is not None:
            plain = json.dumps(personal, ensure_ascii=False, sort_keys=True).encode("utf-8")
            blob = self._cipher.seal(plain, _context(seq + 1, voice))
            sealed = {"salt": sealed["salt"], "sealed": base64.b64encode(blob).decode("ascii")}
        draft = AuditRecord(seq + 1, _utc_now(), event, actor, voice, data,
                            _commitment(sealed) if sealed else None, prev, "", sealed)
        record = AuditRecord(**{**asdict(draft), "hash": self._digest(draft)})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with _open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "a") as handle:
                handle.write(record.line() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._write_head(record.seq, record.hash)
        except (OSError, TypeError, ValueError) as exc:
            raise AuditError(f"{self.path}: could not append to the audit log ({exc})") from exc
        return record

    def _tail_locked(self) -> tuple[int, str]:
        """Number and hash of the last record; the head anchor must agree (or lag by the one record a crash
        between writing a line and its anchor can leave, which is then re-anchored)."""
        last = self._last_line()
        head = self.head()
        if last is None:
            if head.get("seq", 0) != 0:
                raise AuditError(f"{self.path}: the log is empty but its head anchor says {head['seq']} records; "
                                 "run `myna audit verify`")
            return 0, GENESIS
        record = _record(_parse(last, -1, self.path), -1, self.path)
        if (head.get("seq"), head.get("hash")) == (record.seq, record.hash) and self._head_mac_ok(head):
            return record.seq, record.hash
        crashed = (head.get("seq"), head.get("hash")) == (record.seq - 1, record.prev) and self._head_mac_ok(head)
        if crashed and self._digest(record) == record.hash:
            self._write_head(record.seq, record.hash)
            return record.seq, record.hash
        raise AuditError(f"{self.path}: the last record does not match the head anchor; the log may have been cut "
                         "or edited: run `myna audit verify` before appending")

    def _check_head(self, report: VerifyReport, seq: int, last: str, expect_head: str | None) -> None:
        if not self.head_path.exists():
            if seq:
                report.problems.append(f"{self.head_path}: the head anchor is missing")
        else:
            try:
                head = self.head()
            except AuditError as exc:
                report.problems.append(str(exc))
                return
            if (head.get("seq"), head.get("hash")) != (seq, last):
                report.problems.append(
                    f"the head anchor names record {head.get('seq')} ({str(head.get('hash'))[:12]}...), the log ends at "
                    f"record {seq}: records were cut off the end, or the log was rewritten")
            elif not self._head_mac_ok(head):
                report.problems.append("the head anchor's MAC does not match (written without the audit key)")
        if expect_head is not None and expect_head not in (last, f"{seq}:{last}"):
            if not any(r == expect_head for r in _hashes(self)):
                report.problems.append(f"the expected head {expect_head[:16]}... is not in the log: it was rewritten")

    def _digest(self, record: AuditRecord) -> str:
        body = {name: getattr(record, name) for name in _CHAINED}
        payload = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        if self.key is not None:
            return hmac.new(self.key, payload, hashlib.sha256).hexdigest()
        return hashlib.sha256(payload).hexdigest()

    def _head_mac(self, seq: int, digest: str) -> str | None:
        if self.key is None:
            return None
        return hmac.new(self.key, f"head:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()

    def _head_mac_ok(self, head: dict[str, Any]) -> bool:
        expected = self._head_mac(head.get("seq", 0), head.get("hash", GENESIS))
        return expected is None or hmac.compare_digest(str(head.get("mac")), expected)

    def _write_head(self, seq: int, digest: str) -> None:
        text = json.dumps({"seq": seq, "hash": digest, "mac": self._head_mac(seq, digest)}) + "\n"
        tmp = self.head_path.with_name(f".{self.head_path.name}.{os.getpid()}.tmp")
        with _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.head_path)

    def _rewrite(self, lines: list[str]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "w") as handle:
                handle.writelines(line + "\n" for line in lines)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, self.path.stat().st_mode & 0o777)
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise AuditError(f"{self.path}: could not rewrite the log for erasure ({exc})") from exc

    def _read_lines(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"{self.path}: cannot read the audit log ({exc})") from exc
        return [line for line in text.split("\n") if line.strip()]

    def _last_line(self) -> str | None:
        try:
            with open(self.path, "rb") as handle:
                end = handle.seek(0, os.SEEK_END)
                block, data = 4096, b""
                while end > 0 and data.count(b"\n") < 2:
                    start = max(0, end - block)
                    handle.seek(start)
                    data = handle.read(end - start) + data
                    end = start
        except FileNotFoundError:
            return None
        lines = [line for line in data.split(b"\n") if line.strip()]
        return lines[-1].decode("utf-8") if lines else None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = _open_private(self.lock_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "a")
        except OSError as exc:
            raise AuditError(f"{self.lock_path}: cannot open the audit lock ({exc})") from exc
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def record_synthesis(log: AuditLog, *, voice: str | None, actor: str | None, text: str, payload: int | str | None,
                     **details: Any) -> AuditRecord:
    """Log one synthesis: voice, key name, text digest and watermark payload (plus e.g. format, seconds)."""
    data = {"text_hash": log.hash_text(text), "chars": len(text), "watermark": payload, **details}
    return log.append("synthesis", actor=actor, voice=voice, data=data)


def _context(seq: int, voice: str | None) -> str:
    """What sealed personal fields are bound to: their record (a sealed blob moved to another record does not open)."""
    return f"myna audit personal {seq} {voice or ''}"


def _open_private(path: Path, flags: int, mode: str):
    """A text file opened with `flags`, created readable by its owner only (0600)."""
    return open(os.open(path, flags, 0o600), mode, encoding="utf-8")


def _hashes(log: AuditLog) -> Iterator[str]:
    for record in log.records():
        yield record.hash
        yield f"{record.seq}:{record.hash}"


def _commitment(personal: dict[str, Any]) -> str:
    payload = json.dumps(personal, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def _parse(text: str, number: int, path: Path) -> dict[str, Any]:
    where = f"line {number}" if number > 0 else "the last line"
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise AuditError(f"{path}: {where} is not JSON ({exc.args[0]})") from exc
    if not isinstance(body, dict):
        raise AuditError(f"{path}: {where} is not a JSON object")
    return body


def _record(body: dict[str, Any], number: int, path: Path) -> AuditRecord:
    try:
        return AuditRecord(seq=int(body["seq"]), time=str(body["time"]), event=str(body["event"]), actor=body["actor"],
                           voice=body["voice"], data=dict(body["data"]), commit=body["commit"], prev=str(body["prev"]),
                           hash=str(body["hash"]), personal=body.get("personal"))
    except (KeyError, TypeError, ValueError) as exc:
        where = f"line {number}" if number > 0 else "the last line"
        raise AuditError(f"{path}: {where} is not an audit record (missing or bad {exc})") from exc


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
