"""Which content and speaker encoders a SoVITS model reads, and loading them by name.

Upstream's files read HuBERT-base (768 channels) and, for v2Pro/v2ProPlus, ERes2NetV2 (20480
values). Models trained from scratch by myna record theirs in the SoVITS config under "myna", e.g.
{"myna": {"content": "whisper-tiny.en", "speaker": "resemblyzer"}}; a file without it is upstream's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from myna.errors import InputError

RECORD_KEY = "myna"
HUBERT, WHISPER = "hubert", "whisper-tiny.en"
ERES2NET, RESEMBLYZER = "eres2net", "resemblyzer"
CONTENT_DIMS = {HUBERT: 768, WHISPER: 384}
SPEAKER_DIMS = {ERES2NET: 20480, RESEMBLYZER: 256}


def encoder_record(sovits_config: dict[str, Any]) -> dict[str, str]:
    """The encoders a SoVITS file's config names (upstream files name none: HuBERT and ERes2NetV2)."""
    record = sovits_config.get(RECORD_KEY) or {}
    content, speaker = str(record.get("content", HUBERT)), str(record.get("speaker", ERES2NET))
    if content not in CONTENT_DIMS or speaker not in SPEAKER_DIMS:
        raise InputError(f"the SoVITS config names encoders this myna does not know ({content}, {speaker}); "
                         "upgrade myna")
    return {"content": content, "speaker": speaker}


def load_content_encoder(name: str, hubert_dir: str | Path | None, device: str = "cpu"):
    """The content encoder `name`: HuBERT from `hubert_dir`, or the bundled Whisper tiny.en."""
    if name == WHISPER:
        from myna.features.whisper import WhisperContentEncoder

        return WhisperContentEncoder(device=device)
    if hubert_dir is None:
        raise InputError("this model reads HuBERT features: give the HuBERT directory (--hubert DIR)")
    from myna.features.content import HubertContentEncoder

    return HubertContentEncoder(hubert_dir, device)


def load_speaker_encoder(name: str, sv_path: str | Path | None, device: str = "cpu"):
    """The speaker encoder `name`: the bundled Resemblyzer GE2E, or ERes2NetV2 from `sv_path`."""
    if name == RESEMBLYZER:
        from myna.features.ge2e import GE2ESpeakerEmbedder

        return GE2ESpeakerEmbedder(None, device)  # bundled weights; --sv names ERes2NetV2 files only
    if sv_path is None:
        raise InputError("this model needs the speaker-verification model (--sv FILE)")
    from myna.features.speaker import SpeakerEncoder

    return SpeakerEncoder.from_file(sv_path, device)
