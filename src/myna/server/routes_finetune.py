"""Fine-tune jobs over HTTP (admin keys): create, upload recordings, prepare, correct transcripts, train,
follow progress, stop, resume, delete. The work runs in child processes (myna.server.jobs).

    POST   /v1/fine-tunes                          {name, language, base, consent_*, epochs...} -> a draft job
    POST   /v1/fine-tunes/ID/recordings            multipart `file` (one recording per request)
    DELETE /v1/fine-tunes/ID/recordings/NAME
    POST   /v1/fine-tunes/ID/prepare               slice + transcribe, then wait for review
    GET    /v1/fine-tunes/ID/transcripts           [{index, file, language, text}]
    PUT    /v1/fine-tunes/ID/transcripts           {"items": [{"index", "text"}]} corrections
    GET    /v1/fine-tunes/ID/utterances/N/audio    the prepared clip (WAV)
    POST   /v1/fine-tunes/ID/start                 train (a draft is prepared first, without review)
    POST   /v1/fine-tunes/ID/cancel | /resume
    GET    /v1/fine-tunes[/ID]                     state, queue position, progress with loss history
    DELETE /v1/fine-tunes/ID                       the job, its files and the voice it trained
    GET    /v1/fine-tunes/bases                    what a job can fine-tune
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from myna.server.errors import ApiError
from myna.server.jobs import Job, JobError, JobRunner
from myna.server.request_record import key_name
from myna.server.transcripts import clip_of, read_list

router = APIRouter()
PREFIX = "/v1/fine-tunes"


class FineTuneRequest(BaseModel):
    """A new fine-tune job; options left out take `myna train`'s defaults."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      description="name of the voice to train: letters, digits, '_', '.', '-' (1-64)")
    language: str = Field("", pattern=r"^(|en|zh|ja)$", description="spoken language (en, zh, ja); empty: detect")
    base: str = Field("server", max_length=64, description="one of GET /v1/fine-tunes/bases")
    consent_subject: str = Field(..., min_length=1, max_length=500, description="whose voice the recordings are")
    consent_statement: str = Field(..., min_length=1, max_length=4000, description="what they agreed to")
    consent_obtained_by: str | None = Field(None, max_length=500)
    sovits_epochs: int | None = Field(None, ge=1, le=1000)
    gpt_epochs: int | None = Field(None, ge=1, le=1000)
    sovits_batch: int | None = Field(None, ge=1, le=64)
    gpt_batch: int | None = Field(None, ge=1, le=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class Correction(BaseModel):
    """A corrected transcript."""

    index: int = Field(..., ge=0)
    text: str = Field(..., max_length=2000)


class Corrections(BaseModel):
    """Transcripts to correct."""

    items: list[Correction] = Field(..., max_length=10000)


def _runner(request: Request) -> JobRunner:
    return request.app.state.jobs


def bases(request: Request) -> list[dict]:
    """What a job may start from: the served model folder, pulled versions, and training from scratch."""
    settings = request.app.state.service.settings
    out = []
    if settings.model_dir is not None:
        out.append({"id": "server", "label": f"the served models ({settings.model_version or 'v2'})"})
    try:
        from myna.weights.catalog import VERSIONS
        from myna.weights.store import ModelStore

        pulled = [s.name for s in ModelStore(settings.models_dir).statuses() if s.state != "incomplete"]
        out += [{"id": v, "label": f"pulled {v}"} for v in pulled if v in VERSIONS]
    except Exception:  # noqa: BLE001 - an unreadable model store only hides those choices
        pass
    out.append({"id": "preset:small", "label": "a new small model from scratch (hours of speech, days on a CPU)"})
    return out


def _call(function, *args, **kwargs):
    """Run a runner method, turning its JobError into the API's error."""
    try:
        return function(*args, **kwargs)
    except JobError as exc:
        raise ApiError(exc.status, str(exc), exc.code) from None


@router.get(PREFIX + "/bases")
async def list_bases(request: Request) -> dict:
    """The bases a job can fine-tune."""
    return {"object": "list", "data": bases(request)}


@router.post(PREFIX, status_code=201)
async def create_job(request: Request, body: FineTuneRequest) -> dict:
    """Create a draft job; upload recordings next."""
    allowed = {b["id"] for b in bases(request)}
    if body.base not in allowed and not (body.base.startswith("preset:") and body.base[7:].isidentifier()):
        raise ApiError(400, f"base {body.base!r} is not available; choose one of {', '.join(sorted(allowed))}")
    if not body.consent_subject.strip() or not body.consent_statement.strip():
        raise ApiError(400, "consent is required: give consent_subject (whose voice) and consent_statement "
                       "(what they agreed to)", "consent_required")
    options = {k: getattr(body, k) for k in ("sovits_epochs", "gpt_epochs", "sovits_batch", "gpt_batch", "seed")
               if getattr(body, k) is not None}
    consent = {"subject": body.consent_subject.strip(), "statement": body.consent_statement.strip(),
               "obtained_by": (body.consent_obtained_by or "").strip() or None}
    job = Job("", body.name, body.language, body.base, options, consent, created_by=key_name(request.scope))
    runner = _runner(request)
    return runner.view(_call(runner.create, job))


@router.get(PREFIX)
async def list_jobs(request: Request) -> dict:
    """Every job, newest first."""
    runner = _runner(request)
    jobs = sorted(runner.jobs.values(), key=lambda j: j.created_at, reverse=True)
    return {"object": "list", "data": [runner.view(j) for j in jobs]}


@router.get(PREFIX + "/{job_id}")
async def get_job(request: Request, job_id: str) -> dict:
    """One job with its progress and loss history."""
    runner = _runner(request)
    return runner.view(_call(runner.get, job_id))


@router.delete(PREFIX + "/{job_id}", status_code=204)
async def delete_job(request: Request, job_id: str) -> Response:
    """Erase a job, its recordings and prepared data, and the voice it trained."""
    await asyncio.to_thread(_call, _runner(request).delete, job_id)
    return Response(status_code=204)


@router.post(PREFIX + "/{job_id}/recordings")
async def add_recording(request: Request, job_id: str,
                        file: Annotated[UploadFile, File(description="a recording: wav, flac, mp3, ogg, m4a, ...")]) -> dict:
    """Keep one uploaded recording with the job."""
    runner, limit = _runner(request), request.app.state.service.settings.max_upload_bytes
    _call(runner.get, job_id)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"the recording is larger than {limit} bytes; split it or upload it compressed",
                       "upload_too_large")
    if not data:
        raise ApiError(400, "the recording is empty")
    job = await asyncio.to_thread(_call, runner.add_recording, job_id, file.filename or "recording.wav", data)
    return runner.view(job)


