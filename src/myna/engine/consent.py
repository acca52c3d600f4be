"""The consent check wired to settings, the voice registry and the audit log (what routes and commands call).

    checker = consent_checker(settings)                  # once per process (loads Whisper lazily)
    audit = AuditLog(settings.audit_path, settings.audit_key_bytes())
    challenge = checker.issue("en")                      # POST /v1/voices/consent-challenge -> challenge.to_dict()
    record, evidence = register_voice(registry, checker, audit, mode=settings.consent_mode, audio=clip, ...)
    update_voice(registry, checker, audit, voice_id, mode=settings.consent_mode, audio=new_clip, ...)
    add_reference(RegistryReferences(registry), checker, audit, voice_id, mode=..., audio=clip, emotion="happy", ...)
    remove_reference(references, audit, voice_id, "happy")   # DELETE /v1/voices/ID/references/KEY
    delete_voice(registry, audit, voice_id, actor)       # DELETE /v1/voices/ID
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from myna.audit import AuditLog
from myna.config import Settings
from myna.errors import InputError
from myna.features.verification import SpeakerVerifier, WhisperListener
from myna.text.emotion_markup import check_label
from myna.voices.audio_checks import check_language, check_transcript
from myna.voices.consent import (
    CONSENT_DB,
    ChallengeStore,
    ConsentChecker,
    ConsentEvidence,
    ConsentRefused,
    speaker_threshold,
)
from myna.voices.names import check_name
from myna.voices.nogo import ProtectedSpeakers
from myna.voices.references import check_reference_text
from myna.voices.registry import Consent, VoiceRecord, VoiceRegistry
from myna.voices.registry_references import ReferenceRecord, RegistryReferences


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


def register_voice(registry: VoiceRegistry, checker: ConsentChecker | None, audit: AuditLog | None, *, mode: str,
                   audio: bytes, filename: str, transcript: str | None, language: str, name: str, subject: str,
                   statement: str | None = None, obtained_by: str | None = None, challenge_id: str | None = None,
                   recording: bytes | None = None, actor: str | None = None) -> tuple[VoiceRecord, ConsentEvidence | None]:
    """Register a voice under the operator's consent mode, then log it; what `POST /v1/voices` calls.

    captcha: `challenge_id` + `recording` must pass `checker.verify` (the consent record's statement then
    describes the evidence); record: the typed `statement` is kept, and only the protected-speaker check runs
    (when a checker is given). Raises `ConsentRefused` (with its `check`) or the registry's errors; nothing is
    stored or logged then."""
    evidence = None
    # refuse bad text fields before a challenge is spent on them
    check_name(name, registry.limits.max_name_chars)
    check_language(language)
    check_transcript(transcript, registry.limits)
    if mode == "captcha":
        if checker is None:
            raise InputError("consent mode captcha needs a consent checker (myna.engine.consent.consent_checker)")
        if not challenge_id or not recording:
            raise ConsentRefused("consent_missing", "a new voice needs a consent recording: ask for a challenge "
                                 "(POST /v1/voices/consent-challenge), record its speaker reading the sentence, and send "
                                 "the challenge id and the recording with the clip")
        evidence = checker.verify(challenge_id, recording, audio, clip_name=filename or "the voice clip")
        statement = evidence.statement()
    elif mode == "record":
        if checker is not None:
            checker.screen(audio, filename or "the voice clip")
    else:
        raise InputError(f"consent mode must be captcha or record, got {mode!r}")
    record = registry.create(audio, filename, transcript, language, name, Consent(subject, statement or "",
                                                                                  obtained_by=obtained_by))
    if audit is not None:
        data: dict[str, object] = {"consent_mode": mode, "language": record.language, "version": record.version,
                                   "clip_seconds": round(record.clip_seconds, 3), "clip_sha256": _sha256(audio)}
        personal: dict[str, object] = {"name": record.name, "subject": record.consent.subject,
                                       "statement": record.consent.statement, "transcript": record.transcript}
        if evidence is not None:
            public = evidence.to_dict()
            personal.update(challenge_text=public.pop("text"), heard=public.pop("heard"))
            data["consent"] = public
        audit.append("voice.create", actor=actor, voice=record.id, data=data, personal=personal)
    return record, evidence


def update_voice(registry: VoiceRegistry, checker: ConsentChecker | None, audit: AuditLog | None, voice_id: str, *,
                 mode: str, audio: bytes | None = None, filename: str = "", challenge_id: str | None = None,
                 recording: bytes | None = None, actor: str | None = None, **changes: object) -> VoiceRecord:
    """Change a voice's clip and/or text (`changes`: transcript, language, name), then log `voice.update`; what
    `PATCH /v1/voices/ID` calls. A new clip needs the same proof as a new voice: in captcha mode a passing consent
    recording of it, in record mode the protected-speaker screen."""
    evidence = None
    if audio is not None:
        evidence = _prove_clip(checker, mode, audio, filename, challenge_id, recording)
    record = registry.update(voice_id, audio=audio, filename=filename, **changes)
    if audit is not None:
        data: dict[str, object] = {"version": record.version, "changed": sorted(changes) + (["clip"] if audio else [])}
        personal = {k: v for k, v in changes.items() if k in ("transcript", "name") and v is not None}
        if audio is not None:
            data["clip_sha256"] = _sha256(audio)
        if evidence is not None:
            public = evidence.to_dict()
            personal.update(challenge_text=public.pop("text"), heard=public.pop("heard"))
            data["consent"] = public
        audit.append("voice.update", actor=actor, voice=voice_id, data=data, personal=personal or None)
    return record


def add_reference(references: RegistryReferences, checker: ConsentChecker | None, audit: AuditLog | None,
                  voice_id: str, *, mode: str, audio: bytes, filename: str, transcript: str, language: str,
                  emotion: str, replace: bool = False, challenge_id: str | None = None, recording: bytes | None = None,
                  actor: str | None = None) -> ReferenceRecord:
    """Add an emotion reference to a registered voice, then log `voice.reference.add`; what `POST
    /v1/voices/ID/references` calls. A reference is a new clip of the voice, so it needs the proof a new clip
    needs (`update_voice`): in captcha mode a passing consent recording of it, in record mode the
    protected-speaker screen. The transcript stays out of the log (it goes with the reference)."""
    references.registry.get(voice_id)  # an unknown voice is said before anything else
    check_label(emotion)
    check_reference_text(transcript, references.registry.limits)  # bad text fields before a challenge is spent
    check_language(language)
    evidence = _prove_clip(checker, mode, audio, filename, challenge_id, recording)
    record = references.add(voice_id, audio, filename, transcript, language, emotion, replace)
    if audit is not None:
        data: dict[str, object] = {"consent_mode": mode, "reference": record.id, "emotion": record.emotion,
                                   "language": record.language, "clip_seconds": round(record.clip_seconds, 3),
                                   "clip_sha256": _sha256(audio)}
        personal: dict[str, object] | None = None
        if evidence is not None:
            public = evidence.to_dict()
            personal = {"challenge_text": public.pop("text"), "heard": public.pop("heard")}
            data["consent"] = public
        audit.append("voice.reference.add", actor=actor, voice=voice_id, data=data, personal=personal)
    return record


def remove_reference(references: RegistryReferences, audit: AuditLog | None, voice_id: str, key: str,
                     actor: str | None = None) -> ReferenceRecord:
    """Erase a registered voice's emotion reference (by id or label), then log `voice.reference.remove`; what
    `DELETE /v1/voices/ID/references/KEY` calls."""
    record = references.remove(voice_id, key)
    if audit is not None:
        audit.append("voice.reference.remove", actor=actor, voice=voice_id,
                     data={"reference": record.id, "emotion": record.emotion})
    return record


def _prove_clip(checker: ConsentChecker | None, mode: str, audio: bytes, filename: str, challenge_id: str | None,
                recording: bytes | None) -> ConsentEvidence | None:
    """The proof a new clip of an existing voice needs: captcha, a passing consent recording of it; record, the
    protected-speaker screen (when a checker is given)."""
    if mode == "captcha":
        if checker is None or not challenge_id or not recording:
            raise ConsentRefused("consent_missing", "a new clip needs a new consent recording: ask for a challenge "
                                 "and send its id and the recording with the clip")
        return checker.verify(challenge_id, recording, audio, clip_name=filename or "the voice clip")
    if mode != "record":
        raise InputError(f"consent mode must be captcha or record, got {mode!r}")
    if checker is not None:
        checker.screen(audio, filename or "the voice clip")
    return None


def delete_voice(registry: VoiceRegistry, audit: AuditLog | None, voice_id: str, actor: str | None = None) -> int:
    """Erase a voice and its personal fields in the audit log (the deletion itself is logged); what
    `DELETE /v1/voices/ID` calls. Returns how many log records lost their personal fields."""
    registry.delete(voice_id)
    if audit is None:
        return 0
    audit.append("voice.delete", actor=actor, voice=voice_id)
    return audit.erase(voice_id, actor=actor)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
