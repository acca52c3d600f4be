"""Every endpoint of a real `myna serve` on 127.0.0.1 with the tiny model set."""

from __future__ import annotations

import io
import json
import time
import urllib.parse
import urllib.request

import httpx
import pytest
import soundfile as sf

from conftest import upload_voice

EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}


@pytest.fixture(scope="module")
def voices(server, tiny_set):
    """Two registered voices (one per tiny clip)."""
    return [upload_voice(server, clip, f"voice{i}") for i, clip in enumerate(tiny_set["clips"])]


def test_health_ready_metrics(server):
    with server.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["workers"] == 2
        metrics = client.get("/metrics").text
    for name in ("myna_requests_total", "myna_request_seconds_bucket", "myna_queue_depth", "myna_result_cache_hits"):
        assert name in metrics


def test_api_v2_client_get_request(server, tiny_set):
    """The request an api_v2 client sends, with the stdlib client and no changes but the auth header."""
    query = urllib.parse.urlencode({"text": "Hello there.", "ref_audio_path": "ref0.wav", "seed": 7, **EN})
    request = urllib.request.Request(f"{server.url}/tts?{query}", headers=server.tts)
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["content-type"] == "audio/wav"
        body = response.read()
    audio, rate = sf.read(io.BytesIO(body), dtype="int16")
    assert rate == 32000 and audio.ndim == 1 and len(audio) > 32000 * 0.3


def test_api_v2_post_formats(server, tiny_set):
    base = {"text": "Hello there.", "ref_audio_path": str(tiny_set["clips"][1]), "seed": 3, **EN}
    with server.client(headers=server.tts) as client:
        wav = client.post("/tts", json=base).content
        raw = client.post("/tts", json={**base, "media_type": "raw"}).content
        ogg = client.post("/tts", json={**base, "media_type": "ogg"})
        aac = client.post("/tts", json={**base, "media_type": "aac"})
    assert wav[44:] == raw  # same audio, with and without the header
    assert ogg.headers["content-type"] == "audio/ogg" and sf.info(io.BytesIO(ogg.content)).format == "OGG"
    assert aac.content[:2] in (b"\xff\xf1", b"\xff\xf9")  # an ADTS frame


def test_tts_streaming_sends_chunks_before_the_end(server):
    text = "Hello there. The quick brown fox jumps. Over the lazy dog. One more sentence here."
    body = {"text": text, "ref_audio_path": "ref0.wav", "seed": 5, "streaming_mode": True, **EN}
    arrivals = []
    with server.client(headers={**server.tts, "Cache-Control": "no-cache"}) as client:
        started = time.monotonic()
        with client.stream("POST", "/tts", json=body) as response:
            assert response.status_code == 200
            for piece in response.iter_raw():
                arrivals.append((time.monotonic() - started, piece))
    done = time.monotonic() - started
    data = b"".join(p for _, p in arrivals)
    assert data[:4] == b"RIFF" and data[40:44] == b"\x00\x00\x00\x00"  # upstream's open-length header
    assert len(arrivals) > 2
    assert arrivals[1][0] < done - 0.2  # audio arrived while later fragments were still being made


def test_tts_errors_say_what_to_fix(server):
    with server.client(headers=server.tts) as client:
        cases = {
            "text is required": client.get("/tts", params={"ref_audio_path": "ref0.wav", **EN}),
            "ref_audio_path is required": client.post("/tts", json={"text": "hi", **EN}),
            "media_type: mp4 is not supported": client.post(
                "/tts", json={"text": "hi", "ref_audio_path": "ref0.wav", "media_type": "mp4", **EN}),
            "text_lang: ko": client.post("/tts", json={"text": "hi", "ref_audio_path": "ref0.wav", **EN, "text_lang": "ko"}),
            "outside the allowed reference folders": client.post(
                "/tts", json={"text": "hi", "ref_audio_path": "../../../etc/passwd", **EN}),
            "streaming_mode must be": client.post(
                "/tts", json={"text": "hi", "ref_audio_path": "ref0.wav", "streaming_mode": 7, **EN}),
            "limit is 2000": client.post("/tts", json={"text": "a" * 2001, "ref_audio_path": "ref0.wav", **EN}),
            "min_chunk_length must be between 1 and 500": client.post(
                "/tts", json={"text": "hi", "ref_audio_path": "ref0.wav", "streaming_mode": 3, "min_chunk_length": 0, **EN}),
            "no such file": client.post("/tts", json={"text": "hi", "ref_audio_path": "nothere.wav", **EN}),
        }
        malformed = client.post("/tts", content=b"{not json", headers={"content-type": "application/json"})
        huge = client.post("/tts", content=b"{" + b" " * (2 * 2**20) + b"}", headers={"content-type": "application/json"})
    for expected, response in cases.items():
        assert 400 <= response.status_code < 500, (expected, response.text)
        assert expected in response.json()["message"]
    assert malformed.status_code == 400 and "JSON" in malformed.json()["message"]
    assert huge.status_code == 413 and "larger than" in huge.json()["message"]


