"""The ASGI middleware in front of every HTTP route: credentials, body limits, one log line and one metric sample.

Order matters. Credentials are checked from the headers before any byte of the body is read (a
20 MB upload without a valid key costs the server nothing); a body over its limit is refused with
413 whether it declares its length or arrives chunked. Whatever happens next (an answer, an error
handled by a route, an unexpected exception, a client that goes away) the request ends as exactly
one JSON log line and one sample of `myna_requests_total` and `myna_request_seconds`; an unexpected
exception becomes a 500 JSON answer with its traceback as a field of that line, never a bare
traceback on stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from myna.server import errors
from myna.server.auth import required_scope
from myna.server.request_record import RECORD_KEY, note_error

log = logging.getLogger("myna.server")

_FRAMING_BYTES = 64 * 1024  # room for multipart framing and form fields around an upload
_ROUTES = {"/tts", "/v1/audio/speech", "/v1/models", "/v1/voices", "/health", "/ready", "/metrics", "/admin/reload"}


class BodyTooLarge(HTTPException):
    """The request body passed its limit while being read (FastAPI passes HTTPExceptions through as they are)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.code = "body_too_large"


def route_label(path: str) -> str:
    """The metrics label of a path (a bounded set: ids never become labels)."""
    if path in _ROUTES:
        return path
    if path.startswith("/v1/fine-tunes"):
        return "/v1/fine-tunes"
    return "/v1/voices/{id}" if path.startswith("/v1/voices/") else "other"


class RequestGate:
    """Check credentials and body size, then run the app and account for the request whatever its outcome."""

    def __init__(self, app, service_of: Callable[[], object]):
        self.app = app
        self.service_of = service_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service = self.service_of()
        started = time.monotonic()
        path, method = scope["path"], scope.get("method", "GET")
        record: dict = {"id": uuid.uuid4().hex[:12]}
        scope[RECORD_KEY] = record
        sent = {"status": 0, "complete": False}

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                sent["complete"] = True
            await send(message)

        cancelled = False
        try:
            headers = Headers(scope=scope)
            needed = required_scope(method, path)
            if needed is not None:
                record["key"] = service.auth.check_headers(headers, needed)
                record["admin"] = needed == "admin" or service.auth.allows(headers, "admin")
            limit = _body_limit(service.settings, path)
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge(limit)
            await self.app(scope, _limited(receive, limit), tracked_send)
        except asyncio.CancelledError:
            cancelled = True  # the server is stopping this task: account for it, then let it stop
            raise
        except (ClientDisconnect, errors.ClientGone):
            pass  # nobody to answer: accounted for below as 499
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer and a log line
            await _answer_failure(scope, receive, tracked_send, exc, sent["status"] != 0, service.private_roots)
        finally:
            _account(service, record, method, path, sent, time.monotonic() - started, cancelled)


def _body_limit(settings, path: str) -> int:
    """The largest body a path accepts: the upload limit for voices, else the JSON limit (plus framing)."""
    uploads = path.startswith(("/v1/voices", "/v1/ui/transcode")) or (
        path.startswith("/v1/fine-tunes/") and path.endswith("/recordings"))
    base = settings.max_upload_bytes if uploads else settings.max_body_bytes
    return base + _FRAMING_BYTES


def _limited(receive, limit: int):
    """`receive` that raises `BodyTooLarge` once the body read so far passes `limit` (chunked bodies)."""
    seen = 0

    async def limited_receive():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return limited_receive


async def _answer_failure(scope, receive, send, exc: Exception, started: bool, roots: tuple[str, ...]) -> None:
    """Answer an exception that no route handled: its own status when it has one, else 500."""
    if isinstance(exc, BodyTooLarge):
        status, code, message, headers = 413, exc.code, str(exc.detail), {}
    elif isinstance(exc, HTTPException):
        status, code, message, headers = exc.status_code, "http_error", str(exc.detail), exc.headers or {}
    elif isinstance(exc, errors.MynaError):
        status, code, headers = errors.status_of(exc)
        message = errors.public_message(str(exc), roots)
    else:
        status, code, headers = 500, "internal_error", {}
        message = f"internal error ({type(exc).__name__}); please report it"
    note_error(scope, status, code, message, None if status < 500 or isinstance(exc, errors.MynaError) else exc)
    if not started:
        await errors.error_response(status, message, code, headers)(scope, receive, send)


def _account(service, record: dict, method: str, path: str, sent: dict, seconds: float, cancelled: bool) -> None:
    """The request's one log line and its one metric sample."""
    if sent["complete"]:  # a stream can end early on an error after its headers said 200: log the error's status
        status = record.get("error_status", sent["status"]) if sent["status"] < 400 else sent["status"]
    elif sent["status"]:  # the answer began and was cut: by an error, else by the client leaving
        status = record.get("error_status", 499)
    else:
        status = record.get("error_status") or 499
    route = route_label(path)
    service.metrics.requests.labels(route, str(status)).inc()
    service.metrics.latency.labels(route).observe(seconds)
    line = {"event": "request", "id": record["id"], "method": method, "path": path, "status": status,
            "seconds": round(seconds, 4)}
    if status == 499:
        line["outcome"] = "client_disconnected" if not cancelled else "cancelled"
    for field in ("key", "code", "error", "traceback"):
        if record.get(field) is not None:
            line[field] = record[field]
    log.log(_level(status, record.get("code")), json.dumps(line, ensure_ascii=False))


def _level(status: int, code: str | None) -> int:
    """Info for answers the client caused or can retry (busy included), warning for timeouts, error for faults."""
    if status < 500 or code == "busy":
        return logging.INFO
    if status == 504:
        return logging.WARNING
    return logging.ERROR
