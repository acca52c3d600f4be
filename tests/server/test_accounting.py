"""Every request ends as one JSON log line and one metric sample, whatever its outcome; faults are 5xx, not 400."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
from inprocess import serving, tiny_settings

from conftest import ADMIN_KEY, TTS_KEY, Server, upload_voice

EN = {"text_lang": "en", "prompt_text": "This is my reference voice.", "prompt_lang": "en"}


def _samples(metrics: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + "{"))


def test_every_request_is_one_json_line_and_one_metric_sample(tiny_set, tmp_path):
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1").start()
    try:
        voice = upload_voice(srv, tiny_set["clips"][0], "counted")
        tts = {"text": "Hello there.", "ref_audio_path": "ref0.wav", "seed": 3, **EN}
        speech = {"input": "Hello there.", "voice": voice["id"], "response_format": "wav", "seed": 2}
        long_text = " ".join(f"Sentence number {n} is here." for n in range(12))
        with srv.client(headers=srv.tts) as client:
            assert client.post("/tts", json=tts).status_code == 200  # mode 0
            assert client.post("/tts", json=tts).headers["x-myna-cache"] == "hit"
            huge_seed = client.post("/tts", json={**tts, "seed": 2**64})
            assert client.post("/v1/audio/speech", json={**speech, "stream": False}).status_code == 200
            assert client.post("/v1/audio/speech", json=speech).status_code == 200  # streamed, read to the end
            assert client.get("/v1/voices", headers={"Authorization": "Bearer wrong"}).status_code == 401
            with client.stream("POST", "/v1/audio/speech", headers={"Cache-Control": "no-cache"},
                               json={**speech, "input": long_text, "response_format": "pcm"}) as response:
                next(response.iter_raw())  # then leave mid-stream
            deadline = time.monotonic() + 20
            while client.get("/ready").json()["busy"] and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the cut stream's handler ends after its next disconnect check
            metrics = client.get("/metrics").text  # counted after it is answered: not in its own numbers
    finally:
        srv.stop()
    assert huge_seed.status_code == 400 and "seed" in huge_seed.json()["message"]
    lines = srv.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON: no bare tracebacks
    requests = [r for r in records if r.get("event") == "request"]
    answered_before_metrics = len(requests) - 1
    assert _samples(metrics, "myna_requests_total") == answered_before_metrics
    assert _samples(metrics, "myna_request_seconds_count") == answered_before_metrics
    by_status = {(r["path"], r["status"]) for r in requests}
    assert ("/tts", 400) in by_status and ("/v1/voices", 401) in by_status
    cut = [r for r in requests if r["status"] == 499]
    assert len(cut) == 1 and cut[0]["path"] == "/v1/audio/speech" and cut[0]["outcome"] == "client_disconnected"
    assert all(r.get("key") == "reader" for r in requests if r["path"] == "/tts")  # which key made each request


def test_an_unexpected_fault_is_a_500_and_one_json_line(tiny_set, tmp_path, capfd):
    from myna.server.app import configure_logging, create_app

    configure_logging()
    app = create_app(tiny_settings(tiny_set, tmp_path / "data"))

    async def broken() -> dict:
        raise RuntimeError("an unexpected fault deep inside")

    app.add_api_route("/admin/broken", broken)
    with serving(app) as url:
        capfd.readouterr()  # what loading the models printed is not a request's
        response = httpx.get(url + "/admin/broken", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert "deep inside" not in response.text  # details stay in the log
    out, err = capfd.readouterr()
    records = [json.loads(line) for line in (out + err).splitlines() if line.strip()]  # every line is JSON
    faults = [r for r in records if r.get("event") == "request" and r["path"] == "/admin/broken"]
    assert len(faults) == 1 and faults[0]["status"] == 500 and faults[0]["level"] == "error"
    assert "RuntimeError: an unexpected fault deep inside" in faults[0]["traceback"]


def test_log_lines_go_to_the_stderr_of_the_moment(monkeypatch):
    # whoever swaps sys.stderr (a test harness, a supervisor wrapper) may close the old one: lines must not go there
    import io
    import logging
    import sys

    from myna.server.app import configure_logging

    configure_logging()
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("myna.server").info(json.dumps({"event": "one"}))
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("myna.server").info(json.dumps({"event": "two"}))
    assert [json.loads(line)["event"] for line in second.getvalue().splitlines()] == ["two"]


def _raw_exchange(url: str, head: bytes, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send a request's bytes on a plain socket and return what the server answers within `timeout`."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        try:
            sock.sendall(head + body)
        except OSError:
            pass  # the server may answer and close before it has read everything
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                piece = sock.recv(65536)
                if not piece:
                    break
                answer += piece
        except TimeoutError:
            pass
    return answer


def test_credentials_are_checked_before_the_body_is_read(server):
    """A 20 MB upload without a key is refused at once: the server does not wait for (or read) the body."""
    head = (b"POST /v1/voices HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
            b"Content-Length: 20000000\r\n\r\n")
    started = time.monotonic()
    answer = _raw_exchange(server.url, head, b"--xyz\r\n", timeout=5)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert time.monotonic() - started < 4
    wrong_scope = _raw_exchange(server.url, head.replace(b"Host", f"Authorization: Bearer {TTS_KEY}\r\nHost".encode()),
                                b"--xyz\r\n", timeout=5)
    assert wrong_scope.startswith(b"HTTP/1.1 403"), wrong_scope[:200]


def test_an_oversized_chunked_body_is_413(server):
    body = json.dumps({"text": "a" * (3 * 2**20), "ref_audio_path": "ref0.wav", **EN}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536]) for i in range(0, len(body), 65536))
    head = (f"POST /tts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TTS_KEY}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    answer = _raw_exchange(server.url, head, chunked + b"0\r\n\r\n", timeout=20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
