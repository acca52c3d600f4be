"""Run a synthesis job and answer with audio: whole, or streamed as chunks arrive; cached when repeatable.

Errors raised before the first chunk (bad input, unknown voice, busy, timeout) become 4xx/5xx JSON;
once streaming started, a failure ends the stream. A client that goes away cancels the job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import numpy as np
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from myna.audio.encode import StreamEncoder, encode, media_type, streamable
from myna.errors import MynaError
from myna.server.errors import ApiError, ClientGone, status_of
from myna.server.request_record import note_error
from myna.server.worker import Job, JobRun


class SpeechEvents:
    """OpenAI's `stream_format: "sse"`: audio bytes as `speech.audio.delta` events, then `speech.audio.done`.

    Usage counts the input's characters as input tokens and the audio's semantic tokens (25 per
    second) as output tokens.
    """

    media_type = "text/event-stream"
    TOKENS_PER_SECOND = 25

    def __init__(self, input_chars: int):
        self.input_chars = input_chars

    def delta(self, audio: bytes) -> bytes:
        """One event carrying a piece of the encoded audio (base64)."""
        return _event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})

    def done(self, seconds: float) -> bytes:
        """The closing event, with usage."""
        output = round(seconds * self.TOKENS_PER_SECOND)
        usage = {"input_tokens": self.input_chars, "output_tokens": output, "total_tokens": self.input_chars + output}
        return _event({"type": "speech.audio.done", "usage": usage})


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _erased(voice_id: str) -> ApiError:
    return ApiError(404, f"voice {voice_id} was deleted while this request was in flight", "voice_deleted")


async def _next_watching(job: Job, request: Request | None) -> tuple[int, object] | None:
    """The job's next chunk; cancels the job if the client disconnects while we wait."""
    task = asyncio.ensure_future(job.next_chunk())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if done:
                return task.result()
            if request is not None and await request.is_disconnected():
                job.cancel()
                task.cancel()
                raise ClientGone("the client disconnected")
    except BaseException:
        if not task.done():
            task.cancel()
        raise


async def _next(job: Job, request: Request | None) -> tuple[int, object] | None:
    """The job's next chunk, unless the job was stopped from outside (its voice erased) since it was made."""
    chunk = await _next_watching(job, request)
    if job.stop_error is not None:
        raise job.stop_error
    return chunk


async def audio_response(
    request: Request,
    service,
    run: JobRun,
    fmt: str,
    route: str,
    stream: bool,
    cache_key: str | None = None,
    voice_id: str | None = None,
    wav_length: int = 0,
    out_rate: int | None = None,
    events: SpeechEvents | None = None,
) -> Response:
    """Answer with the audio of `run` in format `fmt`; `cache_key` (repeatable requests) enables the result cache.

    `out_rate`: the rate of wav/pcm bytes (default: the model's); `events`: wrap the audio in OpenAI's
    server-sent events instead of sending it bare.
    """
    started = time.monotonic()
    mime = events.media_type if events is not None else media_type(fmt)
    fresh = "no-cache" in request.headers.get("cache-control", "")  # the client asks for new audio
    if cache_key is not None and not fresh:
        cached = await asyncio.to_thread(service.cache.get, cache_key)
        if cached is not None:
            service.metrics.first_chunk.labels(route).observe(time.monotonic() - started)
            return Response(cached, media_type=mime, headers={"X-Myna-Cache": "hit"})
    job = service.pool.submit(run, service.settings.request_timeout, voice_id)
    try:
        first = await _next(job, request)
    except BaseException:
        job.cancel()
        raise
    service.metrics.first_chunk.labels(route).observe(time.monotonic() - started)
    rate = first[0] if first is not None else service.sampling_rate

    if not (stream and streamable(fmt)):
        pieces = []
        chunk = first
        try:
            while chunk is not None:
                pieces.append(chunk[1])
                chunk = await _next(job, request)
        finally:
            job.cancel()  # no-op when finished; stops the worker when we leave early
        if voice_id is not None and not await asyncio.to_thread(service.registry.exists, voice_id):
            raise _erased(voice_id)  # erased after the last chunk: the audio is not handed out either
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        body = await asyncio.to_thread(encode, audio, rate, fmt, out_rate)
        if events is not None:
            body = events.delta(body) + events.done(audio.shape[0] / rate)
        if cache_key is not None:
            await asyncio.to_thread(service.store_result, cache_key, body, voice_id)
        return Response(body, media_type=mime, headers={"X-Myna-Cache": "miss" if cache_key else "off"})

    try:
        encoder = StreamEncoder(fmt, rate, wav_length, out_rate)
    except BaseException:
        job.cancel()
        raise
    frame = events.delta if events is not None else bytes

    async def body() -> AsyncIterator[bytes]:
        sent: list[bytes] = []
        complete, samples = False, 0
        try:
            head = encoder.header()
            if head:
                sent.append(frame(head))
                yield sent[-1]
            chunk = first
            while chunk is not None:
                samples += len(chunk[1])
                piece = await asyncio.to_thread(encoder.chunk, chunk[1])
                if piece:
                    sent.append(frame(piece))
                    yield sent[-1]
                chunk = await _next(job, request)  # headers are sent: watch for the client leaving
            tail = await asyncio.to_thread(encoder.finish)
            if tail:
                sent.append(frame(tail))
                yield sent[-1]
            if events is not None:
                sent.append(events.done(samples / rate))
                yield sent[-1]
            complete = True
        except ClientGone:
            raise
        except Exception as exc:  # headers are gone: all we can do is end the stream early (and say so in the log)
            status, code, _ = status_of(exc)
            note_error(request.scope, status, code, f"the stream ended early: {exc}",
                       None if isinstance(exc, MynaError) else exc)
        finally:
            job.cancel()
            if complete and cache_key is not None:
                await asyncio.to_thread(service.store_result, cache_key, b"".join(sent), voice_id)

    headers = {"X-Myna-Cache": "miss" if cache_key else "off", "Cache-Control": "no-store"}
    return StreamingResponse(body(), media_type=mime, headers=headers)
