"""The consent check end to end on real speech: flite voices read challenges, Whisper tiny.en and the
Resemblyzer encoder judge them (skipped where flite is not installed)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from flite_speech import flite as speak
from flite_speech import until_heard
from myna.config import Settings
from myna.engine.consent import consent_checker
from myna.voices.consent import ConsentRefused
from myna.voices.nogo import ProtectedSpeakerError, save_embedding

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (scripts/setup.sh)")

CLIP_TEXT = "This is my own voice, recorded for the voice service, and it lasts a few seconds."




class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("consent")
    built = consent_checker(Settings(data_dir=folder), threads=1)
    built.clock = Clock()
    return built


@pytest.fixture(scope="module")
def clips():
    return {voice: speak(voice, CLIP_TEXT) for voice in ("slt", "rms")}


def refusal(checker, challenge_id, recording, clip) -> ConsentRefused:
    with pytest.raises(ConsentRefused) as caught:
        checker.verify(challenge_id, recording, clip)
    return caught.value


def heard(checker, voice: str, clip: bytes):
    """A challenge, flite's `voice` reading it, and the evidence or refusal of checking that against `clip`."""
    def attempt():
        challenge = checker.issue("en")
        recording = speak(voice, challenge.text)
        try:
            return challenge, recording, checker.verify(challenge.id, recording, clip)
        except ConsentRefused as refused:
            return challenge, recording, refused

    return until_heard(attempt, lambda outcome: getattr(outcome[2], "check", None) == "wrong_sentence")


def test_the_speaker_reading_the_sentence_passes(checker, clips):
    challenge, recording, evidence = heard(checker, "slt", clips["slt"])
    assert not isinstance(evidence, ConsentRefused), evidence
    assert evidence.error_rate <= 0.25 and evidence.speaker_score >= evidence.speaker_threshold
    assert evidence.encoder == "resemblyzer" and evidence.challenge_id == challenge.id
    assert len(evidence.recording_sha256) == 64 and evidence.recording_sha256 != evidence.clip_sha256
    again = refusal(checker, challenge.id, recording, clips["slt"])  # the same recording, replayed
    assert again.check == "challenge_replayed" and "already used" in str(again)


def test_a_different_sentence_is_refused(checker, clips):
    challenge, other = checker.issue("en"), checker.issue("en")
    refused = refusal(checker, challenge.id, speak("slt", other.text), clips["slt"])
    assert refused.check == "wrong_sentence" and "does not say the challenge sentence" in str(refused)


def test_another_speaker_is_refused(checker, clips):
    _, _, refused = heard(checker, "rms", clips["slt"])
    assert isinstance(refused, ConsentRefused) and refused.check == "wrong_speaker" and "same person" in str(refused)


def test_an_expired_challenge_is_refused(checker, clips):
    challenge = checker.issue("en")
    recording = speak("slt", challenge.text)
    checker.clock.now += checker.ttl + 1
    refused = refusal(checker, challenge.id, recording, clips["slt"])
    assert refused.check == "challenge_expired"


@pytest.mark.parametrize("kind", ["digital silence", "room noise"])
def test_silence_is_refused(checker, clips, kind):
    samples = np.zeros(48000, np.float32) if kind == "digital silence" else \
        np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 10 ** (-55 / 20)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format="WAV")
    refused = refusal(checker, checker.issue("en").id, buffer.getvalue(), clips["slt"])
    assert refused.check == "silence"


def test_languages_without_a_recogniser_are_refused_up_front(checker):
    with pytest.raises(ConsentRefused) as caught:
        checker.issue("zh")
    assert caught.value.check == "asr_unavailable" and "MYNA_CONSENT_ASR_MODEL" in str(caught.value)


def test_protected_speakers_are_refused(tmp_path, clips, checker):
    protected = tmp_path / "protected"
    protected.mkdir()
    (protected / "slt-anchor.wav").write_bytes(speak("slt", "A protected voice says something quite different."))
    embedding = checker.embedder.embed(*soundfile.read(io.BytesIO(speak("kal16", CLIP_TEXT)), dtype="float32"))
    save_embedding(protected, "kal-anchor", embedding, "resemblyzer")
    save_embedding(protected, "other-encoder", embedding, "eres2net")
    guarded = consent_checker(Settings(data_dir=tmp_path / "data", protected_voices=protected), threads=1)
    assert sorted(guarded.protected.embeddings) == ["kal-anchor", "slt-anchor"]
    assert guarded.protected.skipped and "eres2net" in guarded.protected.skipped[0]
    with pytest.raises(ProtectedSpeakerError) as caught:
        guarded.screen(clips["slt"])
    assert caught.value.check == "protected_speaker" and caught.value.speaker == "slt-anchor"
    assert "slt" not in str(caught.value)  # the refusal does not reveal who is protected
    guarded.screen(clips["rms"])  # not protected: no error
    _, _, refused = heard(guarded, "slt", clips["slt"])
    assert isinstance(refused, ConsentRefused) and refused.check == "protected_speaker"