def test_auth_scopes(server, tiny_set):
    clip = tiny_set["clips"][0]
    with server.client() as client:
        assert client.get("/v1/voices").status_code == 401
        assert client.get("/v1/voices", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/voices", headers=server.tts).status_code == 200
        denied = client.post("/v1/voices", headers=server.tts, files={"file": ("a.wav", clip.read_bytes())},
                             data={"name": "x", "language": "en", "consent_subject": "x", "consent_statement": "y"})
        assert denied.status_code == 403 and "admin" in denied.json()["message"]
        assert client.get("/health").status_code == 200  # operations stay open


def test_openai_speech_formats(server, voices):
    with server.client(headers=server.tts) as client:
        models = client.get("/v1/models").json()
        assert "tts-1" in [m["id"] for m in models["data"]]
        for fmt, container in (("mp3", "MP3"), ("opus", "OGG"), ("flac", "FLAC"), ("wav", "WAV")):
            response = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello there.",
                                                             "voice": voices[0]["name"], "response_format": fmt, "seed": 1})
            assert response.status_code == 200, response.text
            assert sf.info(io.BytesIO(response.content)).format == container
        pcm = client.post("/v1/audio/speech", json={"input": "Hello there.", "voice": voices[0]["id"],
                                                    "response_format": "pcm", "seed": 1, "stream": False})
        assert len(pcm.content) % 2 == 0 and len(pcm.content) > 1000
        unknown = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "alloy"})
        assert unknown.status_code == 404 and "POST /v1/voices" in unknown.json()["error"]["message"]
        bad_format = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": voices[0]["id"], "response_format": "ogg"})
        assert bad_format.status_code == 422


def test_result_cache_hits_repeat_requests(server, voices):
    body = {"input": "Cache me.", "voice": voices[1]["id"], "response_format": "wav", "seed": 11, "stream": False}
    with server.client(headers=server.tts) as client:
        first = client.post("/v1/audio/speech", json=body)
        second = client.post("/v1/audio/speech", json=body)
        random_seed = client.post("/v1/audio/speech", json={**body, "seed": -1})
    assert first.headers["x-myna-cache"] == "miss" and second.headers["x-myna-cache"] == "hit"
    assert first.content == second.content
    assert random_seed.headers["x-myna-cache"] == "off"


def test_websocket_streams_pcm(server, voices):
    from websockets.sync.client import connect

    url = server.url.replace("http://", "ws://") + "/v1/audio/speech/ws"
    with connect(url, additional_headers=server.tts) as ws:
        ws.send(json.dumps({"input": "Hello there. Second sentence.", "voice": voices[0]["id"], "seed": 2}))
        chunks = []
        while True:
            message = ws.recv(timeout=60)
            if isinstance(message, bytes):
                chunks.append(message)
                continue
            status = json.loads(message)
            break
        ws.send(json.dumps({"input": "Hi.", "voice": "nobody"}))
        error = json.loads(ws.recv(timeout=60))
    assert status == {"type": "done"} and len(chunks) >= 2
    assert error["type"] == "error" and error["status"] == 404


