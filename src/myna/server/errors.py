"""Errors -> JSON responses. Every error body has upstream api_v2's `message` and OpenAI's `error` object.

Handlers never log by themselves: they attach the error to the request's one log line (see request_record.py and gate.py).
Messages leave the server without its absolute paths or Python object reprs (`public_message`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from myna.errors import Cancelled, InputError, MynaError, ServerFault
from myna.server.request_record import note_error

_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


class ApiError(MynaError):
    """An error with its HTTP status (and optional headers), raised by routes."""

    def __init__(self, status: int, message: str, code: str = "invalid_request", headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


class ClientGone(Exception):
    """The client closed the connection before its answer was ready (accounted for as 499)."""


def private_roots(folders: Iterable[Path | str | None]) -> tuple[str, ...]:
    """The absolute names (as given and resolved) of server folders that messages must not show, longest first."""
    names = {tempfile.gettempdir()}
    for folder in folders:
        if folder is not None:
            names |= {str(Path(folder).expanduser()), str(Path(folder).expanduser().resolve())}
    return tuple(sorted((n.rstrip("/") for n in names if len(n.rstrip("/")) > 1), key=len, reverse=True))


def public_message(message: str, roots: Iterable[str] = ()) -> str:
    """A message fit for a client: object reprs dropped, paths under server folders cut to the part below them."""
    message = _OBJECT_REPR.sub("the data", message)
    for root in roots:
        message = message.replace(root + "/", "").replace(root, ".")
    return message


def error_response(status: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    """The JSON body of an error: {"message", "error": {"message", "type", "code"}}."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"message": message, "error": {"message": message, "type": kind, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: Exception) -> tuple[int, str, dict]:
    """HTTP status, code and headers for an exception raised while serving a request."""
    from myna.server.worker import Busy, Timeout

    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.headers
    if isinstance(exc, Busy):
        return 503, "busy", {"Retry-After": "1"}
    if isinstance(exc, Timeout):
        return 504, "timeout", {}
    if isinstance(exc, Cancelled):
        return 499, "cancelled", {}
    from myna.voices.registry import UnknownVoiceError, VoiceNameTaken

    if isinstance(exc, UnknownVoiceError):
        return 404, "unknown_voice", {}
    if isinstance(exc, VoiceNameTaken):
        return 409, "name_taken", {}
    if isinstance(exc, ServerFault):
        return exc.status, exc.code, {}
    if isinstance(exc, InputError):
        return 400, "invalid_request", {}
    if isinstance(exc, MynaError):  # model files, checkpoints, keys: the server's side, not the request's
        return 500, "server_error", {}
    return 500, "internal_error", {}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _answer(request: Request, status: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    message = public_message(message, request.app.state.service.private_roots)
    note_error(request.scope, status, code, message)
    return error_response(status, message, code, headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a JSON response."""

    @app.exception_handler(MynaError)
    async def _myna(request: Request, exc: MynaError) -> JSONResponse:
        status, code, headers = status_of(exc)
        return _answer(request, status, str(exc), code, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status = 422 if request.url.path.startswith("/v1") else 400
        return _answer(request, status, _validation_message(exc), "invalid_request")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = getattr(exc, "code", "http_error")
        return _answer(request, exc.status_code, str(exc.detail), code, getattr(exc, "headers", None))
