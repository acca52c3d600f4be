"""Per-request synthesis options. Defaults are upstream api_v2's, so a request means the same in both."""

from __future__ import annotations

from dataclasses import dataclass

from myna.engine.t2s_decode import SamplingParams
from myna.errors import InputError
from myna.text.emotion_markup import check_label
from myna.text.split import get_method


def check_split_method(name: str) -> str:
    """Return `name` if it names a text split method (myna's or upstream's cut0..cut5), else raise."""
    get_method(name)
    return name


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak one text: sampling, speed, noise, splitting and pauses."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    seed: int = -1  # -1: a random seed
    speed: float = 1.0
    noise_scale: float = 0.5
    split: str = "cut5"  # upstream's name or myna's (see myna.text.split)
    pause: float = 0.3  # seconds of silence after every fragment
    max_tokens: int | None = None  # early stop after this many semantic tokens (None: 50 * GPT max_sec)
    stream_chunk_tokens: int = 0  # stream(): first chunk after this many tokens (0: one chunk per fragment)
    # -- prosody (myna.engine.expressive): SSML, pitch, volume, exact duration, loudness contour --
    ssml: bool | None = None  # None: the text is SSML when it starts with <speak>
    pitch: float = 0.0  # semitones up (down if negative), the whole request
    volume: float = 0.0  # dB louder (quieter if negative), the whole request
    duration: float | None = None  # seconds: the audio lasts exactly this long (speech time-warped to fit)
    energy: float = 0.0  # 0..1: how far the loudness contour follows the reference clip's (0: as the model makes it)
    # -- emotion (myna.engine.emotion): which clip prompts the GPT; SoVITS keeps the voice's own clip --
    emotion: str | None = None  # a label of the voice's references, "auto" (classifier per sentence) or None
    emotion_strength: float = 1.0  # 0: the voice's own clip alone (as with no emotion); 1: the emotion clip; <= 1.5

    def __post_init__(self) -> None:
        self.sampling()  # validates the sampling values
        check_split_method(self.split)
        if not 0.25 <= self.speed <= 4.0:
            raise InputError(f"speed must be between 0.25 and 4.0, got {self.speed}")
        if not 0.0 <= self.noise_scale <= 2.0:
            raise InputError(f"noise_scale must be between 0 and 2, got {self.noise_scale}")
        if not 0.0 <= self.pause <= 10.0:
            raise InputError(f"pause must be between 0 and 10 seconds, got {self.pause}")
        if self.max_tokens is not None and not 1 <= self.max_tokens <= 1500:
            raise InputError(f"max_tokens must be between 1 and 1500, got {self.max_tokens}")
        if not 0 <= self.stream_chunk_tokens <= 500:
            raise InputError(f"stream_chunk_tokens must be between 0 and 500, got {self.stream_chunk_tokens}")
        if not -12.0 <= self.pitch <= 12.0:
            raise InputError(f"pitch must be between -12 and +12 semitones, got {self.pitch}")
        if not -40.0 <= self.volume <= 20.0:
            raise InputError(f"volume must be between -40 and +20 dB, got {self.volume}")
        if self.duration is not None and not 0.1 <= self.duration <= 600.0:
            raise InputError(f"duration must be between 0.1 and 600 seconds, got {self.duration}")
        if not 0.0 <= self.energy <= 1.0:
            raise InputError(f"energy must be between 0 and 1, got {self.energy}")
        if self.emotion is not None:
            object.__setattr__(self, "emotion", check_label(self.emotion, allow_auto=True))  # stored lower-case
        if not 0.0 <= self.emotion_strength <= 1.5:
            raise InputError(f"emotion_strength must be between 0 and 1.5, got {self.emotion_strength}")

    @property
    def shapes_prosody(self) -> bool:
        """True when a whole-request prosody option (pitch, volume, duration, energy) is set."""
        return bool(self.pitch or self.volume or self.duration is not None or self.energy)

    def sampling(self) -> SamplingParams:
        """The GPT sampling parameters of these options."""
        return SamplingParams(
            top_k=self.top_k,
            top_p=self.top_p,
            temperature=self.temperature,
            repetition_penalty=self.repetition_penalty,
        )
