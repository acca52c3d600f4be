"""/v1/voices on a real server: bad uploads get 4xx and store nothing; delete erases; restart keeps voices."""

from __future__ import annotations

import io
import struct
import threading
import time

import numpy as np
import pytest
import redis
import soundfile as sf
from redis_fixture import redis_url  # noqa: F401 - pytest fixture

from conftest import Server, upload_voice

CONSENT = {"consent_subject": "Ada", "consent_statement": "I agree to my voice being cloned for tests."}


def _wav(audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _nan_wav() -> bytes:
    samples = np.full(32000 * 4, np.nan, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 32000, 32000 * 4, 4, 32)
    return b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", len(samples)) + samples


def _voiced(seconds: float, rate: int = 32000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone


BAD_UPLOADS = {
    "not audio": (b"this is a text file, not audio" * 100, "notes.wav"),
    "empty": (b"", "empty.wav"),
    "silent": (_wav(np.zeros(32000 * 4, np.float32), 32000), "silent.wav"),
    "too long": (_wav(_voiced(61, 16000), 16000), "long.wav"),
    "too short": (_wav(_voiced(1.0), 32000), "short.wav"),
    "nan": (_nan_wav(), "nan.wav"),
    "192 kHz": (_wav(_voiced(3.5, 192000), 192000), "hi.wav"),
    "8 channels": (_wav(_voiced(3.5, 16000, 8), 16000), "multi.wav"),
}


def _stored_files(srv: Server) -> list:
    return sorted(p for p in (srv.data_dir / "voices" / "clips").rglob("*") if p.is_file())


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_bad_uploads_are_refused_and_nothing_is_stored(server, case):
    data, filename = BAD_UPLOADS[case]
    before = _stored_files(server)
    with server.client(headers=server.admin) as client:
        response = client.post("/v1/voices", files={"file": (filename, data)},
                               data={"name": f"bad {case}", "language": "en", "transcript": "hello", **CONSENT})
        names = [v["name"] for v in client.get("/v1/voices").json()["data"]]
    if case in ("192 kHz", "8 channels") and response.status_code == 201:  # within the registry's limits
        with server.client(headers=server.admin) as client:
            assert client.delete(f"/v1/voices/{response.json()['id']}").status_code == 204
        return
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["message"]
    assert f"bad {case}" not in names and _stored_files(server) == before


def test_consent_is_required(server, tiny_set):
    clip = tiny_set["clips"][0].read_bytes()
    with server.client(headers=server.admin) as client:
        missing = client.post("/v1/voices", files={"file": ("a.wav", clip)}, data={"name": "x", "language": "en"})
        blank = client.post("/v1/voices", files={"file": ("a.wav", clip)},
                            data={"name": "x", "language": "en", "consent_subject": " ", "consent_statement": " "})
    assert missing.status_code == 422 and "consent_subject" in missing.json()["message"]
    assert blank.status_code == 400 and "consent" in blank.json()["message"]


def test_unknown_voice_and_bad_language(server, tiny_set):
    with server.client(headers=server.admin) as client:
        assert client.get("/v1/voices/0123456789abcdef0123456789abcdef").status_code == 404
        assert client.delete("/v1/voices/nope").status_code == 404
        bad_lang = client.post("/v1/voices", files={"file": ("a.wav", tiny_set["clips"][0].read_bytes())},
                               data={"name": "x", "language": "klingon", **CONSENT})
    assert bad_lang.status_code == 400


def test_delete_leaves_no_file_or_cache_entry(server, tiny_set):
    voice = upload_voice(server, tiny_set["clips"][1], "to-delete")
    folder = server.data_dir / "voices" / "clips" / voice["id"]
    assert folder.is_dir()
    body = {"input": "Remember me.", "voice": voice["id"], "response_format": "wav", "seed": 4, "stream": False}
    with server.client(headers=server.admin) as client:
        assert client.post("/v1/audio/speech", json=body).headers["x-myna-cache"] == "miss"
        assert client.post("/v1/audio/speech", json=body).headers["x-myna-cache"] == "hit"
        entries_before = _gauge(client.get("/metrics").text, "myna_result_cache_entries")
        assert client.delete(f"/v1/voices/{voice['id']}").status_code == 204
        entries_after = _gauge(client.get("/metrics").text, "myna_result_cache_entries")
        assert client.get(f"/v1/voices/{voice['id']}").status_code == 404
        assert client.post("/v1/audio/speech", json=body).status_code == 404
    assert entries_after == entries_before - 1
    assert not folder.exists()
    assert not [p for p in server.data_dir.rglob("*") if voice["id"] in p.name]


def _gauge(metrics: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " "))


def test_restart_keeps_voices_and_redis_results(tiny_set, tmp_path, redis_url):  # noqa: F811 - fixture
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1", MYNA_REDIS_URL=redis_url).start()
    try:
        voice = upload_voice(srv, tiny_set["clips"][0], "persistent")
        body = {"input": "Still here.", "voice": "persistent", "response_format": "pcm", "seed": 1, "stream": False}
        with srv.client(headers=srv.tts) as client:
            before = client.post("/v1/audio/speech", json=body)
        assert before.headers["x-myna-cache"] == "miss"
        in_flight: dict = {}

        def long_request() -> None:
            text = " ".join(f"Sentence {n} is here." for n in range(4))
            with srv.client(headers={**srv.tts, "Cache-Control": "no-cache"}) as client:
                in_flight["response"] = client.post("/v1/audio/speech", json={**body, "input": text})

        worker = threading.Thread(target=long_request)
        worker.start()
        with srv.client() as client:
            while not client.get("/ready").json()["busy"]:
                time.sleep(0.02)
        assert srv.stop() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
        worker.join(60)
        assert in_flight["response"].status_code == 200 and len(in_flight["response"].content) > 32000  # finished
        assert '"event": "stopped"' in srv.log_path.read_text()  # the lifespan shutdown ran to its end

        srv.start()
        with srv.client(headers=srv.admin) as client:
            listed = client.get("/v1/voices").json()["data"]
            cached = client.post("/v1/audio/speech", json=body)
            fresh = client.post("/v1/audio/speech", json=body, headers={"Cache-Control": "no-cache"})
            redis_keys = redis.Redis.from_url(redis_url)
            assert any(voice["id"] in key.decode() for key in redis_keys.scan_iter())
            assert client.delete(f"/v1/voices/{voice['id']}").status_code == 204
            assert not any(voice["id"] in key.decode() for key in redis_keys.scan_iter())
        assert [v["id"] for v in listed] == [voice["id"]]
        assert cached.headers["x-myna-cache"] == "hit" and cached.content == before.content == fresh.content
    finally:
        srv.stop()


def test_voices_are_encrypted_at_rest_with_a_key_file(tiny_set, tmp_path):
    key_file = tmp_path / "voice.key"
    key_file.write_text("ab" * 32)
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1", MYNA_VOICE_KEY_FILE=str(key_file)).start()
    try:
        voice = upload_voice(srv, tiny_set["clips"][0], "secret-voice", transcript="A private transcript.")
        stored = _stored_files(srv)
        assert stored and all(p.name.endswith(".enc") for p in stored)
        raw = b"".join(p.read_bytes() for p in srv.data_dir.rglob("*") if p.is_file())
        assert b"private transcript" not in raw and b"secret-voice" not in raw
        body = {"input": "Hello there.", "voice": voice["id"], "response_format": "pcm", "seed": 1, "stream": False}
        with srv.client(headers=srv.tts) as client:
            assert client.post("/v1/audio/speech", json=body).status_code == 200
    finally:
        srv.stop()


def test_consent_records_are_for_admin_keys_only_and_the_registering_key_is_kept(server, tiny_set):
    voice = upload_voice(server, tiny_set["clips"][0], "consent-visibility")
    with server.client() as client:
        as_tts = client.get(f"/v1/voices/{voice['id']}", headers=server.tts).json()
        listed = {v["id"]: v for v in client.get("/v1/voices", headers=server.tts).json()["data"]}
        as_admin = client.get(f"/v1/voices/{voice['id']}", headers=server.admin).json()
    assert as_tts["consent"] is None and as_tts["created_by"] is None
    assert listed[voice["id"]]["consent"] is None
    assert as_admin["consent"]["subject"] == "consent-visibility" and as_admin["created_by"] == "admin"
    assert voice["created_by"] == "admin"


def test_names_are_unique_ignoring_case_and_visible(server, tiny_set):
    voice = upload_voice(server, tiny_set["clips"][1], "Unique Name")
    clip = tiny_set["clips"][1].read_bytes()
    with server.client(headers=server.admin) as client:
        again = client.post("/v1/voices", files={"file": ("a.wav", clip)},
                            data={"name": "UNIQUE NAME", "language": "en", **CONSENT})
        hidden = client.post("/v1/voices", files={"file": ("a.wav", clip)},
                             data={"name": "ad\u202emin", "language": "en", **CONSENT})
        spoken = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "unique name", "response_format": "wav",
                                                       "seed": 1, "stream": False})  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["code"] == "name_taken"
    assert hidden.status_code == 400 and "control or format" in hidden.json()["message"]
    assert spoken.status_code == 200
    with server.client(headers=server.admin) as client:
        assert client.delete(f"/v1/voices/{voice['id']}").status_code == 204


def test_the_data_folder_is_private(server, tiny_set):
    voice = upload_voice(server, tiny_set["clips"][0], "private-files")
    with server.client(headers=server.admin) as client:
        assert client.delete(f"/v1/voices/{voice['id']}").status_code == 204  # writes the deletion log
    upload_voice(server, tiny_set["clips"][0], "private-files")
    paths = [server.data_dir, *server.data_dir.rglob("*")]
    assert {"voices.sqlite3-wal", "voices.sqlite3-shm", "deletions.log"} <= {p.name for p in paths}
    for path in paths:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
