"""Smaller service behaviour: busy is not an error, no server paths or reprs in messages, streamed WAVs as
uploads, tts-only key lines."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import textwrap

import httpx
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY, upload_voice

EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}
CONSENT = {"consent_subject": "Ada", "consent_statement": "I agree to my voice being cloned for tests."}


def test_busy_is_logged_at_info(tiny_set, tmp_path, capfd):
    from myna.server.app import configure_logging, create_app

    configure_logging()
    app = create_app(tiny_settings(tiny_set, tmp_path / "data", queue_size=1))
    long_text = " ".join(f"Sentence number {n} is here." for n in range(8))
    body = {"text": long_text, "ref_audio_path": "ref0.wav", **EN}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with serving(app) as url:
        capfd.readouterr()

        def speak(_: int) -> int:
            return httpx.post(url + "/tts", json=body, headers=admin, timeout=120).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(speak, range(4)))
    records = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    busy = [r for r in records if r.get("code") == "busy"]
    assert 503 in statuses and len(busy) == statuses.count(503)
    assert all(r["level"] == "info" and r["status"] == 503 for r in busy)
    assert not [r for r in records if r["level"] == "error"]


def test_messages_show_no_server_paths_or_object_reprs(server, tiny_set):
    (tiny_set["root"] / "not-audio.wav").write_bytes(b"this is not audio" * 20)
    with server.client(headers=server.admin) as client:
        upload = client.post("/v1/voices", files={"file": ("notes.wav", b"plain text, not audio" * 100)},
                             data={"name": "not audio", "language": "en", **CONSENT})
        tts = client.post("/tts", json={"text": "Hello.", "ref_audio_path": "not-audio.wav", **EN})
    assert upload.status_code == 400 and "object at 0x" not in upload.text and "notes.wav" in upload.text
    assert tts.status_code == 400 and "not-audio.wav" in tts.json()["message"]
    assert str(tiny_set["root"]) not in tts.text and str(tiny_set["root"].resolve()) not in tts.text


def test_myna_streamed_wavs_are_accepted_as_uploads(server, tiny_set):
    text = "Hello there. The quick brown fox jumps over the lazy dog. One more sentence to finish."
    with server.client(headers=server.admin) as client:
        tts = client.post("/tts", json={"text": text, "ref_audio_path": "ref0.wav", "seed": 2, "streaming_mode": 1, **EN})
        speech = client.post("/v1/audio/speech", json={"input": text, "voice": upload_voice(server, tiny_set["clips"][0],
                             "streamed-source")["id"], "response_format": "wav", "seed": 2})  # fmt: skip
        assert tts.content[40:44] == b"\x00\x00\x00\x00" and speech.content[40:44] == b"\xdb\xff\xff\xff"
        for name, wav in (("tts-stream", tts.content), ("speech-stream", speech.content)):
            created = client.post("/v1/voices", files={"file": (f"{name}.wav", wav)},
                                  data={"name": name, "language": "en", **CONSENT})
            assert created.status_code == 201, created.text
            samples = (len(wav) - 44) // 2
            assert abs(created.json()["clip_seconds"] - samples / 32000) < 1e-3  # every sample, to the end of file


def test_hash_key_makes_lines_for_any_scopes(tmp_path, capsys):
    from myna.cli import main
    from myna.server.auth import KeyStore

    assert main(["serve", "--hash-key", "reader-secret", "--scopes", "tts", "--key-name", "reader"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("sha256:") and line.rstrip().endswith(" tts reader") and "reader-secret" not in line
    keys = tmp_path / "keys.txt"
    keys.write_text(line)
    store = KeyStore.load(keys, None)
    assert store.allows({"authorization": "Bearer reader-secret"}, "tts")
    assert not store.allows({"authorization": "Bearer reader-secret"}, "admin")
    assert main(["serve", "--hash-key", "x", "--scopes", "tts,root"]) == 2
    assert "tts and/or admin" in capsys.readouterr().err


def test_english_numbers_are_ready_before_a_worker_serves(tiny_set, tmp_path):
    """inflect (English numbers) is imported at start-up, not by the first request's worker thread: its
    import parses source with `ast`, which CPython 3.11 does not make thread-safe (a 500 in a test run)."""
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from fastapi.testclient import TestClient
        from myna.config import Settings
        from myna.server.app import create_app
        paths = {name: Path(value) for name, value in json.loads(sys.argv[1]).items()}
        settings = Settings(data_dir=paths["data"], gpt=paths["gpt"], sovits=paths["sovits"], hubert=paths["hubert"],
                            bert=paths["bert"], ref_dirs=(paths["root"],), workers=1, consent_mode="record")
        assert "inflect" not in sys.modules
        with TestClient(create_app(settings)) as client:
            assert client.get("/ready").status_code == 200
            print("inflect" in sys.modules)
    """)
    paths = {name: str(tiny_set[name]) for name in ("gpt", "sovits", "hubert", "bert", "root")}
    paths["data"] = str(tmp_path / "data")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(paths)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
