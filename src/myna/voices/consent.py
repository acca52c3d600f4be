"""Consent you can prove: a voice captcha.

1. `ConsentChecker.issue(language)` stores a challenge (a consent clause plus a random sentence,
   sentences.py) valid for `ttl` seconds and returns its id and text.
2. The speaker records themselves reading it. `ConsentChecker.verify(challenge_id, recording,
   voice_clip)` takes the challenge (once: a second use is refused, as is an expired or unknown id),
   refuses a recording without speech, has a speech recogniser transcribe it (the word error rate,
   character error rate for zh/ja, must be at most `max_error`), and compares speaker embeddings of
   the recording and the voice clip (cosine similarity at least the calibrated threshold, see
   benchmarks/consent.py). It returns `ConsentEvidence` (hashes, scores) for the audit log.
3. Every refusal is a `ConsentRefused` whose `check` names the failed check.

The recogniser and the speaker encoder are passed in (`Listener`, `SpeakerEmbedder`): they need
torch and live in `myna.features.verification`; this module does not import torch.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

from myna.errors import InputError
from myna.voices.audio_checks import CheckedClip, ClipLimits, check_clip
from myna.voices.sentences import LANGUAGES, challenge_text

# Same-speaker thresholds on cosine similarity, per speaker encoder. Resemblyzer's comes from
# benchmarks/consent.py (equal error rate point on local TTS voices with augmentation); ERes2Net's
# is the provisional value for its 192-dim embedding until it is calibrated the same way
# (`python benchmarks/consent.py --sv FILE`); MYNA_SPEAKER_THRESHOLD overrides both.
SPEAKER_THRESHOLDS = {"resemblyzer": 0.76, "eres2net": 0.45}
RECORDING_LIMITS = ClipLimits(min_seconds=1.0, max_seconds=30.0, max_upload_bytes=20 * 2**20)
MIN_SPEECH_SECONDS = 1.0
_SPEECH_DBFS = -45.0  # a 30 ms frame louder than this (RMS) counts as sound
CONSENT_DB = "consent.sqlite3"


class ConsentRefused(InputError):
    """The consent check failed; `check` says which one (a stable code), the message what to do."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


class Listener(Protocol):
    """A speech recogniser for consent recordings."""

    def supports(self, language: str) -> bool:
        """Whether recordings in `language` can be checked."""
        ...

    def transcribe(self, samples: np.ndarray, rate: int, language: str) -> str:
        """What was said in mono float audio."""
        ...


