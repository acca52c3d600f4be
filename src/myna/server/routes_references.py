"""Emotion references of registered voices: list, add, delete (`/v1/voices/{id}/references`).

A reference is another clip of the voice's speaker, labelled with an emotion (happy, sad, whisper,
free labels: myna.text.emotion_markup); a request that asks for that emotion (the `emotion` field
of /tts and /v1/audio/speech, OpenAI's `instructions`, or a `[label]` tag in the text) prompts the
GPT with it while SoVITS keeps the voice's own clip (myna.engine.emotion).

A reference is a new clip of the voice, so adding one needs the proof a new clip of the voice
needs (`PATCH /v1/voices/{id}` with a file): in `captcha` mode a consent recording of a challenge
(`challenge_id` + `consent_recording`), in `record` mode the voice's typed consent record covers it
and only the protected-speaker screen runs. Additions and removals go into the audit log
(myna.engine.consent); deleting the voice erases its references with it. Listing needs `tts`,
changes need `admin` (myna.server.auth).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from myna.server.request_record import key_name
from myna.server.routes_voices import read_upload
from myna.voices.registry_references import ReferenceRecord

router = APIRouter()


class ReferenceOut(BaseModel):
    """An emotion reference as the API shows it."""

    id: str
    voice_id: str
    emotion: str
    transcript: str
    language: str
    clip_seconds: float
    created_at: str


def reference_out(record: ReferenceRecord) -> ReferenceOut:
    """The API view of a reference record."""
    return ReferenceOut(id=record.id, voice_id=record.voice_id, emotion=record.emotion, transcript=record.transcript,
                        language=record.language, clip_seconds=round(record.clip_seconds, 3),
                        created_at=record.created_at)


@router.get("/v1/voices/{voice_id}/references")
async def list_references(request: Request, voice_id: str) -> dict:
    """The voice's emotion references, oldest first."""
    service = request.app.state.service
    records = await asyncio.to_thread(service.references.list, voice_id)
    return {"object": "list", "data": [reference_out(r).model_dump() for r in records]}


@router.post("/v1/voices/{voice_id}/references", status_code=201)
async def add_reference(
    request: Request,
    voice_id: str,
    file: Annotated[UploadFile, File(description="3-60 s of the voice's speaker in that mood (wav, flac, ogg, mp3)")],
    emotion: Annotated[str, Form(max_length=64, description="the label: neutral, happy, sad, angry, surprised, "
                                                            "fearful, calm, whisper, or a word of your own")],
    transcript: Annotated[str, Form(max_length=2000, description="what the clip says (required)")],
    language: Annotated[str | None, Form(max_length=20, description="language of the transcript (default: the "
                                                                    "voice's)")] = None,
    replace: Annotated[bool, Form(description="swap out the voice's reference with this label")] = False,
    challenge_id: Annotated[str | None, Form(max_length=200, description="captcha mode: the challenge read")] = None,
    consent_recording: Annotated[UploadFile | None, File(description="captcha mode: the speaker reading the "
                                                                    "challenge sentence")] = None,
) -> ReferenceOut:
    """Add an emotion reference; nothing is stored unless every check (consent included) passes."""
    service = request.app.state.service
    limit = service.settings.max_upload_bytes
    audio = await read_upload(file, limit, "the clip")
    recording = await read_upload(consent_recording, limit, "the consent recording")
    if language is None or not language.strip():
        language = (await asyncio.to_thread(service.registry.get, voice_id)).language
    record = await asyncio.to_thread(
        service.add_reference, voice_id, audio=audio, filename=file.filename or "upload", transcript=transcript,
        language=language, emotion=emotion, replace=replace, challenge_id=challenge_id, recording=recording,
        actor=key_name(request.scope))
    return reference_out(record)


@router.delete("/v1/voices/{voice_id}/references/{key}", status_code=204)
async def delete_reference(request: Request, voice_id: str, key: str) -> Response:
    """Erase an emotion reference (by id or label): its clip, transcript, cached prompts and results."""
    service = request.app.state.service
    await asyncio.to_thread(service.remove_reference, voice_id, key, key_name(request.scope))
    return Response(status_code=204)
