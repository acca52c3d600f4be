"""Emotion references of a registered voice under the consent modes, on real speech (flite reads the
challenge; Whisper tiny.en and the Resemblyzer encoder judge it; skipped where flite is not installed)."""

import shutil

import pytest

from flite_speech import flite as speak
from flite_speech import until_heard
from myna.audit import AuditLog
from myna.config import Settings
from myna.engine.consent import add_reference, consent_checker, delete_voice, remove_reference
from myna.voices.consent import ConsentRefused
from myna.voices.registry import Consent, VoiceRegistry
from myna.voices.registry_references import RegistryReferences

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (scripts/setup.sh)")

MAIN_TEXT = "This is my own voice, recorded for the voice service, and it lasts a few seconds."
HAPPY_TEXT = "What a wonderful surprise, I am so happy to see all of you here today!"


def test_a_reference_needs_the_proof_a_new_clip_needs_and_is_logged_and_erased(tmp_path):
    checker = consent_checker(Settings(data_dir=tmp_path / "consent"), threads=1)
    audit = AuditLog(tmp_path / "audit.jsonl")
    happy = speak("slt", HAPPY_TEXT)
    with VoiceRegistry(tmp_path / "voices") as registry:
        voice = registry.create(speak("slt", MAIN_TEXT), "slt.wav", MAIN_TEXT, "en", "Sally",
                                Consent("Sally Example", "I agree."))
        references = RegistryReferences(registry)
        common = {"audio": happy, "filename": "happy.wav", "transcript": HAPPY_TEXT, "language": "en",
                  "emotion": "happy", "actor": "admin-key"}
        with pytest.raises(ConsentRefused) as missing:
            add_reference(references, checker, audit, voice.id, mode="captcha", **common)
        assert missing.value.check == "consent_missing" and references.list(voice.id) == []

        def attempt(speaker: str):  # someone else reading the challenge does not prove this clip
            challenge = checker.issue("en")
            try:
                return add_reference(references, checker, audit, voice.id, mode="captcha", challenge_id=challenge.id,
                                     recording=speak(speaker, challenge.text), **common)
            except ConsentRefused as refused:
                return refused

        def misheard(outcome) -> bool:
            return getattr(outcome, "check", None) == "wrong_sentence"

        other = until_heard(lambda: attempt("rms"), misheard)
        assert isinstance(other, ConsentRefused) and other.check == "wrong_speaker"
        assert references.list(voice.id) == []
        added = until_heard(lambda: attempt("slt"), misheard)
        assert not isinstance(added, ConsentRefused), added
        assert [r.id for r in references.list(voice.id)] == [added.id]
        logged = [r for r in audit.records() if r.event == "voice.reference.add"]
        assert len(logged) == 1 and logged[0].data["reference"] == added.id and logged[0].voice == voice.id
        assert logged[0].data["consent"]["speaker_score"] >= logged[0].data["consent"]["speaker_threshold"]
        assert logged[0].personal["fields"]["heard"] and HAPPY_TEXT not in audit.path.read_text()
        remove_reference(references, audit, voice.id, "happy", actor="admin-key")
        assert references.list(voice.id) == []
        delete_voice(registry, audit, voice.id, actor="admin-key")
        references.close()
    assert audit.verify().ok
    assert [r.event for r in audit.records()][-4:] == ["voice.reference.add", "voice.reference.remove",
                                                       "voice.delete", "audit.erase"]
    assert all(r.personal is None for r in audit.records() if r.voice == voice.id)  # erased with the voice
