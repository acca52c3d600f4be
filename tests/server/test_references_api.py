"""Emotion references over HTTP: add, list and delete them on a real server, under the consent mode, in the audit
log, and erased with their voice."""

from __future__ import annotations

import httpx
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY, upload_voice
from myna.audit import AuditLog

REF_TEXT = "What a lovely day it is today."


def add_reference(srv, voice_id: str, clip, emotion: str = "happy", headers=None, **data) -> httpx.Response:
    with srv.client() as http:
        return http.post(f"/v1/voices/{voice_id}/references", headers=srv.admin if headers is None else headers,
                         files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                         data={"emotion": emotion, "transcript": REF_TEXT, **data})


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def test_add_list_and_delete_references(server, tiny_set):
    voice = upload_voice(server, tiny_set["clips"][1], "reference-voice")
    vid = voice["id"]
    added = add_reference(server, vid, tiny_set["clips"][0], "Happy")
    assert added.status_code == 201, added.text
    record = added.json()
    assert record["emotion"] == "happy" and record["transcript"] == REF_TEXT and record["voice_id"] == vid
    assert record["language"] == voice["language"] and abs(record["clip_seconds"] - 4.2) < 0.05
    calm = add_reference(server, vid, tiny_set["clips"][0], "calm", language="en").json()
    with server.client() as http:
        listed = http.get(f"/v1/voices/{vid}/references", headers=server.tts)  # reading needs tts only
        assert listed.status_code == 200
        assert [(r["id"], r["emotion"]) for r in listed.json()["data"]] == [(record["id"], "happy"), (calm["id"], "calm")]
        assert set(listed.json()["data"][0]) == {"id", "voice_id", "emotion", "transcript", "language", "clip_seconds",
                                                 "created_at"}
        refused(add_reference(server, vid, tiny_set["clips"][0], "happy"), 409, "reference_exists")
        replaced = add_reference(server, vid, tiny_set["clips"][0], "happy", replace="true")
        assert replaced.status_code == 201 and replaced.json()["id"] != record["id"]
        assert http.delete(f"/v1/voices/{vid}/references/happy", headers=server.tts).status_code in (401, 403)
        assert http.delete(f"/v1/voices/{vid}/references/happy", headers=server.admin).status_code == 204
        assert http.delete(f"/v1/voices/{vid}/references/{calm['id']}", headers=server.admin).status_code == 204
        assert http.get(f"/v1/voices/{vid}/references", headers=server.tts).json()["data"] == []
        refused(http.delete(f"/v1/voices/{vid}/references/happy", headers=server.admin), 404, "unknown_reference")
        refused(http.get("/v1/voices/nosuchvoice/references", headers=server.tts), 404, "unknown_voice")
    refused(add_reference(server, "nosuchvoice", tiny_set["clips"][0]), 404, "unknown_voice")
    refused(add_reference(server, vid, tiny_set["clips"][0], "not a label"), 400, "invalid_request")
    refused(add_reference(server, vid, tiny_set["clips"][0], "auto"), 400, "invalid_request")
    assert add_reference(server, vid, tiny_set["clips"][0], headers=server.tts).status_code in (401, 403)


def test_deleting_the_voice_erases_its_references(server, tiny_set):
    vid = upload_voice(server, tiny_set["clips"][1], "short-lived-voice")["id"]
    assert add_reference(server, vid, tiny_set["clips"][0], "sad").status_code == 201
    folder = server.data_dir / "voices" / "clips" / vid / "refs"
    assert len(list(folder.iterdir())) == 1
    with server.client() as http:
        assert http.delete(f"/v1/voices/{vid}", headers=server.admin).status_code == 204
        refused(http.get(f"/v1/voices/{vid}/references", headers=server.tts), 404, "unknown_voice")
    assert not folder.exists()


