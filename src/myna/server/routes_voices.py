"""Voice registry routes: consent challenge, create (clip + transcript + language + consent), list, get, change,
delete.

Consent follows MYNA_CONSENT_MODE. In `captcha` mode (the default) a new voice, or a new clip for
one, needs a consent recording: the client asks for a challenge (`POST /v1/voices/consent-challenge`),
the speaker reads its sentence, and the recording comes with the clip (`challenge_id` +
`consent_recording`); speech recognition and speaker verification must pass (myna.voices.consent).
In `record` mode the typed consent record (`consent_statement`) is kept instead. Either way a voice
too similar to a protected speaker is refused, and creation, changes and erasure go into the
audit log (myna.engine.consent).

Everything but listing and reading needs the admin scope; consent records and the key that
registered a voice are shown to admin keys only. Deletion also empties the result cache and every
worker's prompt cache for that voice and stops requests speaking with it (app.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from myna.server.errors import ApiError
from myna.server.request_record import is_admin, key_name
from myna.server.schemas import ChallengeRequest, VoiceOut
from myna.voices.registry import VoiceRecord

router = APIRouter()


def voice_out(record: VoiceRecord, admin: bool) -> VoiceOut:
    """The API view of a voice record; its consent record and who registered it only for admin keys."""
    data = dataclasses.asdict(record)
    if not admin:
        data.update(consent=None, created_by=None)
    return VoiceOut(**data)


async def _read(upload: UploadFile | None, limit: int, what: str) -> bytes | None:
    """The bytes of an uploaded file (None when none was sent); 413 past the upload limit."""
    if upload is None:
        return None
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"{what} is larger than {limit} bytes; send 3-60 s of audio", "upload_too_large")
    return data


@router.post("/v1/voices/consent-challenge")
async def consent_challenge(request: Request, body: ChallengeRequest | None = None) -> dict:
    """A sentence for the speaker to read (captcha consent mode): {id, language, text, issued_at, expires_at}."""
    service = request.app.state.service
    if service.settings.consent_mode != "captcha":
        raise ApiError(409, "this server takes typed consent records (MYNA_CONSENT_MODE=record): register a voice with "
                       "consent_subject and consent_statement; no challenge is needed", "consent_mode_record")
    challenge = await asyncio.to_thread(service.consent.issue, (body or ChallengeRequest()).language)
    return challenge.to_dict()


@router.post("/v1/voices", status_code=201)
async def create_voice(
    request: Request,
    file: Annotated[UploadFile, File(description="reference clip: 3-60 s of one speaker (wav, flac, ogg, mp3)")],
    name: Annotated[str, Form(max_length=200)],
    language: Annotated[str, Form(max_length=20, description="language of the transcript: zh, en, ja, ...")],
    consent_subject: Annotated[str, Form(max_length=500, description="who is speaking in the clip")],
    consent_statement: Annotated[str | None, Form(max_length=4000, description="record mode: what they agreed to")] = None,
    transcript: Annotated[str | None, Form(max_length=2000, description="what the clip says")] = None,
    consent_obtained_by: Annotated[str | None, Form(max_length=500)] = None,
    challenge_id: Annotated[str | None, Form(max_length=200, description="captcha mode: the challenge read")] = None,
    consent_recording: Annotated[UploadFile | None, File(description="captcha mode: the speaker reading the "
                                                                    "challenge sentence")] = None,
) -> VoiceOut:
    """Register a voice; nothing is stored unless every check (consent included) passes."""
    service = request.app.state.service
    limit = service.settings.max_upload_bytes
    audio = await _read(file, limit, "the clip")
    recording = await _read(consent_recording, limit, "the consent recording")
    captcha = service.settings.consent_mode == "captcha"
    if not consent_subject.strip() or (not captcha and not (consent_statement or "").strip()):
        raise ApiError(400, "consent is required: give consent_subject (who speaks) and consent_statement "
                       "(what they agreed to)", "consent_required")
    record = await asyncio.to_thread(
        service.register_voice, audio=audio, filename=file.filename or "upload", transcript=transcript or None,
        language=language, name=name, subject=consent_subject, statement=consent_statement,
        obtained_by=consent_obtained_by, challenge_id=challenge_id, recording=recording, actor=key_name(request.scope))
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


@router.patch("/v1/voices/{voice_id}")
async def change_voice(
    request: Request,
    voice_id: str,
    file: Annotated[UploadFile | None, File(description="a new reference clip (needs new consent proof)")] = None,
    name: Annotated[str | None, Form(max_length=200)] = None,
    language: Annotated[str | None, Form(max_length=20)] = None,
    transcript: Annotated[str | None, Form(max_length=2000, description="empty: use the clip without a transcript")] = None,
    challenge_id: Annotated[str | None, Form(max_length=200)] = None,
    consent_recording: Annotated[UploadFile | None, File()] = None,
) -> VoiceOut:
    """Change a voice's clip, name, language or transcript; its version goes up, so cached results no longer match."""
    service = request.app.state.service
    limit = service.settings.max_upload_bytes
    audio = await _read(file, limit, "the clip")
    recording = await _read(consent_recording, limit, "the consent recording")
    changes = {k: v for k, v in (("name", name), ("language", language), ("transcript", transcript)) if v is not None}
    if audio is None and not changes:
        raise ApiError(400, "nothing to change: send a new clip (file), name, language or transcript")
    record = await asyncio.to_thread(
        service.update_voice, voice_id, audio=audio, filename=(file.filename or "upload") if file else "",
        challenge_id=challenge_id, recording=recording, actor=key_name(request.scope), **changes)
    return voice_out(record, admin=True)


@router.delete("/v1/voices/{voice_id}", status_code=204)
async def delete_voice(request: Request, voice_id: str) -> Response:
    """Erase a voice: clip, records, consent, cached prompts and results, and its personal fields in the audit log."""
    service = request.app.state.service
    await asyncio.to_thread(service.delete_voice, voice_id, key_name(request.scope))
    return Response(status_code=204)