def test_consent_mode_setting():
    assert Settings().consent_mode == "captcha"
    assert Settings.from_env({"MYNA_CONSENT_MODE": "record"}).consent_mode == "record"
    with pytest.raises(Exception, match="consent_mode"):
        Settings.from_env({"MYNA_CONSENT_MODE": "trust-me"})


def test_cli_challenge_verify_protect(tmp_path, clips):
    def myna(*args):
        return subprocess.run([sys.executable, "-m", "myna", "consent", *args], capture_output=True, text=True,
                              timeout=300)

    (tmp_path / "clip.wav").write_bytes(clips["slt"])

    def attempt():
        issued = myna("challenge", "--lang", "en", "--data-dir", str(tmp_path))
        assert issued.returncode == 0, issued.stderr
        challenge = json.loads(issued.stdout)
        (tmp_path / "rec.wav").write_bytes(speak("slt", challenge["text"]))
        return myna("verify", challenge["id"], str(tmp_path / "rec.wav"), str(tmp_path / "clip.wav"),
                    "--data-dir", str(tmp_path))

    passed = until_heard(attempt, lambda verdict: '"wrong_sentence"' in verdict.stdout)
    assert passed.returncode == 0 and json.loads(passed.stdout)["passed"] is True, passed.stdout + passed.stderr
    chinese = myna("challenge", "--lang", "zh", "--data-dir", str(tmp_path))
    assert chinese.returncode == 1 and "MYNA_CONSENT_ASR_MODEL" in chinese.stderr and "Traceback" not in chinese.stderr


def test_cli_protect_writes_an_embedding(tmp_path, clips, checker):
    (tmp_path / "clip.wav").write_bytes(clips["slt"])
    protected = subprocess.run([sys.executable, "-m", "myna", "consent", "protect", str(tmp_path / "clip.wav"), "--name",
                                "anna", "--dir", str(tmp_path / "no-go")], capture_output=True, text=True, timeout=300)
    assert protected.returncode == 0, protected.stderr
    saved = np.load(tmp_path / "no-go" / "anna.resemblyzer.npy")
    direct = checker.embedder.embed(*soundfile.read(io.BytesIO(clips["slt"]), dtype="float32"))
    assert saved.shape == (256,) and float(saved @ direct) > 0.999


def test_registration_under_each_consent_mode_is_logged_and_erased(tmp_path, checker, clips):
    from myna.audit import AuditLog
    from myna.engine.consent import delete_voice, register_voice, update_voice
    from myna.voices.registry import VoiceRegistry

    audit = AuditLog(tmp_path / "audit.jsonl")
    with VoiceRegistry(tmp_path / "voices") as registry:
        common = {"audio": clips["slt"], "filename": "slt.wav", "transcript": CLIP_TEXT, "language": "en",
                  "name": "Sally", "subject": "Sally Example", "actor": "admin-key"}
        with pytest.raises(ConsentRefused) as missing:
            register_voice(registry, checker, audit, mode="captcha", **common)
        assert missing.value.check == "consent_missing"
        def attempt():
            challenge = checker.issue("en")
            try:
                return challenge, register_voice(registry, checker, audit, mode="captcha", challenge_id=challenge.id,
                                                 recording=speak("slt", challenge.text), **common)
            except ConsentRefused as refused:  # flite's diction, now and then misheard: a fresh challenge
                if refused.check != "wrong_sentence":
                    raise
                return challenge, refused

        challenge, outcome = until_heard(attempt, lambda tried: isinstance(tried[1], ConsentRefused))
        if isinstance(outcome, ConsentRefused):
            raise outcome
        record, evidence = outcome
        assert evidence is not None and challenge.id in record.consent.statement
        assert record.created_by == "admin-key"  # the actor is who registered it
        typed, none = register_voice(registry, None, audit, mode="record", statement="I, Sally, agree.",
                                     **{**common, "name": "Sally (typed)"})  # names are unique
        assert none is None and typed.consent.statement == "I, Sally, agree."
        assert len(registry.list()) == 2
        created = [r for r in audit.records() if r.event == "voice.create"]
        assert [r.voice for r in created] == [record.id, typed.id] and created[0].actor == "admin-key"
        assert created[0].data["consent"]["recording_sha256"] == evidence.recording_sha256
        assert created[0].personal["fields"]["heard"] and "Sally" not in json.dumps(created[0].data)
        with pytest.raises(ConsentRefused) as unproven:  # a new clip needs a new consent recording
            update_voice(registry, checker, audit, record.id, mode="captcha", audio=clips["rms"], filename="rms.wav")
        assert unproven.value.check == "consent_missing" and registry.get(record.id).version == 1
        update_voice(registry, checker, audit, record.id, mode="captcha", transcript="A new transcript.")
        assert delete_voice(registry, audit, record.id, actor="admin-key") == 2
    assert audit.verify().ok
    assert [r.event for r in audit.records()][-2:] == ["voice.delete", "audit.erase"]
    text = audit.path.read_text()
    assert text.count("Sally Example") == 1  # only the voice that was kept still has it
