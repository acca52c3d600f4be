"""No-go voices: an operator's list of protected speakers that nobody may register a voice of.

The list is a folder (MYNA_PROTECTED_VOICES) of reference clips (.wav, .flac, .ogg, .mp3) and/or
speaker embeddings saved as `NAME.<encoder>.npy` (e.g. `anchor.resemblyzer.npy`, made by
`myna consent protect`), so a protected person's recording need not be kept. Clips are embedded
when the list is loaded, with the same encoder the consent check uses; embeddings made by another
encoder are skipped (they are not comparable) and reported in `skipped`. A new voice whose
embedding is at least as similar to a protected one as the calibrated same-speaker threshold is
refused; the refusal does not name the protected speaker (the operator can see it in `speaker`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myna.errors import InputError
from myna.voices.consent import ConsentRefused, SpeakerEmbedder, cosine

CLIP_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


class ProtectedSpeakerError(ConsentRefused):
    """A new voice sounds like a protected speaker; `speaker` names which one (for the operator's logs)."""

    def __init__(self, speaker: str, score: float, threshold: float) -> None:
        super().__init__("protected_speaker", f"this voice is too similar to a protected speaker (similarity "
                         f"{score:.2f}, the limit is {threshold:.2f}); it cannot be registered")
        self.speaker = speaker
        self.score = score


@dataclass
class ProtectedSpeakers:
    """Embeddings of protected speakers under one encoder; `check` refuses voices too close to any."""

    identity: str
    threshold: float
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: str | Path, embedder: SpeakerEmbedder, threshold: float) -> ProtectedSpeakers:
        """Read a protected-speakers folder, embedding its clips with `embedder`."""
        import soundfile

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: the protected voices folder (MYNA_PROTECTED_VOICES) does not exist")
        found = cls(embedder.identity, threshold)
        for path in sorted(folder.iterdir()):
            if path.suffix == ".npy":
                name, _, identity = path.stem.rpartition(".")
                if identity != embedder.identity:
                    found.skipped.append(f"{path.name}: made by {identity or 'an unnamed encoder'}, not {embedder.identity}")
                    continue
                found.embeddings[name] = np.load(path, allow_pickle=False).astype(np.float32).ravel()
            elif path.suffix.lower() in CLIP_SUFFIXES:
                try:
                    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError) as exc:
                    raise InputError(f"{path}: cannot read this protected speaker's clip ({exc})") from exc
                found.embeddings[path.stem] = np.asarray(embedder.embed(audio.mean(axis=1), int(rate)), np.float32).ravel()
        return found

    def most_similar(self, embedding: np.ndarray) -> tuple[str | None, float]:
        """The closest protected speaker and the similarity (None, -1.0 when the list is empty)."""
        best: tuple[str | None, float] = (None, -1.0)
        for name, protected in self.embeddings.items():
            score = cosine(embedding, protected)
            if score > best[1]:
                best = (name, score)
        return best

    def check(self, embedding: np.ndarray, identity: str) -> None:
        """Raise `ProtectedSpeakerError` when `embedding` is as close as the threshold to a protected speaker."""
        if identity != self.identity:
            raise InputError(f"the protected speakers were embedded with {self.identity}, not {identity}")
        name, score = self.most_similar(embedding)
        if name is not None and score >= self.threshold:
            raise ProtectedSpeakerError(name, score, self.threshold)


def save_embedding(folder: str | Path, name: str, embedding: np.ndarray, identity: str) -> Path:
    """Write a protected speaker's embedding as `NAME.<identity>.npy` in `folder`."""
    if not name or any(ch in name for ch in "/\\.\0"):
        raise InputError(f"a protected speaker's name must be a plain file name without dots, got {name!r}")
    path = Path(folder) / f"{name}.{identity}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(embedding, np.float32).ravel(), allow_pickle=False)
    return path
