"""Voice registry routes: create (clip + transcript + language + consent), list, get, delete.

Creating and deleting need the admin scope; listing and reading need tts, and show consent records
and the key that registered a voice to admin keys only. Storage, audio checks and
erasure are the registry's (myna.voices.registry); deletion also empties the result cache and every
worker's prompt cache for that voice (callbacks registered in app.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from myna.server.errors import ApiError
from myna.server.request_record import is_admin, key_name
from myna.server.schemas import VoiceOut
from myna.voices.registry import Consent, VoiceRecord

router = APIRouter()


def voice_out(record: VoiceRecord, admin: bool) -> VoiceOut:
    """The API view of a voice record; its consent record and who registered it only for admin keys."""
    data = dataclasses.asdict(record)
    if not admin:
        data.update(consent=None, created_by=None)
    return VoiceOut(**data)


@router.post("/v1/voices", status_code=201)
async def create_voice(
    request: Request,
    file: Annotated[UploadFile, File(description="reference clip: 3-60 s of one speaker (wav, flac, ogg, mp3)")],
    name: Annotated[str, Form(max_length=200)],
    language: Annotated[str, Form(max_length=20, description="language of the transcript: zh, en, ja, ...")],
    consent_subject: Annotated[str, Form(max_length=500, description="who is speaking in the clip")],
    consent_statement: Annotated[str, Form(max_length=4000, description="what they agreed to")],
    transcript: Annotated[str | None, Form(max_length=2000, description="what the clip says")] = None,
    consent_obtained_by: Annotated[str | None, Form(max_length=500)] = None,
) -> VoiceOut:
    """Register a voice; nothing is stored unless every check passes."""
    service = request.app.state.service
    audio = await file.read(service.settings.max_upload_bytes + 1)
    if len(audio) > service.settings.max_upload_bytes:
        raise ApiError(413, f"the clip is larger than {service.settings.max_upload_bytes} bytes; send 3-60 s of audio",
                       "upload_too_large")
    if not consent_subject.strip() or not consent_statement.strip():
        raise ApiError(400, "consent is required: give consent_subject (who speaks) and consent_statement "
                       "(what they agreed to)", "consent_required")
    consent = Consent(subject=consent_subject, statement=consent_statement, obtained_by=consent_obtained_by)
    record = await asyncio.to_thread(service.registry.create, audio, file.filename or "upload",
                                     transcript or None, language, name, consent, key_name(request.scope))
    return voice_out(record, admin=True)


@router.get("/v1/voices")
async def list_voices(request: Request) -> dict:
    """Every registered voice."""
    service = request.app.state.service
    records = await asyncio.to_thread(service.registry.list)
    admin = is_admin(request.scope)
    return {"object": "list", "data": [voice_out(r, admin).model_dump() for r in records]}


@router.get("/v1/voices/{voice_id}")
async def get_voice(request: Request, voice_id: str) -> VoiceOut:
    """One registered voice."""
    service = request.app.state.service
    return voice_out(await asyncio.to_thread(service.registry.get, voice_id), is_admin(request.scope))


@router.delete("/v1/voices/{voice_id}", status_code=204)
async def delete_voice(request: Request, voice_id: str) -> Response:
    """Erase a voice: clip, records, consent, cached prompts and cached results."""
    service = request.app.state.service
    await asyncio.to_thread(service.delete_voice, voice_id)
    return Response(status_code=204)