def test_captcha_mode_needs_a_consent_recording_and_changes_are_audited(tiny_set, tmp_path):
    from myna.server.app import create_app
    from myna.voices.registry import Consent

    settings = tiny_settings(tiny_set, tmp_path / "data", consent_mode="captcha")
    app = create_app(settings)
    service = app.state.service
    voice = service.registry.create(tiny_set["clips"][1].read_bytes(), "ref1.wav", "This is my reference voice.",
                                    "en", "captcha-voice", Consent("Someone", "recorded consent"))
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    clip = tiny_set["clips"][0]
    with serving(app) as url:
        response = httpx.post(f"{url}/v1/voices/{voice.id}/references", headers=admin, timeout=60,
                              files={"file": ("ref0.wav", clip.read_bytes())},
                              data={"emotion": "happy", "transcript": REF_TEXT})
        refused(response, 422, "consent_missing")
        assert "consent recording" in response.json()["message"]
        assert httpx.get(f"{url}/v1/voices/{voice.id}/references", headers=admin).json()["data"] == []
        # what record mode stores is audited: add a reference past the consent step, then remove it over HTTP
        service.references.add(voice.id, clip.read_bytes(), "ref0.wav", REF_TEXT, "en", "happy")
        assert httpx.delete(f"{url}/v1/voices/{voice.id}/references/happy", headers=admin).status_code == 204
    events = [(r.event, r.voice, r.data) for r in AuditLog(settings.audit_path, settings.audit_key_bytes()).records()]
    assert not any(event == "voice.reference.add" for event, _, _ in events)
    removed = [data for event, vid, data in events if event == "voice.reference.remove" and vid == voice.id]
    assert len(removed) == 1 and removed[0]["emotion"] == "happy"


def test_record_mode_additions_are_audited(tiny_set, tmp_path):
    from myna.server.app import create_app

    settings = tiny_settings(tiny_set, tmp_path / "data")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with serving(create_app(settings)) as url:
        created = httpx.post(url + "/v1/voices", headers=admin, timeout=60,
                             files={"file": ("ref1.wav", tiny_set["clips"][1].read_bytes())},
                             data={"name": "audited", "language": "en", "consent_subject": "Ann",
                                   "consent_statement": "I agree."})
        vid = created.json()["id"]
        added = httpx.post(f"{url}/v1/voices/{vid}/references", headers=admin, timeout=60,
                           files={"file": ("ref0.wav", tiny_set["clips"][0].read_bytes())},
                           data={"emotion": "whisper", "transcript": REF_TEXT, "language": "en"})
        assert added.status_code == 201, added.text
    records = [r for r in AuditLog(settings.audit_path, settings.audit_key_bytes()).records()
               if r.event == "voice.reference.add"]
    assert len(records) == 1 and records[0].voice == vid and records[0].actor == "admin"
    assert records[0].data["reference"] == added.json()["id"] and records[0].data["emotion"] == "whisper"
    assert REF_TEXT not in settings.audit_path.read_text()  # the transcript stays with the reference


def test_the_page_config_reports_the_reference_routes(server):
    with server.client() as http:
        config = http.get("/v1/ui/config").json()
        paths = http.get("/openapi.json").json()["paths"]
    assert config["features"]["references"] is True and config["features"]["emotion"] is True
    assert {"get", "post"} <= set(paths["/v1/voices/{voice_id}/references"])
    assert "delete" in paths["/v1/voices/{voice_id}/references/{key}"]


def test_references_are_encrypted_with_the_voice_key_and_still_speak(tiny_set, tmp_path):
    from myna.server.app import create_app

    key_file = tmp_path / "voice.key"
    key_file.write_text("cd" * 32)
    settings = tiny_settings(tiny_set, tmp_path / "data", voice_key_file=key_file)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with serving(create_app(settings)) as url:
        vid = httpx.post(url + "/v1/voices", headers=admin, timeout=60,
                         files={"file": ("ref1.wav", tiny_set["clips"][1].read_bytes())},
                         data={"name": "sealed", "language": "en", "transcript": "This is my reference voice.",
                               "consent_subject": "Ann", "consent_statement": "I agree."}).json()["id"]
        added = httpx.post(f"{url}/v1/voices/{vid}/references", headers=admin, timeout=60,
                           files={"file": ("ref0.wav", tiny_set["clips"][0].read_bytes())},
                           data={"emotion": "happy", "transcript": "A private happy sentence."})
        assert added.status_code == 201 and added.json()["transcript"] == "A private happy sentence."
        stored = list((settings.data_dir / "voices" / "clips" / vid / "refs").iterdir())
        assert [p.name.endswith(".wav.enc") for p in stored] == [True]
        raw = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
        assert b"private happy sentence" not in raw
        body = {"input": "Hello there.", "voice": vid, "response_format": "wav", "seed": 4, "stream": False}
        plain = httpx.post(url + "/v1/audio/speech", headers=admin, json=body, timeout=120)
        happy = httpx.post(url + "/v1/audio/speech", headers=admin, json={**body, "emotion": "happy"}, timeout=120)
        assert plain.status_code == happy.status_code == 200 and "x-myna-note" not in happy.headers
        assert happy.content != plain.content
