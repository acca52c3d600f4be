"""Faults on the server's side (a full disk, Redis down) are 5xx with a stable code, never 400 invalid_request."""

from __future__ import annotations

import io
import os
import resource
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import Server, free_port, upload_voice


def _redis(port: int, workdir) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    import redis

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=0.5).ping():
                return process
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _stop(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGTERM)
    process.wait(10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_down_refuses_an_erasure_with_503_and_a_retry_completes_it(tiny_set, tmp_path):
    port = free_port()
    cache = _redis(port, tmp_path)
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1", MYNA_REDIS_URL=f"redis://127.0.0.1:{port}/0").start()
    try:
        voice = upload_voice(srv, tiny_set["clips"][0], "kept-while-redis-is-down")
        _stop(cache)
        with srv.client(headers=srv.admin) as client:
            speech = {"input": "Hello there.", "voice": voice["id"], "response_format": "pcm", "seed": 1, "stream": False}
            assert client.post("/v1/audio/speech", json=speech).status_code == 200  # the cache degrades to a miss
            refused = client.delete(f"/v1/voices/{voice['id']}")
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "cache_unavailable"
            assert client.get(f"/v1/voices/{voice['id']}").status_code == 200  # nothing was half-erased
            cache = _redis(port, tmp_path)
            assert client.delete(f"/v1/voices/{voice['id']}").status_code == 204
    finally:
        srv.stop()
        if cache.poll() is None:
            _stop(cache)


def _limit_file_size() -> None:
    """In the server process: files may grow to 2 MB (writes past it fail with EFBIG, as on a full disk)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 2**20, 2 * 2**20))


def test_a_full_disk_is_a_5xx_storage_error(tiny_set, tmp_path):
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1", MYNA_CPU_KERNELS="0")
    srv.preexec = _limit_file_size
    srv.start()
    try:
        t = np.arange(20 * 32000) / 32000  # 1.3 MB as 16-bit upload, 2.6 MB as the stored float clip
        clip = io.BytesIO()
        sf.write(clip, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 32000, format="WAV", subtype="PCM_16")
        with srv.client(headers=srv.admin) as client:
            response = client.post("/v1/voices", files={"file": ("long.wav", clip.getvalue())},
                                   data={"name": "too big to store", "language": "en", "consent_subject": "Ada",
                                         "consent_statement": "I agree."})
            listed = client.get("/v1/voices").json()["data"]
    finally:
        srv.stop()
    assert response.status_code == 500, response.text
    assert response.json()["error"]["code"] == "storage_error"
    assert str(tmp_path) not in response.text  # the server's folders stay private
    assert listed == []
