"""Watermark payloads in a real server: each request marks its audio with its own payload, named in its
`synthesis` audit record (cache hits name the payload their cached audio carries, streams carry one
payload across chunks, the batched workers too), `myna audit find` leads from a payload to its record,
and POST /v1/watermark/detect answers what `myna watermark detect` prints."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import soundfile
from inprocess import serving, tiny_settings
from redis_fixture import redis_url  # noqa: F401 - pytest fixture

from conftest import ADMIN_KEY, TTS_KEY
from myna.audit import AuditLog

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
READER = {"Authorization": f"Bearer {TTS_KEY}"}
EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en", "ref_audio_path": "ref0.wav"}


def _settings(tiny_set, root, **overrides):
    from myna.server.auth import hash_key

    root.mkdir(parents=True, exist_ok=True)
    keys = root / "keys.txt"
    keys.write_text(f"{hash_key(TTS_KEY)} tts reader\n")
    audit_key = root / "audit.key"
    audit_key.write_text("ab" * 32)
    return tiny_settings(tiny_set, root / "data", api_keys_file=keys, audit_key_file=audit_key, **overrides)


@pytest.fixture(scope="module")
def served(tiny_set, tmp_path_factory):
    """One in-process server (embedded result cache, watermark on) with a registered voice."""
    from myna.server.app import create_app

    settings = _settings(tiny_set, tmp_path_factory.mktemp("wmapi"), max_upload_bytes=2**20)  # a 4 s clip: 270 kB
    with serving(create_app(settings)) as url:
        clip = tiny_set["clips"][0]
        created = httpx.post(url + "/v1/voices", headers=ADMIN, timeout=60,
                             files={"file": (clip.name, clip.read_bytes())},
                             data={"name": "marked", "language": "en", "transcript": "This is my reference voice.",
                                   "consent_subject": "Mark", "consent_statement": "I agree, for tests."})
        assert created.status_code == 201, created.text
        yield SimpleNamespace(url=url, settings=settings, voice=created.json()["id"])


def records_of(settings, text: str) -> list:
    """The `synthesis` records of requests that spoke `text` (texts differ between requests here)."""
    log = AuditLog(settings.audit_path, settings.audit_key_bytes())
    digest = log.hash_text(text)
    return [r for r in log.records() if r.event == "synthesis" and r.data["text_hash"] == digest]


def detect(url: str, body: bytes, name: str = "clip.wav") -> dict:
    """What POST /v1/watermark/detect says about `body`."""
    response = httpx.post(url + "/v1/watermark/detect", headers=READER, files={"file": (name, body)}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _tts(url: str, text: str, **fields) -> httpx.Response:
    response = httpx.post(url + "/tts", headers=READER, json={"text": text, **EN, **fields}, timeout=120)
    assert response.status_code == 200, response.text
    return response


def _cli(settings, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MYNA_")},
           "MYNA_AUDIT_LOG": str(settings.audit_path), "MYNA_AUDIT_KEY_FILE": str(settings.audit_key_file)}
    return subprocess.run([sys.executable, "-m", "myna", *args], input=stdin, capture_output=True, env=env,
                          timeout=120)


def test_each_request_carries_its_own_payload_and_it_leads_to_its_record(served, tmp_path):
    texts = ("Good morning to you, my friend.", "The train leaves at nine tonight.")
    tts = _tts(served.url, texts[0], seed=11)
    speech = httpx.post(served.url + "/v1/audio/speech", headers=READER, timeout=120,
                        json={"input": texts[1], "voice": served.voice, "response_format": "wav", "stream": False,
                              "seed": 12})
    assert speech.status_code == 200, speech.text
    found = [detect(served.url, tts.content, "a.wav"), detect(served.url, speech.content, "b.wav")]
    assert [f["file"] for f in found] == ["a.wav", "b.wav"] and all(f["watermarked"] for f in found)
    payloads = [f["payload"] for f in found]
    assert None not in payloads and 0 not in payloads and payloads[0] != payloads[1]
    for text, payload in zip(texts, payloads, strict=True):
        (record,) = records_of(served.settings, text)
        assert record.data["watermark"] == payload

    # the workflow: a clip is found -> detect -> payload -> the record (key, voice, time)
    clip = tmp_path / "found.wav"
    clip.write_bytes(speech.content)
    detected = _cli(served.settings, "watermark", "detect", str(clip))
    assert detected.returncode == 0 and json.loads(detected.stdout)["payload"] == payloads[1]
    found_cli = _cli(served.settings, "audit", "find", "--detected", "-", stdin=detected.stdout)
    (line,) = found_cli.stdout.decode().splitlines()
    record = json.loads(line)
    assert found_cli.returncode == 0, found_cli.stderr
    assert (record["event"], record["actor"], record["voice"]) == ("synthesis", "reader", served.voice)
    assert record["data"]["watermark"] == payloads[1] and record["time"]
    by_number = _cli(served.settings, "audit", "find", "--payload", hex(payloads[0]))
    assert [json.loads(x)["data"]["route"] for x in by_number.stdout.decode().splitlines()] == ["/tts"]
    unused = next(p for p in range(1, 100) if p not in payloads)
    missing = _cli(served.settings, "audit", "find", "--payload", str(unused))
    assert missing.returncode == 1 and missing.stdout == b"" and b"no synthesis record" in missing.stderr


def _cache_hit_names_the_cached_payload(url: str, settings, text: str) -> None:
    first = _tts(url, text, seed=21)
    again = _tts(url, text, seed=21)
    assert (first.headers["x-myna-cache"], again.headers["x-myna-cache"]) == ("miss", "hit")
    assert again.content == first.content
    payload = detect(url, again.content)["payload"]
    miss, hit = records_of(settings, text)
    assert (miss.data["cache"], hit.data["cache"]) == ("miss", "hit")
    assert miss.data["watermark"] == hit.data["watermark"] == payload not in (None, 0)
    assert hit.data["made_by"] == miss.data["request"] != hit.data["request"]


def test_a_cache_hit_names_the_payload_its_audio_carries(served):
    _cache_hit_names_the_cached_payload(served.url, served.settings, "A repeatable sentence for the cache.")


def test_a_redis_cache_hit_names_the_payload_made_by_another_server(tiny_set, tmp_path, redis_url):  # noqa: F811
    from myna.server.app import create_app

    text = "A sentence the next server finds in Redis."
    settings = _settings(tiny_set, tmp_path / "one", redis_url=redis_url)
    with serving(create_app(settings)) as url:
        made = _tts(url, text, seed=31)
    later = _settings(tiny_set, tmp_path / "two", redis_url=redis_url)  # another server, its own audit log
    with serving(create_app(later)) as url:
        hit = _tts(url, text, seed=31)
        payload = detect(url, hit.content)["payload"]
    assert hit.headers["x-myna-cache"] == "hit" and hit.content == made.content
    (miss_record,), (hit_record,) = records_of(settings, text), records_of(later, text)
    assert hit_record.data["watermark"] == miss_record.data["watermark"] == payload not in (None, 0)
    assert hit_record.data["made_by"] == miss_record.data["request"]


def test_a_streamed_answer_joined_from_chunks_carries_one_payload(served):
    text = "Streaming this sentence in small token chunks."
    chunks = []
    with httpx.stream("POST", served.url + "/tts", headers=READER, timeout=120,
                      json={"text": text, **EN, "streaming_mode": 2, "min_chunk_length": 8, "seed": 13}) as response:
        assert response.status_code == 200
        chunks = list(response.iter_bytes())
    found = detect(served.url, b"".join(chunks))  # a streamed WAV: its header states no length
    (record,) = records_of(served.settings, text)
    assert found["watermarked"] and found["payload"] == record.data["watermark"] not in (None, 0)
    assert record.data["stream"] is True


def test_no_request_field_turns_the_mark_off(served):
    off = {"watermark": False, "watermark_payload": 0, "no_watermark": True, "provenance": "none"}
    texts = ("Please leave this one unmarked, if you would be so kind.", "And this one unmarked too, thank you.")
    tts = _tts(served.url, texts[0], seed=14, **off)
    speech = httpx.post(served.url + "/v1/audio/speech", headers=READER, timeout=120,
                        json={"input": texts[1], "voice": served.voice, "response_format": "wav", "seed": 15, **off})
    assert speech.status_code == 200, speech.text
    for text, body in zip(texts, (tts.content, speech.content), strict=True):
        found = detect(served.url, body)
        (record,) = records_of(served.settings, text)
        assert found["watermarked"] and found["payload"] == record.data["watermark"] not in (None, 0)


def test_detect_route_on_unmarked_and_transcoded_audio(served, tmp_path):
    rng = np.random.default_rng(5)
    seconds = np.arange(6 * 32000) / 32000
    clean = (0.3 * np.sin(2 * np.pi * 220 * seconds) + 0.05 * rng.standard_normal(seconds.size)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, clean, 32000, format="WAV")
    found = detect(served.url, buffer.getvalue(), "clean.wav")
    assert found["file"] == "clean.wav" and found["watermarked"] is False and found["payload"] is None
    assert set(found) == {"file", "watermarked", "confidence", "payload", "score"} and found["confidence"] < 0.999
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is installed by scripts/setup.sh")
    text = "A clip that went through a codec before it was found."
    marked = tmp_path / "marked.wav"
    marked.write_bytes(_tts(served.url, text, seed=41).content)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(marked), "-c:a", "aac", "-b:a", "96k", str(tmp_path / "m.m4a")],
                   check=True, timeout=120)
    found = detect(served.url, (tmp_path / "m.m4a").read_bytes(), "m.m4a")  # decoded by ffmpeg
    (record,) = records_of(served.settings, text)
    assert found["watermarked"] and found["payload"] == record.data["watermark"]


def test_detect_route_refuses_what_is_not_audio(served):
    with httpx.Client(base_url=served.url, timeout=60) as client:
        notes = client.post("/v1/watermark/detect", headers=READER, files={"file": ("notes.wav", b"not audio at all")})
        empty = client.post("/v1/watermark/detect", headers=READER, files={"file": ("empty.mp3", b"")})
        missing = client.post("/v1/watermark/detect", headers=READER, data={"name": "x"})
        anonymous = client.post("/v1/watermark/detect", files={"file": ("a.wav", b"RIFF")})
        too_large = client.post("/v1/watermark/detect", headers=READER, files={"file": ("big.wav", bytes(2**20 + 1))})
        metrics = client.get("/metrics").text  # one request line and one sample per request, under its own route
    for response in (notes, empty):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "unreadable_audio" and error["type"] == "invalid_request_error"
        assert "myna-detect" not in response.text and "/tmp" not in response.text  # the upload's name, not ours
    assert "notes.wav" in notes.json()["message"]
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_request"
    assert anonymous.status_code == 401
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "upload_too_large"
    assert 'myna_requests_total{route="/v1/watermark/detect",status="422"}' in metrics
    assert 'myna_requests_total{route="/v1/watermark/detect",status="401"}' in metrics


def test_batched_workers_mark_each_request_with_its_payload(tiny_set, tmp_path):
    from myna.server.app import create_app

    settings = _settings(tiny_set, tmp_path, batch_size=2, workers=2)
    texts = ("The first of two requests decoded together, with a few more words to speak.",
             "The second of two requests in one batch, and it goes on a little longer too.")
    bodies: dict[str, bytes] = {}
    with serving(create_app(settings)) as url:
        def ask(text: str) -> None:
            bodies[text] = _tts(url, text, seed=16).content

        threads = [threading.Thread(target=ask, args=(text,)) for text in texts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        found = [detect(url, bodies[text]) for text in texts]
    payloads = [f["payload"] for f in found]
    assert all(f["watermarked"] for f in found) and payloads[0] != payloads[1]
    for text, payload in zip(texts, payloads, strict=True):
        (record,) = records_of(settings, text)
        assert record.data["watermark"] == payload not in (None, 0)


def test_the_operator_switch_turns_marking_off(tiny_set, tmp_path):
    from myna.server.app import create_app

    settings = _settings(tiny_set, tmp_path, watermark=False)
    text = "The operator turned the watermark off."
    with serving(create_app(settings)) as url:
        found = detect(url, _tts(url, text, seed=51).content)
    (record,) = records_of(settings, text)
    assert not found["watermarked"] and found["payload"] is None and record.data["watermark"] is None


def test_a_cached_result_keeps_its_payload_and_an_entry_without_one_is_a_miss():
    from myna.server.provenance import Provenance, pack_result, unpack_result

    made = Provenance("/tts", None, "reader", "Hi.", "abc123", 0xFFFFFFFF)
    assert unpack_result(pack_result(made, b"RIFF....")) == (b"RIFF....", 0xFFFFFFFF, "abc123")
    assert unpack_result(pack_result(made.carrying(None), b"")) == (b"", None, "abc123")  # made with the mark off
    for stored in (b"RIFF....", b"", b"MYNAR1\x00\x05{bad}RIFF", b'MYNAR1\x00\x1c{"payload":-1,"request":"x"}RIFF'):
        assert unpack_result(stored) is None, stored
