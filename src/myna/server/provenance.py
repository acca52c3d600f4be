"""What each synthesis leaves behind: the watermark payload its audio carries and its `synthesis` audit record.

Every synthesis route (/tts, /v1/audio/speech and its WebSocket) makes one `Provenance` before it
queues any work. Its `payload` is what the engine embeds in every chunk (the routes' run functions
pass `engine_payload` as `watermark_payload`) and what the audit record names, so a clip found later
leads to its record. `payload_for` is the one place that chooses payloads: while the watermark is on
every clip carries 0 for now; None means the operator turned the watermark off (MYNA_WATERMARK=0).

The record is appended once per request: for a cache hit before the answer, else while the job
runs (so the first chunk does not wait for the disk: an append with its two fsyncs takes ~16 ms on
a busy 2-core machine), and no audio leaves before it is written. A log that cannot be written
fails the request (`AuditError`, 500 `audit_error`): no audio leaves without its record. A request
that fails after its job started keeps its record (it names what was asked, not what was heard).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from myna.audit import AuditLog, record_synthesis
from myna.config import Settings


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

    def record(self, audit: AuditLog, **details: Any) -> None:
        """Append the `synthesis` record: voice, key, text digest, payload, and `details` (format, cache, ...)."""
        extra: dict[str, Any] = {"route": self.route, "request": self.request, **details}
        if self.reference is not None:
            extra["reference"] = self.reference
        record_synthesis(audit, voice=self.voice, actor=self.actor, text=self.text, payload=self.payload, **extra)


def payload_for(settings: Settings) -> int | None:
    """The watermark payload of a new synthesis (the hook: one place to make payloads per request or key)."""
    return 0 if settings.watermark else None


def provenance(settings: Settings, route: str, voice: str | None, text: str, actor: str | None, request: str,
               reference: str | None = None) -> Provenance:
    """The provenance of a new synthesis request."""
    return Provenance(route, voice, actor, text, request, payload_for(settings), reference)
