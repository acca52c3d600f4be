"""Routes of the web page: `/` and `/ui/FILE` (open to all: the page holds no data), `GET /v1/ui/config`
(what this server offers, so the page shows only what works; open, and with a key, what the key may
do) and `POST /v1/ui/transcode` (a WAV the page received -> MP3, for downloads; needs `tts`).

The page loads nothing from elsewhere: a Content-Security-Policy limits it to this server, so a
browser refuses any other address (no CDN, no fonts, no analytics).
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from myna.server.errors import ApiError

router = APIRouter()
STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}
# upstream api_v2's defaults, which /tts applies to fields left out
SPEAK_DEFAULTS = {"top_k": 15, "top_p": 1.0, "temperature": 1.0, "repetition_penalty": 1.35, "speed_factor": 1.0,
                  "fragment_interval": 0.3, "text_split_method": "cut5", "seed": -1}
PROSODY_FIELDS = ("pitch", "volume")
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC / "index.html", media_type=_TYPES[".html"], headers=_HEADERS)


@router.get("/ui/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    """A file of the page (only the files in its folder)."""
    path = STATIC / name
    if not re.fullmatch(r"[a-z0-9_-]+\.[a-z]+", name) or path.suffix not in _TYPES or not path.is_file():
        raise ApiError(404, f"no such file of the page: {name}", "not_found")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


def _route_exists(request: Request, pattern: str, method: str) -> bool:
    """Whether the app has a route whose path matches `pattern` (a regex) for `method` (from its OpenAPI
    description, which lists every included route and is built once)."""
    paths = request.app.openapi().get("paths", {})
    return any(re.fullmatch(pattern, path) and method.lower() in operations for path, operations in paths.items())


@router.get("/v1/ui/config")
async def config(request: Request) -> dict:
    """What the page may offer on this server: auth, the consent flow, optional features, limits, defaults."""
    from myna.engine.textprep import LANGUAGES
    from myna.server.schemas import TTSRequest
    from myna.text.split import UPSTREAM_ALIASES

    service = request.app.state.service
    settings = service.settings
    auth = service.auth
    key = None
    if auth.enabled and (request.headers.get("authorization") or request.headers.get("x-api-key")):
        scopes = [s for s in ("tts", "admin") if auth.allows(request.headers, s)]
        key = {"valid": bool(scopes), "scopes": scopes}
    # captcha consent only once the server has its challenge route; record mode otherwise
    captcha = _route_exists(request, r"/v1/voices/consent-challenge", "POST")
    consent_mode = "captcha" if captcha and getattr(settings, "consent_mode", "record") == "captcha" else "record"
    fields = TTSRequest.model_fields
    return {
        "auth": {"required": auth.enabled, "key": key},
        "consent_mode": consent_mode,
        "features": {
            "rename": _route_exists(request, r"/v1/voices/\{[^}/]+\}", "PATCH"),
            "references": _route_exists(request, r"/v1/voices/\{[^}/]+\}/references", "POST"),
            "prosody": [name for name in PROSODY_FIELDS if name in fields],
            "emotion": "emotion" in fields,
            "fine_tunes": _route_exists(request, r"/v1/fine-tunes", "POST"),
        },
        "languages": list(LANGUAGES),
        "split_methods": list(UPSTREAM_ALIASES),
        "defaults": SPEAK_DEFAULTS,
        "limits": {"max_text_chars": settings.max_text_chars, "max_upload_bytes": settings.max_upload_bytes},
    }


@router.post("/v1/ui/transcode")
async def transcode(request: Request, format: str = "mp3") -> Response:
    """A WAV made by this server (as the page keeps it) encoded as MP3, for a download."""
    if format != "mp3":
        raise ApiError(400, f"format {format!r} is not offered; the page asks for mp3")
    body = await request.body()
    if not body:
        raise ApiError(400, "send the WAV clip as the request body")
    data = await asyncio.to_thread(_to_mp3, body)
    return Response(data, media_type="audio/mpeg")


def _to_mp3(wav: bytes) -> bytes:
    import numpy as np
    import soundfile

    from myna.audio.encode import encode

    try:
        audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - any failure to decode is the body's, not the server's
        raise ApiError(400, f"the body is not a readable WAV clip ({type(exc).__name__})") from None
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        raise ApiError(400, "the WAV clip holds no samples")
    if not 8000 <= rate <= 192_000:
        raise ApiError(400, f"the WAV clip's rate is {rate} Hz; send 8-192 kHz audio")
    mono = np.clip(np.nan_to_num(audio.mean(axis=1), nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    if rate not in MP3_RATES:  # MP3 has nine rates: resample to the next one up (48 kHz at most)
        from myna.audio.io import resample_soxr

        target = min([r for r in MP3_RATES if r >= rate] or [48000])
        mono, rate = resample_soxr(mono, rate, target), target
    return encode(mono, rate, "mp3")
