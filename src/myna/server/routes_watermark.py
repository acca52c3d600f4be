"""POST /v1/watermark/detect: is an uploaded clip marked by myna, and with which payload?

It answers what `myna watermark detect` prints for a file: {"file", "watermarked", "confidence",
"payload", "score"}, "file" being the uploaded file's name. The payload leads to the `synthesis`
record of the request that made the clip (`myna audit find --payload N`).

Any valid API key may ask (the `tts` scope): the detector's key is public, so the answer tells
nothing that the open `myna watermark detect` would not; the key only keeps strangers from
spending the server's CPU. The request is logged as one line like every other; no audit record is
written, because a detection neither makes audio nor touches a voice (the audit trail records what
the service did with voices and what it made; the request line already names the key and time).

The upload takes the voice upload limit (MYNA_MAX_UPLOAD_BYTES) and any format the server decodes
elsewhere (myna.audio.decode: soundfile, then ffmpeg), a WAV streamed by this server included;
audio that cannot be decoded is refused with 422 `unreadable_audio`.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from myna.audio.io import AudioError
from myna.server.errors import ApiError

router = APIRouter()
MAX_SECONDS = 600.0  # only the first 10 minutes are scanned: a 3 s excerpt is enough, and memory stays bounded


@router.post("/v1/watermark/detect")
async def detect(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio to check: any format ffmpeg reads, 3 s or more")],
) -> dict:
    """Look for myna's watermark in an uploaded clip; the same JSON object as `myna watermark detect`."""
    limit = request.app.state.service.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"the file is larger than {limit} bytes; send an excerpt (3 s is enough)",
                       "upload_too_large")
    name = file.filename or "upload"
    found = await asyncio.to_thread(_detect, data, name)
    return {"file": name, **found}


def _detect(data: bytes, name: str) -> dict:
    """The detector's answer for an uploaded file's bytes (ApiError 422 when they are not audio)."""
    from myna.audio.decode import decode
    from myna.audio.watermark import DETECT_RATE, Watermarker
    from myna.voices.audio_checks import with_data_length

    if not data:
        raise ApiError(422, f"{name}: the file is empty; send an audio file", "unreadable_audio")
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="myna-detect-") as folder:
        path = Path(folder) / ("upload" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""))
        # a streamed WAV's header states no length: soundfile reads it once completed (else only ffmpeg could)
        path.write_bytes(with_data_length(data))
        try:
            audio = decode(path, DETECT_RATE)
        except AudioError as exc:  # name the upload, not the temporary file
            message = str(exc).replace(str(path), name)
            raise ApiError(422, message, "unreadable_audio") from None
    found = Watermarker().detect(audio[: int(MAX_SECONDS * DETECT_RATE)], DETECT_RATE)
    return found.as_dict()
