"""Emotion references of a registered voice under the consent modes, on real speech (flite reads the
challenge; Whisper tiny.en and the Resemblyzer encoder judge it; skipped where flite is not installed)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from myna.audit import AuditLog
from myna.config import Settings
from myna.engine.consent import add_reference, consent_checker, delete_voice, remove_reference
from myna.voices.consent import ConsentRefused
from myna.voices.registry import Consent, VoiceRegistry
from myna.voices.registry_references import RegistryReferences

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (scripts/setup.sh)")

MAIN_TEXT = "This is my own voice, recorded for the voice service, and it lasts a few seconds."
HAPPY_TEXT = "What a wonderful surprise, I am so happy to see all of you here today!"
# challenge sentences are random and Whisper tiny.en mishears flite on a few of them: a speaker check is
# judged on a sentence that was heard, so a mishearing draws a new challenge (a few times at most)
HEARING_TRIES = 4


def speak(voice: str, text: str) -> bytes:
    """WAV bytes of flite's `voice` reading `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], capture_output=True, check=True,
                       timeout=60)
        return out.read_bytes()


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
        for _ in range(HEARING_TRIES):  # someone else reading the challenge does not prove this clip
            challenge = checker.issue("en")
            with pytest.raises(ConsentRefused) as other:
                add_reference(references, checker, audit, voice.id, mode="captcha", challenge_id=challenge.id,
                              recording=speak("rms", challenge.text), **common)
            if other.value.check != "wrong_sentence":
                break
        assert other.value.check == "wrong_speaker" and references.list(voice.id) == []
        for attempt in range(HEARING_TRIES):
            challenge = checker.issue("en")
            try:
                added = add_reference(references, checker, audit, voice.id, mode="captcha",
                                      challenge_id=challenge.id, recording=speak("slt", challenge.text), **common)
                break
            except ConsentRefused as refused:
                if refused.check != "wrong_sentence" or attempt == HEARING_TRIES - 1:
                    raise
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
