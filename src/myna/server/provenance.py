"""What each synthesis leaves behind: the watermark payload its audio carries and its `synthesis` audit record.

Every synthesis route (/tts, /v1/audio/speech and its WebSocket) makes one `Provenance` before it
queues any work. Its `payload` is what the engine embeds in every chunk (the routes' run functions
pass `engine_payload` as `watermark_payload`) and what the audit record names (`data.watermark`), so
a clip found later leads to its record: `myna watermark detect` reads the payload, `myna audit find
--payload N` prints the record (key, voice, time, request id). None means the operator turned the
watermark off (MYNA_WATERMARK=0); no request field can.

Payloads: `payload_for` draws a uniformly random non-zero 32-bit value per request (`secrets`).
Random, not a counter, because several server processes may share one log (no coordination
needed, and the payload is known before the job starts, while the record's sequence number is
not) and because anyone can read a payload (the detector's key is public): a counter would tell
them how many clips the service made and in what order. Non-zero, because 0 is what the CLI and the
Python API embed by default: a payload of 0 says the clip did not come from this service's HTTP API.
The price is collisions. Over a log of n synthesis records a given payload is shared by another
record with probability about n / 2**32: 0.02% at a million requests, 2.3% at a hundred million,
so a look-up nearly always finds one record, and when it finds more the time, voice and text
digest tell them apart. (Some pair of records will share a payload once n passes ~77,000, a 50%
chance then; that matters only if payloads were meant as unique ids, which the look-up does not need.)

Cache hits: a cached result is stored with the payload its audio carries (`pack_result`), in memory
and in Redis alike, so a hit's record names that payload (the one its audio actually carries, the
payload of the request that made it), not a new one; `made_by` names that request. An entry
without the payload (written by an older version) is treated as a miss and made again.

The record is appended once per request: for a cache hit before the answer, else while the job
runs (so the first chunk does not wait for the disk: an append with its two fsyncs takes ~16 ms on
a busy 2-core machine), and no audio leaves before it is written. A log that cannot be written
fails the request (`AuditError`, 500 `audit_error`): no audio leaves without its record. A request
that fails after its job started keeps its record (it names what was asked, not what was heard).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

from myna.audit import AuditLog, record_synthesis
from myna.config import Settings

# A cached result: this magic, a 2-byte length, a small JSON header ({"payload", "request"}), then the body.
_RESULT_MAGIC = b"MYNAR1"


@dataclass(frozen=True)
class Provenance:
    """One synthesis request as the audit trail sees it."""

    route: str
    voice: str | None  # the registered voice's id; None for a reference file (/tts)
    actor: str | None  # the API key's name (None when auth is off)
    text: str
    request: str  # the request's id in the server's log lines
    payload: int | None  # the watermark payload its audio carries; None: no watermark
    reference: str | None = None  # a /tts reference file, as the request named it

    @property
    def engine_payload(self) -> int:
        """The `watermark_payload` argument of the engine's synthesis calls."""
        return self.payload or 0

    def carrying(self, payload: int | None) -> Provenance:
        """This request answered with audio that carries `payload` (a cache hit's)."""
        return dataclasses.replace(self, payload=payload)

    def record(self, audit: AuditLog, **details: Any) -> None:
        """Append the `synthesis` record: voice, key, text digest, payload, and `details` (format, cache, ...)."""
        extra: dict[str, Any] = {"route": self.route, "request": self.request, **details}
        if self.reference is not None:
            extra["reference"] = self.reference
        record_synthesis(audit, voice=self.voice, actor=self.actor, text=self.text, payload=self.payload, **extra)


def payload_for(settings: Settings) -> int | None:
    """The watermark payload of a new synthesis: random, 1 .. 2**32 - 1 (None while the watermark is off)."""
    return secrets.randbelow(2**32 - 1) + 1 if settings.watermark else None


def provenance(settings: Settings, route: str, voice: str | None, text: str, actor: str | None, request: str,
               reference: str | None = None) -> Provenance:
    """The provenance of a new synthesis request."""
    return Provenance(route, voice, actor, text, request, payload_for(settings), reference)


def pack_result(origin: Provenance, body: bytes) -> bytes:
    """A result as the cache keeps it: the answer's bytes with the payload they carry and the request that made them."""
    header = json.dumps({"payload": origin.payload, "request": origin.request}, separators=(",", ":")).encode()
    return _RESULT_MAGIC + struct.pack(">H", len(header)) + header + body


def unpack_result(stored: bytes) -> tuple[bytes, int | None, str | None] | None:
    """(body, payload, request that made it) of a cached result; None for an entry without them (a miss)."""
    start = len(_RESULT_MAGIC) + 2
    if not stored.startswith(_RESULT_MAGIC) or len(stored) < start:
        return None
    (size,) = struct.unpack(">H", stored[len(_RESULT_MAGIC):start])
    try:
        header = json.loads(stored[start:start + size])
        payload, request = header["payload"], header["request"]
    except (ValueError, KeyError, TypeError):
        return None
    if payload is not None and not (isinstance(payload, int) and 0 <= payload < 2**32):
        return None
    return stored[start + size:], payload, request