@router.delete(PREFIX + "/{job_id}/recordings/{name}")
async def remove_recording(request: Request, job_id: str, name: str) -> dict:
    """Drop one uploaded recording of a draft job."""
    runner = _runner(request)
    return runner.view(_call(runner.remove_recording, job_id, name))


@router.post(PREFIX + "/{job_id}/prepare")
async def prepare(request: Request, job_id: str) -> dict:
    """Slice and transcribe the recordings; the job then waits for its transcripts to be checked."""
    runner = _runner(request)
    return runner.view(_call(runner.prepare, job_id))


@router.post(PREFIX + "/{job_id}/start")
async def start(request: Request, job_id: str) -> dict:
    """Start training (queued while another job runs on this machine)."""
    runner = _runner(request)
    return runner.view(_call(runner.start_training, job_id))


@router.post(PREFIX + "/{job_id}/cancel")
async def cancel(request: Request, job_id: str) -> dict:
    """Stop the job; training saves its last step first."""
    runner = _runner(request)
    return runner.view(_call(runner.cancel, job_id))


@router.post(PREFIX + "/{job_id}/resume")
async def resume(request: Request, job_id: str) -> dict:
    """Queue a stopped or failed job again."""
    runner = _runner(request)
    return runner.view(_call(runner.resume, job_id))


@router.get(PREFIX + "/{job_id}/transcripts")
async def transcripts(request: Request, job_id: str) -> dict:
    """The prepared utterances and their transcripts."""
    path = _call(_runner(request).prepared_list, job_id)
    return {"object": "list", "data": [u.to_dict() for u in read_list(path)]}


@router.put(PREFIX + "/{job_id}/transcripts")
async def correct_transcripts(request: Request, job_id: str, body: Corrections) -> dict:
    """Correct transcripts in place (not while the job runs or waits to run)."""
    changes = {c.index: c.text for c in body.items}
    items = await asyncio.to_thread(_call, _runner(request).correct_transcripts, job_id, changes)
    return {"object": "list", "data": [u.to_dict() for u in items]}


@router.get(PREFIX + "/{job_id}/utterances/{index}/audio")
async def utterance_audio(request: Request, job_id: str, index: int) -> FileResponse:
    """The prepared clip of one utterance, to listen to while checking its transcript."""
    path = _call(_runner(request).prepared_list, job_id)
    return FileResponse(clip_of(path, index), media_type="audio/wav")
