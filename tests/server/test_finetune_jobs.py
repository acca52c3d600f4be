"""The fine-tune jobs API on a real server: bad requests refused in words, one child at a time with a
queue, stop and resume, and jobs that survive the server stopping (gracefully or killed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import Server

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
CONSENT = {"consent_subject": "Ada Example", "consent_statement": "I agree that my recordings train a voice."}
SENTENCES = ("The quick brown fox jumps over the lazy dog near the river bank today, as it does every day.",
             "She sells sea shells by the sea shore every summer morning, and her brother helps her.",
             "A journey of a thousand miles begins with a single step, or so the old saying goes.",
             "Every morning the baker opens the shop at seven o'clock and sells fresh bread to the town.")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict:
    """espeak-ng speech: `long` (about 25 s, enough to prepare) and `short` (one sentence: too little, which
    `myna data prepare` refuses in a few seconds)."""
    root = tmp_path_factory.mktemp("jobs-speech")
    parts = []
    for number, text in enumerate(SENTENCES):
        path = root / f"s{number}.wav"
        subprocess.run(["espeak-ng", "-s", "140", "-w", str(path), text], check=True, capture_output=True)
        audio, rate = sf.read(str(path), dtype="float32")
        parts += [audio, np.zeros(int(0.8 * rate), np.float32)]
    sf.write(str(root / "long.wav"), np.concatenate(parts), rate)
    return {"long": root / "long.wav", "short": root / "s0.wav"}


@pytest.fixture(scope="module")
def jobs_server(tiny_set, tmp_path_factory):
    srv = Server(tiny_set, tmp_path_factory.mktemp("jobs") / "data", MYNA_WORKERS="1").start()
    yield srv
    srv.stop()


def _create(client, name: str, **extra) -> dict:
    response = client.post("/v1/fine-tunes", json={"name": name, "base": "preset:tiny", "language": "en",
                                                   **CONSENT, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def _upload(client, job_id: str, path: Path) -> dict:
    response = client.post(f"/v1/fine-tunes/{job_id}/recordings", files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 200, response.text
    return response.json()


def _wait(client, job_id: str, states: set[str], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/fine-tunes/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {job['state']} ({job.get('message')}); wanted {states}")


def test_bad_requests_are_refused_in_words(jobs_server, recordings):
    with jobs_server.client(headers=jobs_server.admin) as client:
        bad_name = client.post("/v1/fine-tunes", json={"name": "../etc", "base": "preset:tiny", **CONSENT})
        assert bad_name.status_code == 422 and "name" in bad_name.json()["message"]
        no_consent = client.post("/v1/fine-tunes", json={"name": "ok", "base": "preset:tiny",
                                                         "consent_subject": " ", "consent_statement": " "})
        assert no_consent.status_code == 400 and "consent" in no_consent.json()["message"]
        unknown_base = client.post("/v1/fine-tunes", json={"name": "ok", "base": "v9", **CONSENT})
        assert unknown_base.status_code == 400 and "not available" in unknown_base.json()["message"]
        job = _create(client, "words")
        assert client.post("/v1/fine-tunes", json={"name": "WORDS", "base": "preset:tiny", **CONSENT}).status_code == 409
        text = client.post(f"/v1/fine-tunes/{job['id']}/recordings", files={"file": ("notes.txt", b"hello")})
        assert text.status_code == 400 and "not an audio file" in text.json()["message"]
        assert client.post(f"/v1/fine-tunes/{job['id']}/prepare").status_code == 409  # nothing uploaded yet
        early = client.get(f"/v1/fine-tunes/{job['id']}/transcripts")
        assert early.status_code == 409 and "no prepared transcripts" in early.json()["message"]
        assert client.post(f"/v1/fine-tunes/{job['id']}/resume").status_code == 409
        assert client.get("/v1/fine-tunes/ft_nosuchjob123").status_code == 404
        assert client.delete(f"/v1/fine-tunes/{job['id']}").status_code == 204
    with jobs_server.client(headers=jobs_server.tts) as client:  # a tts key may not fine-tune
        assert client.get("/v1/fine-tunes").status_code == 403


def test_one_job_runs_at_a_time_others_wait_and_can_be_stopped(jobs_server, recordings):
    with jobs_server.client(headers=jobs_server.admin) as client:
        first, second = _create(client, "first"), _create(client, "second")
        for job in (first, second):
            _upload(client, job["id"], recordings["short"])
            assert client.post(f"/v1/fine-tunes/{job['id']}/prepare").json()["state"] == "queued"
        _wait(client, first["id"], {"preparing"})
        waiting = client.get(f"/v1/fine-tunes/{second['id']}").json()
        assert waiting["state"] == "queued" and waiting["queue_position"] == 1
        assert client.post(f"/v1/fine-tunes/{second['id']}/cancel").json()["state"] == "stopped"
        failed = _wait(client, first["id"], {"failed"})
        assert "usable speech" in failed["message"]  # the child's own reason, in words
        assert "Traceback" not in failed["message"]
        # the stopped job queues again and runs once the machine is free
        assert client.post(f"/v1/fine-tunes/{second['id']}/resume").json()["state"] == "queued"
        _wait(client, second["id"], {"preparing"})
        stopping = client.post(f"/v1/fine-tunes/{second['id']}/cancel").json()
        assert stopping["state"] == "stopping"
        assert _wait(client, second["id"], {"stopped"})["action"] == "prepare"
        assert client.delete(f"/v1/fine-tunes/{first['id']}").status_code == 204
        assert client.delete(f"/v1/fine-tunes/{second['id']}").status_code == 204


def _runs(srv: Server, job_id: str) -> int:
    """How many times a child was started for the job (its log has one header per start)."""
    return (srv.data_dir / "fine-tunes" / job_id / "run.log").read_text().count("== prepare started")


def test_jobs_survive_the_server_being_killed_or_stopped(jobs_server, recordings):
    srv = jobs_server  # restarted twice here; the fixture stops it at the end
    with srv.client(headers=srv.admin) as client:
        killed, stopped = _create(client, "killed"), _create(client, "stopped")
        for job in (killed, stopped):
            _upload(client, job["id"], recordings["short"])
        client.post(f"/v1/fine-tunes/{killed['id']}/prepare")
        child = _wait(client, killed["id"], {"preparing"})["pid"]
    os.kill(child, signal.SIGSTOP)  # held, so it is still running when the next server looks
    srv.process.send_signal(signal.SIGKILL)  # a crash: the child goes on by itself
    srv.process.wait()
    srv.start()
    assert Path(f"/proc/{child}").exists()
    os.kill(child, signal.SIGCONT)
    with srv.client(headers=srv.admin) as client:
        # the new server adopts the child and reads its outcome from its files
        adopted = _wait(client, killed["id"], {"failed", "review"})
        assert "usable speech" in adopted["message"] and _runs(srv, killed["id"]) == 1
        client.post(f"/v1/fine-tunes/{stopped['id']}/prepare")
        _wait(client, stopped["id"], {"preparing"})
    assert srv.stop() in (0, -15)  # SIGTERM (uvicorn re-raises it once stopped)
    record = json.loads((srv.data_dir / "fine-tunes" / stopped["id"] / "job.json").read_text())
    assert record["state"] == "queued" and "server stopped" in record["message"]
    srv.start()
    with srv.client(headers=srv.admin) as client:
        # queued again at the stop, it runs again at the start
        again = _wait(client, stopped["id"], {"failed", "review"})
        assert "usable speech" in again["message"] and _runs(srv, stopped["id"]) == 2
