"""Errors -> JSON responses. Every error body has upstream api_v2's `message` and OpenAI's `error` object."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from myna.errors import Cancelled, InputError, MynaError

log = logging.getLogger("myna.server")


class ApiError(MynaError):
    """An error with its HTTP status (and optional headers), raised by routes."""

    def __init__(self, status: int, message: str, code: str = "invalid_request", headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


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
    if type(exc).__name__ == "UnknownVoiceError":
        return 404, "unknown_voice", {}
    if isinstance(exc, InputError | MynaError):
        return 400, "invalid_request", {}
    return 500, "internal_error", {}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a JSON response."""

    @app.exception_handler(MynaError)
    async def _myna(request: Request, exc: MynaError) -> JSONResponse:
        status, code, headers = status_of(exc)
        if status >= 500:
            log.error("request failed: %s", exc)
        return error_response(status, str(exc), code, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422 if request.url.path.startswith("/v1") else 400, _validation_message(exc), "invalid_request")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "http_error", getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); please report it", "internal_error")
