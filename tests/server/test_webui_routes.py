"""The web page's own routes on a real server: open page and files (nothing loaded from elsewhere), the
config the page reads, and WAV -> MP3 for downloads."""

from __future__ import annotations

import io
import re

import numpy as np
import soundfile as sf

from myna.server.ui.routes import STATIC


def test_the_page_and_its_files_are_open_and_load_nothing_from_elsewhere(server):
    with server.client() as client:  # no key
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for name in re.findall(r'(?:src|href)="/ui/([\w.-]+)"', page.text):
            assert client.get(f"/ui/{name}").status_code == 200, name
        assert client.get("/ui/..%2Fjobs.py").status_code == 404
        assert client.get("/ui/routes.py").status_code == 404
        assert client.get("/v1/voices").status_code == 401  # everything else keeps its scopes
    for path in STATIC.iterdir():  # no address off this server anywhere in the page's code
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name


def test_the_config_tells_the_page_about_auth_and_the_key(server):
    with server.client() as client:
        config = client.get("/v1/ui/config").json()
        assert config["auth"] == {"required": True, "key": None}
        assert config["consent_mode"] in ("record", "captcha") and config["features"]["fine_tunes"] is True
        assert config["defaults"]["top_k"] == 15 and config["defaults"]["repetition_penalty"] == 1.35
        assert client.get("/v1/ui/config", headers=server.tts).json()["auth"]["key"] == {"valid": True,
                                                                                           "scopes": ["tts"]}
        assert client.get("/v1/ui/config", headers={"Authorization": "Bearer nope"}).json()["auth"]["key"] == {
            "valid": False, "scopes": []}


def test_a_wav_becomes_an_mp3_for_downloads(server):
    buffer = io.BytesIO()
    t = np.arange(20000) / 20000
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 20000, format="WAV")  # not an MP3 rate
    with server.client(headers=server.tts) as client:
        mp3 = client.post("/v1/ui/transcode?format=mp3", content=buffer.getvalue())
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        audio, rate = sf.read(io.BytesIO(mp3.content))
        assert rate == 22050 and abs(len(audio) / rate - 1.0) < 0.1
        garbage = client.post("/v1/ui/transcode", content=b"not a wav at all" * 10)
        assert garbage.status_code == 400 and "not a readable WAV" in garbage.json()["message"]
    with server.client() as client:
        assert client.post("/v1/ui/transcode", content=buffer.getvalue()).status_code == 401
