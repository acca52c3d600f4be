"""Erasure wins: a voice deleted while a request speaks with it leaves nothing behind, anywhere."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import redis
from inprocess import serving, tiny_settings
from redis_fixture import redis_url  # noqa: F401 - pytest fixture

from conftest import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SUBJECT = "Grace Erasable"


def _upload(url: str, clip) -> dict:
    response = httpx.post(url + "/v1/voices", headers=ADMIN, timeout=60,
                          files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                          data={"name": "short-lived", "language": "en", "transcript": "This is my reference voice.",
                                "consent_subject": SUBJECT, "consent_statement": "Yes, for this test only."})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("cache,stream", [("embedded", False), ("redis", True)])
def test_a_voice_deleted_mid_request_leaves_nothing(tiny_set, tmp_path, request, cache, stream):
    overrides = {}
    if cache == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
        redis.Redis.from_url(overrides["redis_url"]).flushdb()
    data_dir = tmp_path / "data"
    app = create_app_for(tiny_set, data_dir, **overrides)
    service = app.state.service
    with serving(app) as url:
        voice = _upload(url, tiny_set["clips"][0])
        text = " ".join(f"Sentence number {n} is here." for n in range(12))
        body = {"input": text, "voice": voice["id"], "response_format": "wav", "seed": 5, "stream": stream}
        answer: dict = {}
        audio_started = threading.Event()

        def speak() -> None:
            with httpx.stream("POST", url + "/v1/audio/speech", headers=ADMIN, json=body, timeout=120) as response:
                pieces = []
                for piece in response.iter_raw():
                    pieces.append(piece)
                    audio_started.set()
                answer["response"], answer["content"] = response, b"".join(pieces)

        speaker = threading.Thread(target=speak)
        speaker.start()
        deadline = time.monotonic() + 30
        while not service.pool.busy and time.monotonic() < deadline:  # the request is being synthesized
            time.sleep(0.01)
        if stream:
            assert audio_started.wait(30)  # the first chunk is out: the answer has begun
        else:
            time.sleep(0.3)  # its prompt is in the worker's cache by now
        assert httpx.delete(f"{url}/v1/voices/{voice['id']}", headers=ADMIN, timeout=60).status_code == 204
        speaker.join(120)
        response, content = answer["response"], answer["content"]
        if stream:  # headers were out: the stream is cut short instead
            assert response.status_code == 200 and len(content) < 32000 * 2 * 8
        else:
            assert response.status_code == 404 and b"voice_deleted" in content
        time.sleep(0.5)
        # Nothing of the voice remains: result caches, worker caches, files, database.
        assert service.cache.stats()["entries"] == 0
        if cache == "redis":
            keys = [k.decode() for k in redis.Redis.from_url(overrides["redis_url"]).scan_iter()]
            assert not [k for k in keys if voice["id"] in k], keys
        assert all(synth.forget(voice["id"]) == 0 for synth in service.pool.synthesizers())
        assert service.pool.cancel_voice(voice["id"], RuntimeError("none left")) == 0
    for path in data_dir.rglob("*"):
        assert voice["id"] not in path.name
        if path.is_file():
            content = path.read_bytes()
            if path.name == "deletions.log":  # the audit line of the erasure: time and id only
                assert SUBJECT.encode() not in content and b"short-lived" not in content
                continue
            assert voice["id"].encode() not in content and SUBJECT.encode() not in content, path


def create_app_for(tiny_set, data_dir, **overrides):
    from myna.server.app import create_app

    return create_app(tiny_settings(tiny_set, data_dir, **overrides))