def _ws_audio(server, request: dict) -> list[bytes]:
    from websockets.sync.client import connect

    url = server.url.replace("http://", "ws://") + "/v1/audio/speech/ws"
    with connect(url, additional_headers=server.tts) as ws:
        ws.send(json.dumps(request))
        chunks = []
        while isinstance(message := ws.recv(timeout=60), bytes):
            chunks.append(message)
    assert json.loads(message) == {"type": "done"}
    return chunks


def test_streamed_speech_comes_in_token_chunks(server, voices):
    """One sentence: a whole chunk when not streamed, several (first after 16 tokens) when streamed."""
    request = {"input": "The quick brown fox jumps over the lazy dog near the river bank.", "voice": voices[0]["id"],
               "seed": 3}
    whole = _ws_audio(server, {**request, "stream": False})
    chunked = _ws_audio(server, request)
    samples = sum(len(c) for c in whole) // 2
    token = 24000 // 25  # pcm is 24 kHz; 25 semantic tokens a second
    assert samples > 40 * token  # over 40 tokens: enough for several chunks of the default plan
    assert len(whole) <= 2 and len(chunked) >= 3  # (the resampler's last few samples come as a message of their own)
    assert abs(sum(len(c) for c in chunked) // 2 - samples) <= token  # the same length, cut differently


def test_sixteen_concurrent_requests_match_solo_audio(server, voices):
    """Two voices, 16 requests in flight on 2 workers: each gets exactly the audio it gets alone."""
    import concurrent.futures

    def speak(voice: dict, seed: int) -> bytes:
        body = {"input": "Hello there.", "voice": voice["id"], "response_format": "pcm", "seed": seed, "stream": False}
        with httpx.Client(base_url=server.url, timeout=120) as client:
            response = client.post("/v1/audio/speech", json=body, headers={**server.tts, "Cache-Control": "no-cache"})
        assert response.status_code == 200, response.text
        return response.content

    jobs = [(voices[i % 2], 100 + (i // 2) % 4) for i in range(16)]
    solo: dict[tuple[str, int], bytes] = {}
    for voice, seed in jobs:
        if (voice["id"], seed) not in solo:
            solo[(voice["id"], seed)] = speak(voice, seed)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda job: speak(*job), jobs))
    for (voice, seed), audio in zip(jobs, together, strict=True):
        assert audio == solo[(voice["id"], seed)]
    assert solo[(voices[0]["id"], 100)] != solo[(voices[1]["id"], 100)]


def test_disconnect_cancels_decoding(server, voices):
    text = " ".join(f"Sentence number {n} is here." for n in range(12))
    body = {"input": text, "voice": voices[0]["id"], "response_format": "pcm", "seed": 9}
    with server.client(headers={**server.tts, "Cache-Control": "no-cache"}) as client:
        with client.stream("POST", "/v1/audio/speech", json=body) as response:
            next(response.iter_raw())
        left = time.monotonic()
        deadline = left + 10
        while client.get("/ready").json()["busy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        freed = time.monotonic() - left
        assert client.get("/ready").json()["busy"] == 0
    assert freed < 1.5  # eleven more fragments take far longer: the worker stopped when the client left


def test_models_reload_without_restart(server, voices):
    with server.client() as client:
        assert client.post("/admin/reload", headers=server.tts).status_code == 403
        reloaded = client.post("/admin/reload", headers=server.admin)
        assert reloaded.status_code == 200 and reloaded.json()["generation"] >= 1
        body = {"input": "After reload.", "voice": voices[0]["id"], "response_format": "wav", "seed": 1, "stream": False}
        assert client.post("/v1/audio/speech", json=body, headers=server.tts).status_code == 200
        assert client.get("/ready").status_code == 200


def test_tts_can_name_a_registered_voice(server, voices):
    body = {"text": "Hello there.", "text_lang": "en", "ref_audio_path": f"voice:{voices[1]['id']}", "seed": 2}
    with server.client(headers=server.tts) as client:
        spoken = client.post("/tts", json={**body, "prompt_lang": "en"})
        unknown = client.post("/tts", json={**body, "prompt_lang": "en", "ref_audio_path": "voice:feedface"})
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"
    assert unknown.status_code == 404
