"""The official `openai` client against a real server: streamed formats, voice objects, SSE, pcm, models."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess

import openai
import pytest
import soundfile as sf

from conftest import TTS_KEY, upload_voice

TEXT = "Hello there. The quick brown fox jumps over the lazy dog. One more sentence to finish."
FRESH = {"Cache-Control": "no-cache"}


@pytest.fixture(scope="module")
def voice(server, tiny_set) -> dict:
    return upload_voice(server, tiny_set["clips"][1], "openai-client-voice")


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=TTS_KEY, max_retries=0, timeout=120)


def _streamed(client, voice: dict, fmt: str, **extra) -> list[bytes]:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice=voice["id"], input=TEXT, response_format=fmt, extra_body={"seed": 4}, extra_headers=FRESH,
        **extra,
    ) as response:
        assert response.status_code == 200
        return list(response.iter_bytes())


def _probe(data: bytes, path) -> tuple[int, float, float]:
    """(streams, stated seconds, decoded seconds) of an audio file, by ffprobe and ffmpeg.

    ADTS (aac) holds no length, so ffprobe can only guess one from the bitrate: there its packets are
    counted (1024 samples each) instead.
    """
    path.write_bytes(data)
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                                       "stream=sample_rate,nb_read_packets:format=duration", "-of", "json", str(path)],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    stream = probe["streams"][0]
    stated = (int(stream["nb_read_packets"]) * 1024 / int(stream["sample_rate"]) if path.suffix == ".aac"
              else float(probe["format"]["duration"]))  # fmt: skip
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    return len(probe["streams"]), stated, len(pcm) / 2 / 48000


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe/ffmpeg (scripts/setup.sh installs them)")
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_a_streamed_response_is_one_file_of_the_right_length(client, voice, fmt, tmp_path):
    seconds = sum(len(p) for p in _streamed(client, voice, "pcm")) / 2 / 24000  # the same audio as 24 kHz pcm
    assert seconds > 2.0
    pieces = _streamed(client, voice, fmt)
    streams, stated, decoded = _probe(b"".join(pieces), tmp_path / f"speech.{fmt}")
    assert streams == 1
    assert abs(stated - seconds) < 0.1 and abs(decoded - seconds) < 0.1, (fmt, seconds, stated, decoded)


def test_voice_object_pcm_rate_sse_and_models(client, voice):
    as_object = client.audio.speech.create(model="gpt-4o-mini-tts", voice={"id": voice["id"]}, input="Hello there.",
                                           response_format="wav", extra_body={"seed": 1, "stream": False})
    wav, rate = sf.read(io.BytesIO(as_object.content), dtype="int16")
    by_name = client.audio.speech.create(model="tts-1", voice=voice["name"], input="Hello there.", response_format="wav",
                                         extra_body={"seed": 1, "stream": False})
    assert by_name.content == as_object.content  # the same voice, named two ways
    pcm = client.audio.speech.create(model="tts-1", voice=voice["id"], input="Hello there.", response_format="pcm",
                                     extra_body={"seed": 1, "stream": False}).content
    assert rate == 32000 and abs(len(pcm) / 2 / 24000 - len(wav) / rate) < 0.01  # pcm is 24 kHz 16-bit mono

    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice=voice["id"], input=TEXT, response_format="mp3", stream_format="sse",
        extra_body={"seed": 4}, extra_headers=FRESH,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2 and events[-1]["type"] == "speech.audio.done" and len(events) == len(deltas) + 1
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(TEXT) and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    mp3 = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert mp3 == b"".join(_streamed(client, voice, "mp3"))  # the same continuous file, in events

    listed = [model.id for model in client.models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(listed)
    with pytest.raises(openai.NotFoundError, match="tts-1"):
        client.audio.speech.create(model="whisper-1", voice=voice["id"], input="Hi.")
