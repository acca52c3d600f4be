"""Prosody, SSML, exact duration and word timing over HTTP: /tts fields, the official `openai` client's
extra_body, the JSON timing answer and speech.timing events in SSE and WebSocket streams."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import openai
import pytest
import soundfile as sf

from conftest import TTS_KEY, upload_voice

EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}
TEXT = "Hello there. The quick brown fox jumps over the lazy dog. One more sentence to finish."
FRESH = {"Cache-Control": "no-cache"}


@pytest.fixture(scope="module")
def voice(server, tiny_set) -> dict:
    return upload_voice(server, tiny_set["clips"][1], "expressive-voice")


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=TTS_KEY, max_retries=0, timeout=120)


def _tts(server, **fields):
    with server.client(headers=server.tts) as http:
        return http.post("/tts", json={"text": "Hello there.", "ref_audio_path": "ref0.wav", "seed": 5, **EN, **fields})


def _wav(body: bytes) -> tuple[np.ndarray, int]:
    return sf.read(io.BytesIO(body), dtype="float32")


def _db(audio: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(audio.astype(np.float64)))))


def _check_words(words: list[dict], seconds: float) -> None:
    assert words, "no words"
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["start"] < w["end"] <= seconds + 0.002 for w in words), (words, seconds)


def test_tts_takes_duration_volume_pitch_and_ssml(server):
    plain, rate = _wav(_tts(server).content)
    seconds = round(1.5 * len(plain) / rate, 2)  # within reach (the random test models speak slowly)
    exact, exact_rate = _wav(_tts(server, duration=seconds).content)
    assert exact_rate == rate == 32000 and len(exact) == round(seconds * rate)  # exactly that long, to the sample
    quieter, _ = _wav(_tts(server, volume=-6).content)
    assert len(quieter) == len(plain) and abs((_db(quieter) - _db(plain)) + 6) < 0.5
    higher, _ = _wav(_tts(server, pitch=3).content)
    assert len(higher) == len(plain) and not np.allclose(higher, plain, atol=1e-3)
    broken = _tts(server, text='<speak>Hello <break time="500ms"/> there.</speak>')
    assert broken.status_code == 200 and len(_wav(broken.content)[0]) > len(plain) + 0.4 * rate  # the break is in
    invalid = _tts(server, text="<speak>Hello <voice>there</voice></speak>")
    assert invalid.status_code == 400 and "line 1, column" in invalid.json()["message"]
    out_of_range = _tts(server, pitch=20)
    assert out_of_range.status_code == 400 and "pitch must be between" in out_of_range.json()["message"]


def test_tts_keeps_api_v2_clients_working(server):
    """Fields myna does not know are ignored; none of myna's own is needed."""
    known = _tts(server)
    with_unknown = _tts(server, some_future_field=1, another={"nested": True})
    assert with_unknown.status_code == 200 and with_unknown.content == known.content


def test_tts_timestamps_answer_json_with_the_audio(server):
    answer = _tts(server, timestamps=True, seed=6)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    document = answer.json()
    audio, rate = _wav(base64.b64decode(document["audio"]))
    assert document["format"] == "wav" and abs(document["duration"] - len(audio) / rate) < 0.001
    _check_words(document["words"], document["duration"])
    assert [w["text"].lower() for w in document["words"] if w["text"].isalpha()] == ["hello", "there"]
    assert document["phonemes"] and document["phonemes"][-1]["end"] <= document["duration"] + 0.002
    plain, _ = _wav(_tts(server, seed=6).content)
    assert np.array_equal(audio, plain)  # timing is computed on the side: the same audio
    streaming = _tts(server, timestamps=True, streaming_mode=1)
    assert streaming.status_code == 400 and "stream_format sse" in streaming.json()["message"]


def test_openai_extra_body_duration_and_volume(client, voice):
    plain = client.audio.speech.create(model="tts-1", voice=voice["id"], input="Hello there.", response_format="pcm",
                                       extra_body={"seed": 2, "stream": False}).content
    seconds = round(0.8 * len(plain) / 2 / 24000, 2)
    wav = client.audio.speech.create(model="tts-1", voice=voice["id"], input="Hello there.", response_format="wav",
                                     extra_body={"seed": 2, "duration": seconds}).content  # streamed by default
    assert (len(wav) - 44) // 2 == round(seconds * 32000)  # exactly that long at the model's 32 kHz
    quiet = client.audio.speech.create(model="tts-1", voice=voice["id"], input="Hello there.", response_format="pcm",
                                       extra_body={"seed": 2, "stream": False, "volume": -9}).content
    level = [_db(np.frombuffer(body, "<i2") / 32768) for body in (plain, quiet)]
    assert len(quiet) == len(plain) and abs(level[1] - level[0] + 9) < 0.5


def test_sse_timing_events_follow_the_audio(client, voice):
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice=voice["id"], input=TEXT, response_format="pcm", stream_format="sse",
        extra_body={"seed": 4, "timestamps": True}, extra_headers=FRESH,
    ) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and kinds.count("speech.timing") == 3  # one per sentence
    for index, kind in enumerate(kinds):
        if kind == "speech.timing":
            assert kinds[index - 1] == "speech.audio.delta"  # after the audio that completes its words
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    seconds = len(pcm) / 2 / 24000
    words = [w for e in events if e["type"] == "speech.timing" for w in e["words"]]
    _check_words(words, seconds)  # timed from the start of the stream, across sentences
    assert [w["text"].lower() for w in words if w["text"].isalpha()][:2] == ["hello", "there"]
    assert sum(w["text"].isalpha() for w in words) == 16
    first_sentence_end = next(e for e in events if e["type"] == "speech.timing")["words"][-1]["end"]
    assert words[-1]["start"] > first_sentence_end


def test_timestamps_without_sse_answer_one_json_document(client, voice):
    answer = client.audio.speech.create(model="tts-1", voice=voice["id"], input="Hello there.", response_format="pcm",
                                        extra_body={"seed": 7, "timestamps": True})
    document = json.loads(answer.content)
    pcm = base64.b64decode(document["audio"])
    assert document["format"] == "pcm" and abs(document["duration"] - len(pcm) / 2 / 24000) < 0.002
    _check_words(document["words"], document["duration"])


def test_plain_streams_keep_token_chunks_and_carry_no_timing(client, voice):
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice=voice["id"], input="The quick brown fox jumps over the lazy dog near the river bank.",
        response_format="pcm", stream_format="sse", extra_body={"seed": 3}, extra_headers=FRESH,
    ) as response:
        kinds = [json.loads(line[6:])["type"] for line in response.iter_lines() if line.startswith("data: ")]
    assert "speech.timing" not in kinds and kinds.count("speech.audio.delta") >= 3  # one sentence, several chunks


def test_websocket_timing_messages(server, voice):
    from websockets.sync.client import connect

    url = server.url.replace("http://", "ws://") + "/v1/audio/speech/ws"
    with connect(url, additional_headers=server.tts) as socket:
        socket.send(json.dumps({"input": TEXT, "voice": voice["id"], "seed": 2, "timestamps": True}))
        messages = []
        while not isinstance(message := socket.recv(timeout=120), str) or json.loads(message)["type"] != "done":
            messages.append(message if isinstance(message, bytes) else json.loads(message))
    timings = [m for m in messages if isinstance(m, dict)]
    assert [m["type"] for m in timings] == ["speech.timing"] * 3
    assert all(isinstance(messages[messages.index(t) - 1], bytes) for t in timings)
    seconds = sum(len(m) for m in messages if isinstance(m, bytes)) / 2 / 24000
    _check_words([w for t in timings for w in t["words"]], seconds)
