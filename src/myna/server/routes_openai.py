"""OpenAI-compatible speech: POST /v1/audio/speech, GET /v1/models, and a WebSocket at /v1/audio/speech/ws.

WebSocket protocol: the client sends JSON requests shaped like /v1/audio/speech's body (formats pcm
or wav only); the server answers each with binary audio messages, then {"type": "done"}; an error is
{"type": "error", "message": ...}. {"type": "cancel"} stops the request in flight.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import ValidationError

from myna.audio.encode import StreamEncoder
from myna.errors import MynaError
from myna.server.errors import ApiError, status_of
from myna.server.respond import SpeechEvents, audio_response
from myna.server.schemas import ModelCard, SpeechRequest
from myna.voices.registry import UnknownVoiceError

router = APIRouter()
# Every id names the loaded models (myna serves one model set); any other `model` is refused with 404.
MODEL_IDS = ("myna", "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")
PCM_RATE = 24000  # OpenAI's pcm: 24 kHz 16-bit little-endian mono


def _out_rate(fmt: str) -> int | None:
    return PCM_RATE if fmt == "pcm" else None


def _resolve_voice(service, voice: str):
    """The registered voice with this id, else with this name (names are unique, ignoring case)."""
    try:
        return service.registry.find(voice)
    except UnknownVoiceError:
        raise ApiError(404, f"unknown voice {voice!r}: create it with POST /v1/voices, or list voices with GET /v1/voices",
                       "unknown_voice") from None


def _job(service, req: SpeechRequest):
    """(run, record, cache key) of one speech request; raises on bad input before any work is queued."""
    if req.model not in MODEL_IDS:
        raise ApiError(404, f"unknown model {req.model!r}; use one of {', '.join(MODEL_IDS)} (GET /v1/models)",
                       "model_not_found")
    if not req.input.strip():
        raise ApiError(400, "input is empty: give the text to speak")
    if len(req.input) > service.settings.max_text_chars:
        raise ApiError(413, f"input is {len(req.input)} characters; the limit is {service.settings.max_text_chars}",
                       "text_too_long")
    record = _resolve_voice(service, req.voice_name)
    options = req.options(service.settings.stream_chunk_tokens)
    language = (req.language or record.language).lower()
    from myna.engine.textprep import check_language

    check_language(language)
    clip = service.registry.clip_path(record.id)
    transcript, ref_lang, text = record.transcript, record.language, req.input

    def run(synth, should_stop):
        voice = synth.voice(clip, transcript, ref_lang)
        yield from synth.stream(text, language, voice, options, should_stop)

    key = None
    if req.seed != -1:
        params = req.model_dump(exclude={"input", "model", "instructions"})
        params.update(language=language, api="openai", voice=record.id)  # one key however the voice was named
        key = service.result_key(record.id, record.version, text, params)
    return run, record, key


@router.post("/v1/audio/speech")
async def speech(request: Request, req: SpeechRequest) -> Response:
    """Speak `input` in a registered voice (OpenAI's request body; `voice` is a voice id or name)."""
    service = request.app.state.service
    run, record, key = _job(service, req)
    events = SpeechEvents(len(req.input)) if req.stream_format == "sse" else None
    return await audio_response(request, service, run, req.response_format, "/v1/audio/speech", req.stream, key,
                                record.id, wav_length=0xFFFFFFFF - 36, out_rate=_out_rate(req.response_format),
                                events=events)


@router.get("/v1/models")
async def models(request: Request) -> dict:
    """The model names /v1/audio/speech accepts (all use the loaded models)."""
    return {"object": "list", "data": [ModelCard(id=name).model_dump() for name in MODEL_IDS]}


@router.websocket("/v1/audio/speech/ws")
async def speech_ws(socket: WebSocket) -> None:
    """Bidirectional streaming: JSON requests in, binary audio chunks and JSON status out."""
    service = socket.app.state.service
    await socket.accept()
    try:
        service.auth.check(socket, "tts")
    except ApiError as exc:
        await socket.send_json({"type": "error", "message": str(exc), "status": exc.status})
        await socket.close(code=1008)
        return
    try:
        while True:
            message = await socket.receive_text()
            await _ws_request(socket, service, message)
    except WebSocketDisconnect:
        return


async def _ws_request(socket: WebSocket, service, message: str) -> None:
    try:
        payload = json.loads(message)
        if not isinstance(payload, dict):
            raise ApiError(400, "send a JSON object shaped like the /v1/audio/speech body")
        if payload.get("type") == "cancel":
            return
        payload.setdefault("response_format", "pcm")
        req = SpeechRequest.model_validate(payload)
        if req.response_format not in ("pcm", "wav"):
            raise ApiError(400, "the WebSocket sends pcm or wav; set response_format to one of them")
        run, record, _ = _job(service, req)
        job = service.pool.submit(run, service.settings.request_timeout, record.id)
    except (json.JSONDecodeError, ValidationError) as exc:
        await socket.send_json({"type": "error", "message": f"invalid request: {exc}", "status": 400})
        return
    except MynaError as exc:
        await socket.send_json({"type": "error", "message": str(exc), "status": status_of(exc)[0]})
        return
    listener = asyncio.ensure_future(socket.receive_text())
    try:
        encoder = StreamEncoder(req.response_format, service.sampling_rate, 0xFFFFFFFF - 36,
                                _out_rate(req.response_format))
        if encoder.header():
            await socket.send_bytes(encoder.header())
        while True:
            chunk_task = asyncio.ensure_future(job.next_chunk())
            done, _ = await asyncio.wait({chunk_task, listener}, return_when=asyncio.FIRST_COMPLETED)
            if listener in done:
                chunk_task.cancel()
                job.cancel()
                listener.result()  # raises WebSocketDisconnect when the client left
                await socket.send_json({"type": "cancelled"})
                return
            chunk = chunk_task.result()
            if job.stop_error is not None:
                raise job.stop_error
            if chunk is None:
                tail = encoder.finish()
                if tail:
                    await socket.send_bytes(tail)
                await socket.send_json({"type": "done"})
                return
            await socket.send_bytes(encoder.chunk(chunk[1]))
    except MynaError as exc:
        await socket.send_json({"type": "error", "message": str(exc), "status": status_of(exc)[0]})
    finally:
        job.cancel()
        if not listener.done():
            listener.cancel()
