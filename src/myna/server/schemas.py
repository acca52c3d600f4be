"""Request models: upstream api_v2's /tts (same fields and defaults) and OpenAI's /v1/audio/speech."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from myna.engine.options import SynthesisOptions
from myna.errors import InputError


class TTSRequest(BaseModel):
    """Upstream api_v2's TTS_Request. Fields myna has no use for (batching, v3 sampling) are accepted and ignored."""

    text: str | None = None
    text_lang: str | None = None
    ref_audio_path: str | None = None
    aux_ref_audio_paths: list[str] | None = None
    prompt_lang: str | None = None
    prompt_text: str = ""
    top_k: int = 15
    top_p: float = 1
    temperature: float = 1
    text_split_method: str = "cut5"
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    speed_factor: float = 1.0
    fragment_interval: float = 0.3
    seed: int = Field(-1, ge=-1, le=2**32 - 1, description="-1: random; as upstream, seeds are 32-bit")
    media_type: str = "wav"
    streaming_mode: bool | int = False
    parallel_infer: bool = True
    repetition_penalty: float = 1.35
    sample_steps: int = 32
    super_sampling: bool = False
    overlap_length: int = 2
    min_chunk_length: int = 16
    return_fragment: bool = False

    def options(self) -> SynthesisOptions:
        """The synthesis options this request asks for (raises InputError on bad values).

        Streaming modes 2 and 3 stream token chunks, the first after `min_chunk_length` semantic
        tokens (upstream's chunked modes); mode 1 (or true) streams one chunk per text fragment.
        """
        chunked = self.streaming_mode in (2, 3)  # True == 1, so a boolean never selects them
        if chunked and not 1 <= self.min_chunk_length <= 500:
            raise InputError(f"min_chunk_length must be between 1 and 500, got {self.min_chunk_length}")
        return SynthesisOptions(
            top_k=self.top_k, top_p=self.top_p, temperature=self.temperature,
            repetition_penalty=self.repetition_penalty, seed=self.seed, speed=self.speed_factor,
            split=self.text_split_method, pause=self.fragment_interval,
            stream_chunk_tokens=self.min_chunk_length if chunked else 0,
        )


class VoiceRef(BaseModel):
    """OpenAI's custom-voice object: `{"id": ...}`."""

    id: str = Field(..., max_length=200)


class SpeechRequest(BaseModel):
    """OpenAI's speech request; `voice` is a registered voice's id or name. myna adds language and seed."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field("myna", max_length=200, description="one of the ids GET /v1/models lists")
    input: str = Field(..., description="text to speak")
    voice: str | VoiceRef = Field(..., description="id or name of a registered voice (see /v1/voices), or {\"id\": ...}")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    stream_format: Literal["audio", "sse"] = Field("audio", description="sse: speech.audio.delta events (base64)")
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream: bool = Field(True, description="send audio as it is made (formats other than flac)")
    language: str | None = Field(None, description="language of the input (default: the voice's language)")
    seed: int = Field(-1, ge=-1, le=2**32 - 1, description="-1: random; a fixed seed repeats the audio")
    instructions: str | None = Field(None, max_length=4096, description="accepted for compatibility; unused")

    @property
    def voice_name(self) -> str:
        """The voice id or name asked for, whichever form `voice` took."""
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice

    def options(self, stream_chunk_tokens: int = 0) -> SynthesisOptions:
        """The synthesis options this request asks for; a streamed response uses `stream_chunk_tokens`."""
        return SynthesisOptions(seed=self.seed, speed=self.speed,
                                stream_chunk_tokens=stream_chunk_tokens if self.stream else 0)


class ModelCard(BaseModel):
    """One entry of /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "myna"


class VoiceOut(BaseModel):
    """A registered voice as the API shows it."""

    id: str
    name: str
    language: str
    transcript: str | None
    created_at: str
    version: int
    clip_seconds: float
    consent: dict[str, str | None] | None = Field(None, description="the consent record (admin keys only)")
    created_by: str | None = Field(None, description="the API key that registered the voice (admin keys only)")
