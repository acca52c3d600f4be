"""The request's one log record: what the gate (server/gate.py) writes as its JSON line and handlers annotate.

Kept apart from the gate so that error handlers and routes can annotate it without importing the
middleware (which imports them).
"""

from __future__ import annotations

import traceback

RECORD_KEY = "myna.request"  # scope key of the request's log record, which handlers annotate


def key_name(scope: dict) -> str | None:
    """The name of the API key that was accepted for this request (None when auth is off)."""
    return scope.get(RECORD_KEY, {}).get("key")


def is_admin(scope: dict) -> bool:
    """Whether this request's key has the admin scope (consent records and who registered a voice are admin-only)."""
    return bool(scope.get(RECORD_KEY, {}).get("admin"))


def note_error(scope: dict, status: int, code: str, message: str, exc: BaseException | None = None) -> None:
    """Attach an error to the request's log line (one line per request: handlers never log by themselves)."""
    record = scope.get(RECORD_KEY)
    if record is None:
        return
    record.update(error_status=status, code=code, error=message)
    if exc is not None:
        record["traceback"] = "".join(traceback.format_exception(exc))
