"""Upstream api_v2's GET/POST /tts: same parameters, defaults, error messages and streaming behaviour.

Reference clips are read only from the configured reference folders (`--ref-dir`); a registered voice
can be named instead as `voice:ID`. Streaming mode 1 (or true) streams one chunk per text fragment;
modes 2 and 3 stream token chunks, the first after `min_chunk_length` semantic tokens (a streamed
WAV starts with a header of length 0, then raw 16-bit samples, as upstream).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from myna.engine.options import check_split_method
from myna.engine.textprep import LANGUAGES
from myna.server.errors import ApiError
from myna.server.respond import audio_response
from myna.server.schemas import TTSRequest

router = APIRouter()
_MEDIA_TYPES = ("wav", "raw", "ogg", "aac")


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _check(req: TTSRequest, max_chars: int) -> tuple[str, str, bool]:
    """Upstream's checks in upstream's order; returns (text_lang, prompt_lang, streaming)."""
    if not req.ref_audio_path:
        raise _bad("ref_audio_path is required")
    if not req.text:
        raise _bad("text is required")
    if not req.text_lang:
        raise _bad("text_lang is required")
    text_lang = req.text_lang.lower()
    if text_lang not in LANGUAGES:
        raise _bad(f"text_lang: {req.text_lang} is not supported; myna supports {', '.join(LANGUAGES)}")
    if not req.prompt_lang:
        raise _bad("prompt_lang is required")
    prompt_lang = req.prompt_lang.lower()
    if prompt_lang not in LANGUAGES:
        raise _bad(f"prompt_lang: {req.prompt_lang} is not supported; myna supports {', '.join(LANGUAGES)}")
    if req.media_type not in _MEDIA_TYPES:
        raise _bad(f"media_type: {req.media_type} is not supported")
    try:
        check_split_method(req.text_split_method)
    except Exception:
        raise _bad(f"text_split_method:{req.text_split_method} is not supported") from None
    if req.streaming_mode not in (0, 1, 2, 3):  # True == 1 and False == 0
        raise _bad("the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)")
    if len(req.text) > max_chars:
        raise ApiError(413, f"text is {len(req.text)} characters; the limit is {max_chars}: split it into several requests",
                       "text_too_long")
    return text_lang, prompt_lang, bool(req.streaming_mode) or req.return_fragment


def confine(path_text: str, ref_dirs: tuple[Path, ...]) -> Path:
    """The reference file `path_text` names, if it lies inside one of `ref_dirs` (symlinks resolved)."""
    if not ref_dirs:
        raise ApiError(403, "this server reads no reference files: start it with --ref-dir DIR, "
                       "or name a registered voice as ref_audio_path=voice:ID", "ref_path_forbidden")
    if "\x00" in path_text or len(path_text) > 4096:
        raise _bad("ref_audio_path is not a valid path")
    candidate = Path(path_text)
    tries = [candidate] if candidate.is_absolute() else [d / candidate for d in ref_dirs]
    for attempt in tries:
        resolved = attempt.resolve()
        if any(resolved.is_relative_to(d.resolve()) for d in ref_dirs):
            if not resolved.is_file():
                raise _bad(f"ref_audio_path {path_text!r}: no such file in the reference folders")
            return resolved
    raise ApiError(403, f"ref_audio_path {path_text!r} lies outside the allowed reference folders", "ref_path_forbidden")


def _file_version(paths: list[Path]) -> int:
    """A number that changes when any of the files changes (size, mtime), for result-cache keys."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    return int.from_bytes(digest.digest()[:6], "big")


async def _handle(request: Request, req: TTSRequest) -> Response:
    service = request.app.state.service
    text_lang, prompt_lang, streaming = _check(req, service.settings.max_text_chars)
    options = req.options()
    prompt_text = req.prompt_text or None
    if req.ref_audio_path.startswith("voice:"):
        record = service.registry.get(req.ref_audio_path[6:])
        ref = service.registry.clip_path(record.id)
        voice_id, version = record.id, record.version
        if prompt_text is None and record.transcript:
            prompt_text, prompt_lang = record.transcript, record.language
    else:
        ref = confine(req.ref_audio_path, service.settings.ref_dirs)
        voice_id, version = None, 0
    aux = [confine(p, service.settings.ref_dirs) for p in (req.aux_ref_audio_paths or [])]
    if voice_id is None:
        version = _file_version([ref, *aux])
    text = req.text

    def run(synth, should_stop):
        voice = synth.voice(ref, prompt_text, prompt_lang, aux)
        if streaming:
            yield from synth.stream(text, text_lang, voice, options, should_stop)
        else:
            yield synth.synthesize(text, text_lang, voice, options, should_stop)

    cache_key = None
    if options.seed != -1:
        params = req.model_dump(exclude={"text"})
        params.update(ref=str(ref), aux=[str(a) for a in aux], streaming=streaming, api="tts")
        cache_key = service.result_key(voice_id or f"file:{ref}", version, text, params)
    fmt = req.media_type
    return await audio_response(request, service, run, fmt, "/tts", streaming, cache_key, voice_id)


@router.get("/tts")
async def tts_get(request: Request, query: Annotated[TTSRequest, Query()]) -> Response:
    """Synthesize speech (upstream api_v2's query parameters)."""
    return await _handle(request, query)


@router.post("/tts")
async def tts_post(request: Request, body: TTSRequest) -> Response:
    """Synthesize speech (upstream api_v2's JSON body)."""
    return await _handle(request, body)
