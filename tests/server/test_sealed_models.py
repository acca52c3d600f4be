"""`myna serve` with encrypted model files: they load in memory with the model key and speak as the plain files
do; stored voice clips are sealed by default; a missing or wrong key stops the server with a clear message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import Server, upload_voice

EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}


@pytest.fixture(scope="module")
def sealed_set(tiny_set, tmp_path_factory) -> dict:
    """The tiny model set with its GPT and SoVITS files encrypted in place by `myna models encrypt`."""
    root = tmp_path_factory.mktemp("sealed")
    key = root / "model.key"
    other = root / "other.key"
    env = {**os.environ, "MYNA_MODEL_KEY_FILE": str(key)}
    for path in (key, other):
        made = subprocess.run([sys.executable, "-m", "myna", "models", "keygen", "-o", str(path)], capture_output=True,
                              text=True, timeout=120)
        assert made.returncode == 0, made.stderr
    files = {name: root / tiny_set[name].name for name in ("gpt", "sovits")}
    for name, target in files.items():
        shutil.copy(tiny_set[name], target)
    sealed = subprocess.run([sys.executable, "-m", "myna", "models", "encrypt", *map(str, files.values()), "--in-place"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert sealed.returncode == 0, sealed.stderr
    assert all(path.read_bytes()[:8] == b"MYNASEAL" for path in files.values())
    return {**files, "key": key, "other": other}


def _serve_env(tiny_set, sealed_set, key) -> dict:
    env = {**os.environ, "MYNA_GPT": str(sealed_set["gpt"]), "MYNA_SOVITS": str(sealed_set["sovits"]),
           "MYNA_HUBERT": str(tiny_set["hubert"]), "MYNA_BERT": str(tiny_set["bert"]), "MYNA_CONSENT_MODE": "record",
           "OMP_NUM_THREADS": "1"}
    env.pop("MYNA_MODEL_KEY", None)
    if key is None:
        env.pop("MYNA_MODEL_KEY_FILE", None)
    else:
        env["MYNA_MODEL_KEY_FILE"] = str(key)
    return env


def test_serve_loads_encrypted_models_and_seals_voices(tiny_set, sealed_set, server, tmp_path):
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1", MYNA_GPT=str(sealed_set["gpt"]),
                 MYNA_SOVITS=str(sealed_set["sovits"]), MYNA_MODEL_KEY_FILE=str(sealed_set["key"])).start()
    try:
        request = {"text": "Hello there.", "ref_audio_path": "ref0.wav", "seed": 11, **EN}
        with srv.client(headers=srv.tts) as client:
            sealed = client.post("/tts", json=request)
        with server.client(headers=server.tts) as client:  # the plain files of the same models
            plain = client.post("/tts", json=request)
        assert sealed.status_code == 200 and sealed.content == plain.content
        upload_voice(srv, tiny_set["clips"][0], "sealed-by-default", transcript="A private transcript.")
        stored = [p for p in (srv.data_dir / "voices" / "clips").rglob("*") if p.is_file()]
        assert stored and all(p.name.endswith(".enc") for p in stored)  # the model key seals clips too (auto)
        raw = b"".join(p.read_bytes() for p in srv.data_dir.rglob("*") if p.is_file())
        assert b"private transcript" not in raw and b"sealed-by-default" not in raw  # the audit log's fields too
    finally:
        srv.stop()


@pytest.mark.parametrize("key", ["missing", "other"])
def test_serve_refuses_to_start_without_the_right_key(tiny_set, sealed_set, tmp_path, key):
    env = _serve_env(tiny_set, sealed_set, None if key == "missing" else sealed_set["other"])
    env["MYNA_DATA_DIR"] = str(tmp_path / "data")
    started = subprocess.run([sys.executable, "-m", "myna", "serve", "--port", "9"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert started.returncode == 1 and "Traceback" not in started.stderr
    expected = "MYNA_MODEL_KEY_FILE" if key == "missing" else "encrypted with another key"
    assert started.stderr.startswith("myna serve: ") and expected in started.stderr, started.stderr
