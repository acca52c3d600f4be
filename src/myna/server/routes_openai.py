"""OpenAI-compatible speech: POST /v1/audio/speech, GET /v1/models, and a WebSocket at /v1/audio/speech/ws.

WebSocket protocol: the client sends JSON requests shaped like /v1/audio/speech's body (formats pcm
or wav only); the server answers each with binary audio messages, then {"type": "done"}; an error is
{"type": "error", "message": ...}. {"type": "cancel"} stops the request in flight. With
`"timestamps": true` each audio message is followed by {"type": "speech.timing", "words": [...],
"phonemes": [...]} for the words it completes (seconds from the start of the request's audio).
"""

from __future__ import annotations

import asyncio
import json
import uuid

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import ValidationError

from myna.audio.encode import StreamEncoder
from myna.errors import MynaError
from myna.server.errors import ApiError, status_of
from myna.server.provenance import provenance
from myna.server.request_record import key_name, request_id
from myna.server.respond import Reply, SpeechEvents, audio_response, parts, record_soon
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


def _job(service, req: SpeechRequest, actor: str | None, request: str):
    """(run, provenance, cache key) of one speech request; raises on bad input before any work is queued."""
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
    origin = provenance(service.settings, "/v1/audio/speech", record.id, text, actor, request)
    payload, timed = origin.engine_payload, req.timestamps

    def run(synth, should_stop):
        voice = synth.voice(clip, transcript, ref_lang)
        if timed:  # one chunk per fragment, each with the words it completes
            yield from synth.stream_speech(text, language, voice, options, should_stop, watermark_payload=payload)
        else:
            yield from synth.stream(text, language, voice, options, should_stop, watermark_payload=payload)

    key = None
    if req.seed != -1:
        params = req.model_dump(exclude={"input", "model", "instructions"})
        params.update(language=language, api="openai", voice=record.id)  # one key however the voice was named
        key = service.result_key(record.id, record.version, text, params)
    return run, origin, key


@router.post("/v1/audio/speech")
async def speech(request: Request, req: SpeechRequest) -> Response:
    """Speak `input` in a registered voice (OpenAI's request body; `voice` is a voice id or name).

    With `timestamps`, an SSE stream carries speech.timing events; other formats answer one JSON
    document with the audio (base64) and its word timing.
    """
    service = request.app.state.service
    run, origin, key = _job(service, req, key_name(request.scope), request_id(request.scope))
    events = SpeechEvents(len(req.input)) if req.stream_format == "sse" else None
    reply = Reply(req.response_format, req.stream, wav_length=0xFFFFFFFF - 36, out_rate=_out_rate(req.response_format),
                  events=events, timestamps=req.timestamps)
    return await audio_response(request, service, run, reply, origin, key)


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
        actor = service.auth.check(socket, "tts")
    except ApiError as exc:
        await socket.send_json({"type": "error", "message": str(exc), "status": exc.status})
        await socket.close(code=1008)
        return
    try:
        while True:
            message = await socket.receive_text()
            await _ws_request(socket, service, message, actor)
    except WebSocketDisconnect:
        return


async def _ws_request(socket: WebSocket, service, message: str, actor: str | None) -> None:
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
        run, origin, _ = _job(service, req, actor, uuid.uuid4().hex[:12])
        job = service.pool.submit(run, service.settings.request_timeout, origin.voice)
        logged = record_soon(service, origin, format=req.response_format, stream=True, cache="off")
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
            await logged  # written while the job ran; no audio leaves before it
            if chunk is None:
                tail = encoder.finish()
                if tail:
                    await socket.send_bytes(tail)
                await socket.send_json({"type": "done"})
                return
            audio, words, phonemes = parts(chunk[1])
            await socket.send_bytes(encoder.chunk(audio))
            if req.timestamps and (words or phonemes):
                await socket.send_json({"type": "speech.timing", "words": [w.to_dict() for w in words],
                                        "phonemes": [p.to_dict() for p in phonemes]})
    except MynaError as exc:
        await socket.send_json({"type": "error", "message": str(exc), "status": status_of(exc)[0]})
    finally:
        job.cancel()
        if not listener.done():
            listener.cancel()
