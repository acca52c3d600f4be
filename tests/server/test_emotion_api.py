"""Asking for an emotion over HTTP on the tiny random models: `emotion` and `emotion_strength` on /tts and
/v1/audio/speech, OpenAI's `instructions`, inline tags, fallbacks with a note, result-cache keys, batching.

With random weights the mechanics are what can be checked: the emotion reference changes the GPT's prompt
(different audio for a fixed seed), strength 0 is the output without an emotion byte for byte."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY, TTS_KEY, upload_voice

TEXT = "What wonderful news, I am so happy!"
FRESH = {"Cache-Control": "no-cache"}


@pytest.fixture(scope="module")
def voice(server, tiny_set) -> dict:
    """A voice (clip 1) with a `happy` reference (clip 0)."""
    record = upload_voice(server, tiny_set["clips"][1], "emotional-voice")
    clip = tiny_set["clips"][0]
    with server.client() as http:
        added = http.post(f"/v1/voices/{record['id']}/references", headers=server.admin,
                          files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                          data={"emotion": "happy", "transcript": "What a lovely day it is today."})
    assert added.status_code == 201, added.text
    return record


def tts(server, voice: dict, headers=FRESH, **fields) -> httpx.Response:
    body = {"text": TEXT, "text_lang": "en", "ref_audio_path": f"voice:{voice['id']}", "prompt_lang": "en", "seed": 11,
            **fields}
    with server.client(headers={**server.tts, **headers}) as http:
        response = http.post("/tts", json=body)
    assert response.status_code == 200, response.text
    return response


def speech(server, voice: dict, headers=FRESH, **fields) -> httpx.Response:
    body = {"model": "tts-1", "input": TEXT, "voice": voice["name"], "response_format": "wav", "stream": False,
            "seed": 11, **fields}
    with server.client(headers={**server.tts, **headers}) as http:
        response = http.post("/v1/audio/speech", json=body)
    assert response.status_code == 200, response.text
    return response


def test_tts_emotion_prompts_the_gpt_and_strength_zero_is_the_plain_output(server, voice):
    plain = tts(server, voice)
    happy = tts(server, voice, emotion="happy")
    assert happy.content != plain.content and "x-myna-note" not in happy.headers
    assert tts(server, voice, emotion="happy", emotion_strength=0).content == plain.content
    assert tts(server, voice, emotion="HAPPY", emotion_strength=1).content == happy.content
    assert tts(server, voice, text="[happy] " + TEXT).content == happy.content  # an inline tag asks the same
    assert tts(server, voice, emotion="auto").content == happy.content  # the classifier reads TEXT as happy
    halfway = tts(server, voice, emotion="happy", emotion_strength=0.5).content  # two prompts mixed (unbatched)
    assert halfway not in (plain.content, happy.content)
    assert tts(server, voice, emotion_strength=0.5).content == plain.content  # no emotion asked: nothing to mix


def test_a_label_the_voice_lacks_falls_back_with_a_note(server, voice):
    plain = tts(server, voice)
    sad = tts(server, voice, headers={}, emotion="sad")
    assert sad.content == plain.content
    assert "no 'sad' emotion reference" in sad.headers["x-myna-note"]
    again = tts(server, voice, headers={}, emotion="sad")  # answers with notes are not cached: the note comes again
    assert again.headers["x-myna-cache"] == "miss" and "'sad'" in again.headers["x-myna-note"]
    file_ref = {"ref_audio_path": "ref0.wav", "prompt_text": "This is my reference voice."}  # a file has no references
    assert "'happy'" in tts(server, voice, emotion="happy", **file_ref).headers["x-myna-note"]
    streamed = tts(server, voice, emotion="angry", streaming_mode=1)
    assert "'angry'" in streamed.headers["x-myna-note"]
    refused = httpx.post(server.url + "/tts", headers=server.tts, json={
        "text": TEXT, "text_lang": "en", "ref_audio_path": f"voice:{voice['id']}", "prompt_lang": "en",
        "emotion": "happy", "emotion_strength": 2})
    assert refused.status_code == 400 and "emotion_strength must be between 0 and 1.5" in refused.json()["message"]


def test_speech_takes_emotion_and_maps_instructions(server, voice):
    plain = speech(server, voice).content
    happy = speech(server, voice, emotion="happy").content
    assert happy != plain
    assert speech(server, voice, emotion="happy", emotion_strength=0).content == plain
    assert speech(server, voice, instructions="Speak in a cheerful, upbeat voice.").content == happy
    assert speech(server, voice, instructions="Speak slowly and clearly.").content == plain  # names no emotion
    assert speech(server, voice, instructions="Not happy at all, sound calm.", emotion="happy").content == happy
    assert speech(server, voice, input="[happy] " + TEXT).content == happy
    noted = speech(server, voice, instructions="Sound sad and tired.")
    assert noted.content == plain and "'sad'" in noted.headers["x-myna-note"]


def test_the_openai_client_sends_emotion_in_extra_body(server, voice):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=TTS_KEY, max_retries=0, timeout=120)
    common = {"model": "tts-1", "voice": voice["name"], "input": TEXT, "response_format": "wav"}
    happy = client.audio.speech.create(**common, extra_body={"seed": 11, "emotion": "happy", "stream": False},
                                       extra_headers=FRESH).content
    instructed = client.audio.speech.create(**common, instructions="Say it happily!",
                                            extra_body={"seed": 11, "stream": False}, extra_headers=FRESH).content
    assert instructed == happy == speech(server, voice, emotion="happy").content


def test_cache_keys_separate_emotion_and_strength(server, voice):
    seed = {"seed": 23}
    first = tts(server, voice, headers={}, **seed)
    assert first.headers["x-myna-cache"] == "miss"
    assert tts(server, voice, headers={}, **seed).headers["x-myna-cache"] == "hit"
    happy = tts(server, voice, headers={}, emotion="happy", **seed)
    assert happy.headers["x-myna-cache"] == "miss" and happy.content != first.content
    repeat = tts(server, voice, headers={}, emotion="happy", **seed)
    assert repeat.headers["x-myna-cache"] == "hit" and repeat.content == happy.content
    zero = tts(server, voice, headers={}, emotion="happy", emotion_strength=0, **seed)
    assert zero.headers["x-myna-cache"] == "miss" and zero.content == first.content
    spoken = speech(server, voice, headers={}, emotion="happy", **seed)
    assert spoken.headers["x-myna-cache"] == "miss"
    instructed = speech(server, voice, headers={}, instructions="Sound happy!", **seed)  # the same resolved emotion
    assert instructed.headers["x-myna-cache"] == "hit" and instructed.content == spoken.content


def test_removing_a_reference_stops_its_use(server, voice, tiny_set):
    clip = tiny_set["clips"][0]
    with server.client() as http:
        added = http.post(f"/v1/voices/{voice['id']}/references", headers=server.admin,
                          files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                          data={"emotion": "calm", "transcript": "Take a deep breath and relax."})
        assert added.status_code == 201, added.text
        calm = tts(server, voice, headers={}, emotion="calm", seed=31)
        assert "x-myna-note" not in calm.headers and tts(server, voice, headers={}, emotion="calm", seed=31).headers[
            "x-myna-cache"] == "hit"
        assert http.delete(f"/v1/voices/{voice['id']}/references/calm", headers=server.admin).status_code == 204
    gone = tts(server, voice, headers={}, emotion="calm", seed=31)
    assert gone.headers["x-myna-cache"] == "miss" and "'calm'" in gone.headers["x-myna-note"]
    assert gone.content == tts(server, voice, seed=31).content != calm.content


def test_a_batched_server_refuses_mixed_strengths(tiny_set, tmp_path):
    from myna.server.app import create_app
    from myna.voices.registry import Consent

    # unmarked: answers with a fixed seed are compared byte for byte (each request's watermark payload is its own)
    app = create_app(tiny_settings(tiny_set, tmp_path / "data", batch_size=2, watermark=False))
    service = app.state.service
    record = service.registry.create(tiny_set["clips"][1].read_bytes(), "ref1.wav", "This is my reference voice.",
                                     "en", "batched-voice", Consent("Someone", "I agree."))
    service.references.add(record.id, tiny_set["clips"][0].read_bytes(), "ref0.wav", "What a lovely day.", "en",
                           "happy")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    body = {"model": "tts-1", "input": TEXT, "voice": record.id, "response_format": "wav", "stream": False, "seed": 3}
    with serving(app) as url:
        mixed = httpx.post(url + "/v1/audio/speech", headers=admin, json={**body, "emotion": "happy",
                                                                          "emotion_strength": 0.5}, timeout=120)
        assert mixed.status_code == 422 and mixed.json()["error"]["code"] == "emotion_strength_batched", mixed.text
        tagged = httpx.post(url + "/tts", headers=admin, timeout=120, json={
            "text": "[happy] " + TEXT, "text_lang": "en", "ref_audio_path": f"voice:{record.id}", "prompt_lang": "en",
            "emotion_strength": 1.2})
        assert tagged.status_code == 422 and tagged.json()["error"]["code"] == "emotion_strength_batched"
        plain = httpx.post(url + "/v1/audio/speech", headers=admin, json=body, timeout=120)
        whole = httpx.post(url + "/v1/audio/speech", headers=admin, json={**body, "emotion": "happy"}, timeout=120)
        zero = httpx.post(url + "/v1/audio/speech", headers=admin, json={**body, "emotion": "happy",
                                                                         "emotion_strength": 0}, timeout=120)
    assert plain.status_code == whole.status_code == zero.status_code == 200
    assert whole.content != plain.content and zero.content == plain.content


def test_websocket_requests_take_emotion_and_say_fallbacks(server, voice):
    from websockets.sync.client import connect

    def ask(**fields) -> list:
        url = server.url.replace("http://", "ws://") + "/v1/audio/speech/ws"
        with connect(url, additional_headers=server.tts) as socket:
            socket.send(json.dumps({"input": TEXT, "voice": voice["id"], "seed": 11, **fields}))
            messages = []
            while not isinstance(message := socket.recv(timeout=120), str) or json.loads(message)["type"] != "done":
                messages.append(message if isinstance(message, bytes) else json.loads(message))
        return messages

    plain, happy, sad = ask(), ask(emotion="happy"), ask(instructions="Speak sadly.")
    assert all(isinstance(m, bytes) for m in plain + happy) and b"".join(happy) != b"".join(plain)
    assert isinstance(sad[0], dict) and sad[0]["type"] == "note" and "'sad'" in sad[0]["notes"][0]
    assert b"".join(m for m in sad if isinstance(m, bytes)) == b"".join(plain)