class SpeakerEmbedder(Protocol):
    """A speaker encoder: mono float audio -> embedding compared by cosine similarity."""

    identity: str

    def embed(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """The speaker embedding of a clip."""
        ...


@dataclass(frozen=True)
class Challenge:
    """A sentence to read, valid until `expires_at` (seconds since the epoch), usable once."""

    id: str
    language: str
    text: str
    issued_at: float
    expires_at: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for an API answer."""
        return asdict(self)


@dataclass(frozen=True)
class ConsentEvidence:
    """What a passed consent check showed; goes into the audit log and the voice's consent record."""

    challenge_id: str
    language: str
    text: str
    heard: str
    error_rate: float
    max_error: float
    speaker_score: float
    speaker_threshold: float
    encoder: str
    recording_sha256: str
    clip_sha256: str
    verified_at: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (for the audit log: text and heard are personal, the rest is not)."""
        return asdict(self)

    def statement(self) -> str:
        """The consent record's statement: what was read and how it was checked."""
        return (f"Read aloud for challenge {self.challenge_id}: {self.text!r} (word error {self.error_rate:.2f}, "
                f"speaker similarity {self.speaker_score:.3f} >= {self.speaker_threshold:.3f}, {self.encoder}, "
                f"recording sha256 {self.recording_sha256})")


class ChallengeStore:
    """Issued challenges in SQLite, shared by every process using the same folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS challenges (id TEXT PRIMARY KEY, language TEXT NOT NULL, "
                       "text TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL)")

    def issue(self, language: str, ttl: float, now: float) -> Challenge:
        """Store and return a new challenge."""
        challenge = Challenge(secrets.token_urlsafe(18), language, challenge_text(language), now, now + ttl)
        with self._transaction() as db:
            db.execute("DELETE FROM challenges WHERE expires_at < ?", (now - 86400,))
            db.execute("INSERT INTO challenges VALUES (?, ?, ?, ?, ?, NULL)",
                       (challenge.id, language, challenge.text, challenge.issued_at, challenge.expires_at))
        return challenge

    def take(self, challenge_id: str, now: float) -> Challenge:
        """Mark a challenge used and return it; refuse one that is unknown, used before or expired."""
        with self._transaction() as db:
            row = db.execute("SELECT id, language, text, issued_at, expires_at, used_at FROM challenges WHERE id = ?",
                             (str(challenge_id),)).fetchone()
            if row is None:
                raise ConsentRefused("challenge_unknown", "unknown consent challenge; ask for a new one "
                                     "(POST /v1/voices/consent-challenge) and record its sentence")
            taken = db.execute("UPDATE challenges SET used_at = ? WHERE id = ? AND used_at IS NULL",
                               (now, challenge_id)).rowcount
        if row[5] is not None or taken == 0:
            raise ConsentRefused("challenge_replayed", "this consent challenge was already used; each challenge "
                                 "counts once: ask for a new one and record its sentence")
        challenge = Challenge(*row[:5])
        if now > challenge.expires_at:
            raise ConsentRefused("challenge_expired", f"the consent challenge expired {now - challenge.expires_at:.0f} s "
                                 "ago; ask for a new one and record it within its time limit")
        return challenge

    def _transaction(self) -> _Transaction:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return _Transaction(db)


class _Transaction:
    """`with store._transaction() as db`: one immediate transaction on a fresh connection, then it is closed
    (a connection per call: the store is shared by threads and processes)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.db.close()


class ConsentChecker:
    """Issues challenges and checks consent recordings against them and against the voice clip."""

    def __init__(self, challenges: ChallengeStore, listener: Listener, embedder: SpeakerEmbedder, *,
                 ttl: float = 300.0, max_error: float = 0.25, threshold: float | None = None,
                 protected: ProtectedCheck | None = None, clock: Callable[[], float] = time.time) -> None:
        self.challenges = challenges
        self.listener = listener
        self.embedder = embedder
        self.ttl = ttl
        self.max_error = max_error
        self.threshold = threshold if threshold is not None else speaker_threshold(embedder.identity)
        self.protected = protected
        self.clock = clock

    def issue(self, language: str) -> Challenge:
        """A new challenge in `language`; refused when no recogniser for it is configured."""
        if language not in LANGUAGES:
            raise ConsentRefused("challenge_language", f"consent challenges exist for {', '.join(LANGUAGES)}, "
                                 f"not {language!r}")
        if not self.listener.supports(language):
            raise ConsentRefused("asr_unavailable", f"consent recordings in {language!r} cannot be checked here: no "
                                 "speech recognition model for it is configured (the operator sets "
                                 "MYNA_CONSENT_ASR_MODEL to a local multilingual faster-whisper model); use 'en'")
        return self.challenges.issue(language, self.ttl, self.clock())

    def verify(self, challenge_id: str, recording: bytes | CheckedClip, voice_clip: bytes | CheckedClip,
               recording_name: str = "the consent recording", clip_name: str = "the voice clip") -> ConsentEvidence:
        """Check a consent recording; return the evidence or raise `ConsentRefused` naming the failed check."""
        challenge = self.challenges.take(challenge_id, self.clock())
        said = _decode(recording, recording_name, RECORDING_LIMITS)
        clip = _decode(voice_clip, clip_name, ClipLimits())
        if speech_seconds(said) < MIN_SPEECH_SECONDS:
            raise ConsentRefused("silence", f"{recording_name} holds no speech (under {MIN_SPEECH_SECONDS:g} s above "
                                 f"{_SPEECH_DBFS:g} dBFS); record the sentence clearly, close to the microphone")
        heard = self.listener.transcribe(said.samples, said.rate, challenge.language)
        errors = error_rate(challenge.text, heard, challenge.language)
        if errors > self.max_error:
            unit = "word" if challenge.language == "en" else "character"
            raise ConsentRefused("wrong_sentence", f"{recording_name} does not say the challenge sentence ({unit} error "
                                 f"{errors:.0%}, at most {self.max_error:.0%} allowed); heard {heard!r}")
        clip_embedding = self.embedder.embed(clip.samples, clip.rate)
        score = cosine(self.embedder.embed(said.samples, said.rate), clip_embedding)
        if score < self.threshold:
            raise ConsentRefused("wrong_speaker", f"{recording_name} and {clip_name} do not sound like the same person "
                                 f"(similarity {score:.2f}, at least {self.threshold:.2f} needed); the person in the "
                                 "voice clip must read the sentence")
        if self.protected is not None:
            self.protected.check(clip_embedding, self.embedder.identity)
        return ConsentEvidence(
            challenge.id, challenge.language, challenge.text, heard, round(errors, 4), self.max_error, round(score, 4),
            self.threshold, self.embedder.identity, _sha256(recording, said), _sha256(voice_clip, clip), self.clock())

    def screen(self, voice_clip: bytes | CheckedClip, clip_name: str = "the voice clip") -> None:
        """Only the protected-speaker check (for `record` consent mode)."""
        if self.protected is not None:
            clip = _decode(voice_clip, clip_name, ClipLimits())
            self.protected.check(self.embedder.embed(clip.samples, clip.rate), self.embedder.identity)


class ProtectedCheck(Protocol):
    """Refuses embeddings too close to a protected speaker (see nogo.py)."""

    def check(self, embedding: np.ndarray, identity: str) -> None:
        """Raise `ConsentRefused("protected_speaker", ...)` when the voice is protected."""
        ...


def speaker_threshold(identity: str) -> float:
    """The calibrated same-speaker threshold of an encoder."""
    family = identity.split(":")[0]
    if family not in SPEAKER_THRESHOLDS:
        raise InputError(f"no calibrated speaker threshold for encoder {identity!r}; set MYNA_SPEAKER_THRESHOLD")
    return SPEAKER_THRESHOLDS[family]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denominator) if denominator > 0 else 0.0


