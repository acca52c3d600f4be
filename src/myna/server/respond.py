"""Run a synthesis job and answer with audio: whole, or streamed as chunks arrive; cached when repeatable.

A job yields audio chunks, or `SpeechChunk`s (audio plus the words and phonemes it completes) when
timing was asked for. The answer is bare audio, OpenAI's server-sent events (with `speech.timing`
events after each audio delta when timing was asked for), or one JSON document holding the audio
(base64) and its word and phoneme timing. Errors raised before the first chunk (bad input, unknown
voice, busy, timeout) become 4xx/5xx JSON; once streaming started, a failure ends the stream. A
client that goes away cancels the job. Every answer's `synthesis` audit record is appended before
its audio leaves (provenance.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from myna.audio.encode import StreamEncoder, encode, media_type, streamable
from myna.engine.timing import PhonemeTiming, SpeechChunk, WordTiming
from myna.errors import MynaError
from myna.server.errors import ApiError, ClientGone, status_of
from myna.server.provenance import Provenance
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

    def timing(self, words: Sequence[WordTiming], phonemes: Sequence[PhonemeTiming]) -> bytes:
        """The words and phonemes the audio sent so far completes (seconds from the start of the stream)."""
        return _event({"type": "speech.timing", "words": [w.to_dict() for w in words],
                       "phonemes": [p.to_dict() for p in phonemes]})

    def done(self, seconds: float) -> bytes:
        """The closing event, with usage."""
        output = round(seconds * self.TOKENS_PER_SECOND)
        usage = {"input_tokens": self.input_chars, "output_tokens": output, "total_tokens": self.input_chars + output}
        return _event({"type": "speech.audio.done", "usage": usage})


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


@dataclass(frozen=True)
class Reply:
    """How a synthesis is answered: its audio format, whether it streams, and how the audio is framed.

    `events`: OpenAI's server-sent events instead of bare audio. `timestamps`: with events, a
    `speech.timing` event after each audio delta; without, one JSON document (never streamed):
    `{"format", "duration", "audio": base64 of the file, "words", "phonemes"}`. `out_rate`: the
    rate of wav/pcm bytes (default: the model's); `wav_length`: the data length a streamed WAV
    header states.
    """

    fmt: str
    stream: bool
    wav_length: int = 0
    out_rate: int | None = None
    events: SpeechEvents | None = None
    timestamps: bool = False

    @property
    def document(self) -> bool:
        """Whether the answer is the JSON document of audio and timing."""
        return self.timestamps and self.events is None

    @property
    def streamed(self) -> bool:
        """Whether chunks leave as they are made."""
        return self.stream and streamable(self.fmt) and not self.document

    @property
    def media_type(self) -> str:
        """The answer's MIME type."""
        if self.document:
            return "application/json"
        return self.events.media_type if self.events is not None else media_type(self.fmt)


def parts(item: np.ndarray | SpeechChunk) -> tuple[np.ndarray, list[WordTiming], list[PhonemeTiming]]:
    """Audio, words and phonemes of one chunk a job yielded (bare audio has no timing)."""
    if isinstance(item, SpeechChunk):
        return item.audio, item.words, item.phonemes
    return item, [], []


def _document(body: bytes, fmt: str, seconds: float, words: list[WordTiming], phonemes: list[PhonemeTiming]) -> bytes:
    """The JSON answer of a request with timestamps: the encoded file in base64 and its timing."""
    return json.dumps({"format": fmt, "duration": round(seconds, 3), "audio": base64.b64encode(body).decode("ascii"),
                       "words": [w.to_dict() for w in words], "phonemes": [p.to_dict() for p in phonemes]},
                      ensure_ascii=False).encode()


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


def record_soon(service, origin: Provenance, **details) -> asyncio.Future:
    """Start appending the request's `synthesis` record in a thread; await it before any audio leaves."""
    future = asyncio.ensure_future(asyncio.to_thread(origin.record, service.audit, **details))
    future.add_done_callback(_observed)  # a request that failed first does not await it: keep its error quiet
    return future


def _observed(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def audio_response(request: Request, service, run: JobRun, reply: Reply, origin: Provenance,
                         cache_key: str | None = None) -> Response:
    """Answer with the audio of `run` as `reply` says; `cache_key` (repeatable requests) enables the result cache.

    `origin.voice` (a registered voice) ties the job to its voice: erasing the voice stops it.
    """
    started = time.monotonic()
    route, voice_id = origin.route, origin.voice
    fresh = "no-cache" in request.headers.get("cache-control", "")  # the client asks for new audio
    if cache_key is not None and not fresh:
        cached = await asyncio.to_thread(service.cache.get, cache_key)
        if cached is not None:
            await asyncio.to_thread(origin.record, service.audit, format=reply.fmt, stream=reply.streamed, cache="hit")
            service.metrics.first_chunk.labels(route).observe(time.monotonic() - started)
            return Response(cached, media_type=reply.media_type, headers={"X-Myna-Cache": "hit"})
    cache_state = "miss" if cache_key else "off"
    job = service.pool.submit(run, service.settings.request_timeout, voice_id)
    # The record is written while the job runs (the first chunk does not wait for the disk), and no audio
    # leaves before it is: a log that cannot be written fails the request.
    logged = record_soon(service, origin, format=reply.fmt, stream=reply.streamed, cache=cache_state)
    try:
        first = await _next(job, request)
        await logged
    except BaseException:
        job.cancel()
        raise
    service.metrics.first_chunk.labels(route).observe(time.monotonic() - started)
    rate = first[0] if first is not None else service.sampling_rate
    events = reply.events

    if not reply.streamed:
        pieces, words, phonemes = [], [], []
        chunk = first
        try:
            while chunk is not None:
                audio, chunk_words, chunk_phonemes = parts(chunk[1])
                pieces.append(audio)
                words += chunk_words
                phonemes += chunk_phonemes
                chunk = await _next(job, request)
        finally:
            job.cancel()  # no-op when finished; stops the worker when we leave early
        if voice_id is not None and not await asyncio.to_thread(service.registry.exists, voice_id):
            raise _erased(voice_id)  # erased after the last chunk: the audio is not handed out either
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        body = await asyncio.to_thread(encode, audio, rate, reply.fmt, reply.out_rate)
        seconds = audio.shape[0] / rate
        if reply.document:
            body = _document(body, reply.fmt, seconds, words, phonemes)
        elif events is not None:
            timing = events.timing(words, phonemes) if reply.timestamps else b""
            body = events.delta(body) + timing + events.done(seconds)
        if cache_key is not None:
            await asyncio.to_thread(service.store_result, cache_key, body, voice_id)
        return Response(body, media_type=reply.media_type, headers={"X-Myna-Cache": cache_state})

    try:
        encoder = StreamEncoder(reply.fmt, rate, reply.wav_length, reply.out_rate)
    except BaseException:
        job.cancel()
        raise
    frame = events.delta if events is not None else bytes
    timed = events is not None and reply.timestamps

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
                audio, words, phonemes = parts(chunk[1])
                samples += len(audio)
                piece = await asyncio.to_thread(encoder.chunk, audio)
                if piece:
                    sent.append(frame(piece))
                    yield sent[-1]
                if timed and (words or phonemes):
                    sent.append(events.timing(words, phonemes))
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

    headers = {"X-Myna-Cache": cache_state, "Cache-Control": "no-store"}
    return StreamingResponse(body(), media_type=reply.media_type, headers=headers)
