"""Voice captcha over HTTP (MYNA_CONSENT_MODE=captcha, the default) with real speech: flite voices read the
challenge, Whisper tiny.en and the Resemblyzer encoder judge them; protected speakers; typed records.

Each consent check runs Whisper for about 3 s, so the refusals that need it are few."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY
from myna.audit import AuditLog

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (scripts/setup.sh)")

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIP_TEXT = "This is my own voice, recorded for the voice service, and it lasts a few seconds."


def speak(voice: str, text: str) -> bytes:
    """WAV bytes of flite's `voice` reading `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], capture_output=True, check=True,
                       timeout=60)
        return out.read_bytes()


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    return {voice: speak(voice, CLIP_TEXT) for voice in ("slt", "rms")}


@pytest.fixture(scope="module")
def captcha(tiny_set, tmp_path_factory):
    """(url, data folder) of a server in captcha mode (the default)."""
    from myna.server.app import create_app

    data_dir = tmp_path_factory.mktemp("captcha") / "data"
    settings = tiny_settings(tiny_set, data_dir, consent_mode="captcha")
    with serving(create_app(settings)) as url:
        yield url, data_dir


def challenge(url: str, language: str = "en") -> httpx.Response:
    return httpx.post(url + "/v1/voices/consent-challenge", json={"language": language}, headers=ADMIN, timeout=60)


def register(url: str, name: str, clip: bytes, challenge_id: str | None = None, recording: bytes | None = None,
             **extra) -> httpx.Response:
    files = {"file": ("clip.wav", clip)}
    if recording is not None:
        files["consent_recording"] = ("consent.wav", recording)
    data = {"name": name, "language": "en", "transcript": CLIP_TEXT, "consent_subject": f"{name} Example", **extra}
    if challenge_id is not None:
        data["challenge_id"] = challenge_id
    return httpx.post(url + "/v1/voices", files=files, data=data, headers=ADMIN, timeout=120)


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return response.json()["message"]


def test_the_speaker_reading_the_challenge_registers_the_voice(captcha, clips):
    url, data_dir = captcha
    issued = challenge(url).json()
    assert set(issued) == {"id", "language", "text", "issued_at", "expires_at"}
    assert issued["text"].startswith("I agree that my voice may be cloned.") and issued["expires_at"] > issued["issued_at"]
    message = refused(register(url, "Sally", clips["slt"], consent_statement="I agree."), 422, "consent_missing")
    assert "consent-challenge" in message  # a typed statement is not proof in captcha mode
    recording = speak("slt", issued["text"])
    created = register(url, "Sally", clips["slt"], issued["id"], recording)
    assert created.status_code == 201, created.text
    voice = created.json()
    assert issued["id"] in voice["consent"]["statement"] and voice["created_by"] == "admin"
    replayed = register(url, "Sally again", clips["slt"], issued["id"], recording)
    assert "already used" in refused(replayed, 422, "challenge_replayed")
    record = next(r for r in AuditLog(data_dir / "audit" / "audit.jsonl").records() if r.event == "voice.create")
    assert record.voice == voice["id"] and record.actor == "admin" and record.data["consent_mode"] == "captcha"
    assert record.data["consent"]["recording_sha256"] == hashlib.sha256(recording).hexdigest()
    assert record.data["consent"]["challenge_id"] == issued["id"]


def test_wrong_sentence_wrong_speaker_and_silence_are_refused(captcha, clips):
    url, data_dir = captcha
    first, second = challenge(url).json(), challenge(url).json()
    wrong_sentence = register(url, "Wrong sentence", clips["slt"], first["id"], speak("slt", second["text"]))
    assert "does not say the challenge sentence" in refused(wrong_sentence, 422, "wrong_sentence")
    third = challenge(url).json()
    wrong_speaker = register(url, "Wrong speaker", clips["slt"], third["id"], speak("rms", third["text"]))
    assert "same person" in refused(wrong_speaker, 422, "wrong_speaker")
    silence = io.BytesIO()
    sf.write(silence, np.zeros(16000 * 3, np.float32), 16000, format="WAV")
    fourth = challenge(url).json()
    refused(register(url, "Silent", clips["slt"], fourth["id"], silence.getvalue()), 422, "silence")
    refused(register(url, "Unknown", clips["slt"], "no-such-challenge", silence.getvalue()), 422, "challenge_unknown")
    names = [v["name"] for v in httpx.get(url + "/v1/voices", headers=ADMIN).json()["data"]]
    assert not {"Wrong sentence", "Wrong speaker", "Silent", "Unknown"} & set(names)
    assert len(list((data_dir / "voices" / "clips").iterdir())) == len(names)  # no clip of a refused voice


def test_challenges_need_a_key_and_a_recogniser(captcha):
    url, _ = captcha
    assert httpx.post(url + "/v1/voices/consent-challenge", json={}, timeout=60).status_code == 401
    assert "MYNA_CONSENT_ASR_MODEL" in refused(challenge(url, "zh"), 422, "asr_unavailable")
    refused(challenge(url, "xx"), 422, "challenge_language")
    default = httpx.post(url + "/v1/voices/consent-challenge", headers=ADMIN, timeout=60)  # no body: English
    assert default.status_code == 200 and default.json()["language"] == "en"


def test_a_new_clip_needs_new_consent_text_changes_do_not(captcha, clips):
    url, data_dir = captcha
    issued = challenge(url).json()
    voice = register(url, "Changing", clips["slt"], issued["id"], speak("slt", issued["text"])).json()
    patch = f"{url}/v1/voices/{voice['id']}"
    unproven = httpx.patch(patch, files={"file": ("new.wav", clips["slt"])}, headers=ADMIN, timeout=60)
    refused(unproven, 422, "consent_missing")
    renamed = httpx.patch(patch, data={"transcript": "A new transcript.", "name": "Changed"}, headers=ADMIN, timeout=60)
    assert renamed.status_code == 200 and renamed.json()["version"] == 2 and renamed.json()["name"] == "Changed"
    again = challenge(url).json()
    reclipped = httpx.patch(patch, files={"file": ("new.wav", clips["slt"]),
                                          "consent_recording": ("c.wav", speak("slt", again["text"]))},
                            data={"challenge_id": again["id"]}, headers=ADMIN, timeout=120)
    assert reclipped.status_code == 200 and reclipped.json()["version"] == 3, reclipped.text
    assert httpx.patch(patch, headers=ADMIN, timeout=60).status_code == 400  # nothing to change
    updates = [r for r in AuditLog(data_dir / "audit" / "audit.jsonl").records() if r.event == "voice.update"]
    assert [u.data["changed"] for u in updates if u.voice == voice["id"]] == [["name", "transcript"], ["clip"]]
    assert "consent" in updates[-1].data


def test_protected_speakers_and_typed_records(tiny_set, tmp_path, clips):
    from myna.server.app import create_app

    protected = tmp_path / "protected"
    protected.mkdir()
    (protected / "anchor.wav").write_bytes(speak("slt", "A protected voice says something quite different."))
    app = create_app(tiny_settings(tiny_set, tmp_path / "data", protected_voices=protected))  # record mode
    with serving(app) as url:
        typed = {"consent_statement": "I agree to my voice being cloned for tests."}
        message = refused(register(url, "Lookalike", clips["slt"], **typed), 403, "protected_speaker")
        assert "anchor" not in message  # the refusal does not say who is protected
        assert register(url, "Someone else", clips["rms"], **typed).status_code == 201
        refused(register(url, "No statement", clips["rms"]), 400, "consent_required")
        refused(challenge(url), 409, "consent_mode_record")