def speech_seconds(clip: CheckedClip) -> float:
    """Seconds of 30-ms frames louder than -45 dBFS RMS."""
    frame = max(1, int(0.03 * clip.rate))
    usable = clip.samples[: clip.samples.size - clip.samples.size % frame].astype(np.float64)
    if usable.size == 0:
        return 0.0
    rms = np.sqrt(np.mean(usable.reshape(-1, frame) ** 2, axis=1))
    loud = rms > 10 ** (_SPEECH_DBFS / 20)
    return float(loud.sum()) * frame / clip.rate


_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty").split()


def normalize_words(text: str) -> list[str]:
    """English text as lower-case words: punctuation dropped, 0-20 spelled out, hyphens split."""
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    words = re.findall(r"[a-z0-9']+", text)
    return [_NUMBER_WORDS[int(w)] if w.isdigit() and int(w) <= 20 else w.strip("'") for w in words if w.strip("'")]


def normalize_chars(text: str, language: str) -> list[str]:
    """Chinese or Japanese text as characters: punctuation and spaces dropped, full width folded, zh simplified."""
    text = unicodedata.normalize("NFKC", text)
    if language == "zh":
        text = _to_simplified(text)
    return [ch for ch in text if unicodedata.category(ch)[0] in "LN"]


def error_rate(reference: str, heard: str, language: str) -> float:
    """Word (en) or character (zh, ja) error rate of `heard` against `reference`: edits / reference length."""
    if language == "en":
        ref, hyp = normalize_words(reference), normalize_words(heard)
    else:
        ref, hyp = normalize_chars(reference, language), normalize_chars(heard, language)
    return edit_distance(ref, hyp) / max(1, len(ref))


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token lists (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, token in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token != other)))
        previous = current
    return previous[-1]


def _to_simplified(text: str) -> str:
    return _simplifier().convert(text)


@cache
def _simplifier():
    """OpenCC's traditional-to-simplified converter (stateless; built once, its dictionaries take a while to load)."""
    from opencc import OpenCC

    return OpenCC("t2s")


def _decode(audio: bytes | CheckedClip, name: str, limits: ClipLimits) -> CheckedClip:
    if isinstance(audio, CheckedClip):
        return audio
    try:
        return check_clip(audio, name, limits)
    except InputError as exc:
        if "silent" in str(exc):
            raise ConsentRefused("silence", str(exc)) from exc
        raise


def _sha256(raw: bytes | CheckedClip, clip: CheckedClip) -> str:
    data = raw if isinstance(raw, bytes) else np.ascontiguousarray(clip.samples).tobytes()
    return hashlib.sha256(data).hexdigest()
