"""The audit trail of a real server: every synthesis (each route, streamed or whole, cache hits too), voice
changes and admin actions are records of one verifiable chain; erasure empties a voice's personal fields;
a log that cannot be written stops synthesis and registration (no audio or voice without its record)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY, TTS_KEY
from myna.audit import AuditLog

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
READER = {"Authorization": f"Bearer {TTS_KEY}"}
EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}
CONSENT = {"consent_subject": "Dora Audited", "consent_statement": "I agree to my voice being cloned for tests."}


def _settings(tiny_set, tmp_path):
    from myna.server.auth import hash_key

    keys = tmp_path / "keys.txt"
    keys.write_text(f"{hash_key(TTS_KEY)} tts reader\n")
    audit_key = tmp_path / "audit.key"
    audit_key.write_text("cd" * 32)
    return tiny_settings(tiny_set, tmp_path / "data", api_keys_file=keys, audit_key_file=audit_key)


def _upload(url: str, clip, name: str) -> dict:
    response = httpx.post(url + "/v1/voices", headers=ADMIN, timeout=60, files={"file": (clip.name, clip.read_bytes())},
                          data={"name": name, "language": "en", "transcript": "This is my reference voice.", **CONSENT})
    assert response.status_code == 201, response.text
    return response.json()


def test_every_synthesis_and_admin_action_is_recorded(tiny_set, tmp_path):
    from websockets.sync.client import connect

    from myna.server.app import create_app

    settings = _settings(tiny_set, tmp_path)
    app = create_app(settings)
    with serving(app) as url:
        voice = _upload(url, tiny_set["clips"][0], "audited")
        tts = {"text": "Hello from a file.", "ref_audio_path": "ref0.wav", "seed": 3, **EN}
        speech = {"input": "Hello from a voice.", "voice": voice["id"], "response_format": "pcm", "seed": 2}
        with httpx.Client(base_url=url, timeout=120) as client:
            assert client.post("/tts", json=tts, headers=READER).headers["x-myna-cache"] == "miss"
            assert client.post("/tts", json=tts, headers=READER).headers["x-myna-cache"] == "hit"
            assert client.post("/tts", json={**tts, "streaming_mode": 1, "seed": 4}, headers=READER).status_code == 200
            assert client.post("/v1/audio/speech", json=speech, headers=READER).status_code == 200  # streamed
            sse = client.post("/v1/audio/speech", json={**speech, "stream_format": "sse", "seed": 5}, headers=ADMIN)
            assert sse.status_code == 200 and b"speech.audio.done" in sse.content
            assert client.post("/admin/reload", headers=ADMIN).status_code == 200
        with connect(url.replace("http://", "ws://") + "/v1/audio/speech/ws",
                     additional_headers=READER) as socket:
            socket.send(json.dumps({"input": "Hello by socket.", "voice": voice["id"], "seed": 6}))
            while not isinstance(message := socket.recv(timeout=120), str):
                pass
            assert json.loads(message)["type"] == "done"
        assert httpx.delete(f"{url}/v1/voices/{voice['id']}", headers=ADMIN, timeout=60).status_code == 204

    log = AuditLog(settings.audit_path, settings.audit_key_bytes())
    records = list(log.records())
    assert log.verify().ok and (settings.audit_path.stat().st_mode & 0o777) == 0o600
    start = records[0]
    assert start.event == "admin.start" and start.data["consent_mode"] == "record" and start.data["audit_keyed"]
    assert sorted(k["name"] for k in start.data["keys"]) == ["admin", "reader"] and len(start.data["keys_sha256"]) == 64
    synth = [r for r in records if r.event == "synthesis"]
    seen = [(r.data["route"], r.actor, r.data["stream"], r.data["cache"]) for r in synth]
    assert seen == [("/tts", "reader", False, "miss"), ("/tts", "reader", False, "hit"), ("/tts", "reader", True, "miss"),
                    ("/v1/audio/speech", "reader", True, "miss"), ("/v1/audio/speech", "admin", True, "miss"),
                    ("/v1/audio/speech", "reader", True, "off")]
    assert synth[0].voice is None and synth[0].data["reference"] == "ref0.wav" and synth[0].data["format"] == "wav"
    assert all(r.voice == voice["id"] for r in synth[3:]) and synth[3].data["format"] == "pcm"
    assert synth[0].data["text_hash"] == log.hash_text("Hello from a file.") and synth[0].data["text_hash"].startswith("hmac")
    assert synth[3].data["text_hash"] == log.hash_text("Hello from a voice.")
    assert {r.data["watermark"] for r in synth} == {0}  # the payload the engine embedded (the watermark is on)
    assert len({r.data["request"] for r in synth}) == len(synth)
    reload = next(r for r in records if r.event == "admin.reload")
    assert reload.actor == "admin" and reload.data == {"ok": True, "generation": 1}
    assert [r.event for r in records[-2:]] == ["voice.delete", "audit.erase"]
    assert "Dora Audited" not in settings.audit_path.read_text()
    env = {"MYNA_AUDIT_LOG": str(settings.audit_path), "MYNA_AUDIT_KEY_FILE": str(settings.audit_key_file),
           **{k: v for k, v in os.environ.items() if not k.startswith("MYNA_")}}
    verified = subprocess.run([sys.executable, "-m", "myna", "audit", "verify"], capture_output=True, text=True,
                              env=env, timeout=120)
    assert verified.returncode == 0 and "ok" in verified.stdout, verified.stdout + verified.stderr


def test_a_log_that_cannot_be_written_stops_synthesis_and_registration(tiny_set, tmp_path):
    from myna.server.app import create_app

    settings = _settings(tiny_set, tmp_path)
    with serving(create_app(settings)) as url:
        voice = _upload(url, tiny_set["clips"][0], "kept")
        head = settings.audit_path.with_name(settings.audit_path.name + ".head")
        anchor = head.read_text()
        head.write_text(json.dumps({"seq": 1, "hash": "0" * 64, "mac": None}))  # a rolled-back anchor: appends stop
        with httpx.Client(base_url=url, headers=ADMIN, timeout=120) as client:
            tts = client.post("/tts", json={"text": "Hello.", "ref_audio_path": "ref0.wav", **EN})
            speech = client.post("/v1/audio/speech", json={"input": "Hello.", "voice": voice["id"]})
            upload = client.post("/v1/voices", files={"file": ("a.wav", tiny_set["clips"][1].read_bytes())},
                                 data={"name": "unlogged", "language": "en", **CONSENT})
            listed = [v["name"] for v in client.get("/v1/voices").json()["data"]]
            head.write_text(anchor)
            assert client.post("/tts", json={"text": "Hello.", "ref_audio_path": "ref0.wav", **EN}).status_code == 200
    for response in (tts, speech, upload):
        assert response.status_code == 500 and response.json()["error"]["code"] == "audit_error", response.text
        assert str(tmp_path) not in response.text
    assert b"RIFF" not in speech.content and listed == ["kept"]  # no audio, no voice without its record
