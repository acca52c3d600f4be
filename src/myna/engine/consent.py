"""Building the consent checker and the protected-speaker list from settings (what a route or command calls).

    checker = consent_checker(settings)                 # once per process
    challenge = checker.issue("en")                     # POST /v1/voices/consent-challenge
    evidence = checker.verify(challenge_id, recording_bytes, clip_bytes)   # before registering the voice
"""

from __future__ import annotations

from pathlib import Path

from myna.config import Settings
from myna.features.verification import SpeakerVerifier, WhisperListener
from myna.voices.consent import CONSENT_DB, ChallengeStore, ConsentChecker, speaker_threshold
from myna.voices.nogo import ProtectedSpeakers


def consent_checker(settings: Settings, sv: str | Path | None = None, threads: int = 0) -> ConsentChecker:
    """A ConsentChecker with challenges in DATA_DIR/consent.sqlite3, Whisper and the speaker encoder of `sv` (the
    v2Pro speaker-verification file; default settings.sv; none: Resemblyzer) and the protected speakers, if any."""
    sv = sv if sv is not None else settings.sv
    embedder = SpeakerVerifier(sv, settings.device)
    threshold = settings.speaker_threshold if settings.speaker_threshold is not None else speaker_threshold(embedder.identity)
    protected = (ProtectedSpeakers.load(settings.protected_voices, embedder, threshold)
                 if settings.protected_voices is not None else None)
    return ConsentChecker(ChallengeStore(settings.data_dir / CONSENT_DB),
                          WhisperListener(settings.consent_asr_model, threads=threads), embedder,
                          ttl=settings.consent_ttl, max_error=settings.consent_max_error, threshold=threshold,
                          protected=protected)
