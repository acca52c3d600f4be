"""/admin/reload loads every worker's models once, then swaps them in at once; until then (or on failure) the old ones serve."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY, Server

EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}
SPEAK = {"text": "Hello there.", "ref_audio_path": "ref0.wav", "seed": 1, **EN}


def test_files_changed_after_a_reload_do_not_matter_and_a_failed_reload_keeps_serving(tiny_set, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    gpt, sovits = (Path(shutil.copy(tiny_set[name], models)) for name in ("gpt", "sovits"))
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="2", MYNA_GPT=str(gpt), MYNA_SOVITS=str(sovits)).start()
    try:
        with srv.client(headers={**srv.admin, "Cache-Control": "no-cache"}) as client:
            before = client.post("/tts", json=SPEAK)
            assert before.status_code == 200
            reloaded = client.post("/admin/reload")
            assert reloaded.status_code == 200 and reloaded.json()["generation"] == 1
            for path in (gpt, sovits):  # the files change after the reload: the loaded models are what serves
                path.write_bytes(b"not a model any more")
            after = [client.post("/tts", json=SPEAK) for _ in range(4)]  # both workers answer some
            assert [r.status_code for r in after] == [200] * 4
            assert all(r.content == before.content for r in after)
            assert client.get("/ready").json()["generation"] == 1

            failed = client.post("/admin/reload")  # the broken files cannot load: the old models keep serving
            assert failed.status_code == 500 and failed.json()["error"]["code"] == "reload_failed"
            assert str(tmp_path) not in failed.text
            ready = client.get("/ready")
            assert ready.status_code == 200 and ready.json()["generation"] == 1
            assert "could not be loaded" in ready.json()["last_reload_error"]
            still = client.post("/tts", json=SPEAK)
            assert still.status_code == 200 and still.content == before.content
    finally:
        srv.stop()


def test_the_old_models_serve_while_new_ones_load(tiny_set, tmp_path):
    from myna.engine.loading import ModelPaths, load_synthesizer
    from myna.server.app import create_app

    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    release, loads = threading.Event(), []

    def slow_factory():
        loads.append(time.monotonic())
        if len(loads) > 1:  # every load after the first waits until the test lets it finish
            assert release.wait(60)
        return load_synthesizer(paths)

    app = create_app(tiny_settings(tiny_set, tmp_path / "data"), slow_factory)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with serving(app) as url:
        answer = {}
        reloader = threading.Thread(target=lambda: answer.update(r=httpx.post(url + "/admin/reload", headers=admin,
                                                                                timeout=120)))
        reloader.start()
        deadline = time.monotonic() + 30
        while len(loads) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = httpx.get(url + "/ready", timeout=30)
        assert ready.status_code == 200 and ready.json()["reloading"] is True and ready.json()["generation"] == 0
        spoken = httpx.post(url + "/tts", json=SPEAK, headers=admin, timeout=60)
        assert spoken.status_code == 200  # served by the old models while the new ones load
        release.set()
        reloader.join(120)
        assert answer["r"].status_code == 200 and answer["r"].json()["generation"] == 1
        ready = httpx.get(url + "/ready", timeout=30).json()
        assert ready["reloading"] is False and ready["generation"] == 1
