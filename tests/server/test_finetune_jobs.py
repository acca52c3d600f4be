"""The fine-tune jobs API on a real server: bad requests refused in words, one child at a time with a
queue, stop and resume, jobs that survive the server stopping (gracefully or killed), and a fine-tune of
the server's model that `myna train` resumes as its own run after a restart."""

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


def _upstream_layout(tiny_set, root: Path) -> Path:
    """The tiny model set as a pretrained_models folder, so a job can fine-tune the server's model."""
    (root / "gsv-v2final-pretrained").mkdir(parents=True)
    (root / "gsv-v2final-pretrained" / "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt").symlink_to(tiny_set["gpt"])
    (root / "gsv-v2final-pretrained" / "s2G2333k.pth").symlink_to(tiny_set["sovits"])
    (root / "chinese-hubert-base").symlink_to(tiny_set["hubert"])
    (root / "chinese-roberta-wwm-ext-large").symlink_to(tiny_set["bert"])
    return root


def test_a_fine_tune_resumes_its_own_run_after_a_restart_and_its_transcripts_stay_fixed(
        tiny_set, recordings, tmp_path):
    base = _upstream_layout(tiny_set, tmp_path / "models")
    srv = Server(tiny_set, tmp_path / "data", MYNA_WORKERS="1", MYNA_MODEL_DIR=str(base), MYNA_MODEL_VERSION="v2")
    srv.start()
    try:
        with srv.client(headers=srv.admin) as client:
            job = _create(client, "resumed", base="server", sovits_epochs=1, gpt_epochs=1, sovits_batch=4,
                          gpt_batch=4)
            _upload(client, job["id"], recordings["long"])
            client.post(f"/v1/fine-tunes/{job['id']}/prepare")
            assert _wait(client, job["id"], {"review", "failed"})["transcripts_editable"]
            # Whisper's confidence in each transcript from prepare; a corrected one is no longer doubted
            items = client.get(f"/v1/fine-tunes/{job['id']}/transcripts").json()["data"]
            assert all(0 < item["confidence"] <= 1 and isinstance(item["flagged"], bool) for item in items)
            fixed = client.put(f"/v1/fine-tunes/{job['id']}/transcripts",
                               json={"items": [{"index": 0, "text": items[0]["text"] + " "}]}).json()["data"]
            assert fixed[0]["confidence"] is None and fixed[1]["confidence"] == items[1]["confidence"]
            client.post(f"/v1/fine-tunes/{job['id']}/start")
            _wait(client, job["id"], {"training"})
            run = srv.data_dir / "trained" / "resumed" / "work" / "run.json"
            deadline = time.monotonic() + 60
            while not run.is_file() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert run.is_file()  # `myna train` recorded what it began on
        srv.stop()  # the child is interrupted and its job queued again
        srv.start()
        with srv.client(headers=srv.admin) as client:
            # the same inputs: `myna train` resumes its run instead of refusing it as a different one
            done = _wait(client, job["id"], {"done", "failed"}, 180)
            assert done["state"] == "done", done["message"]
            assert not done["transcripts_editable"]
            # progress read from the files `myna train` itself wrote (status.json, losses.jsonl)
            progress = done["progress"]
            assert progress["source"] == "status" and progress["stage"] == "done"
            assert {point["stage"] for point in progress["history"]} == {"SoVITS", "GPT"}
            log = (srv.data_dir / "fine-tunes" / job["id"] / "run.log").read_text()
            assert log.count("== train started") == 2 and "changed:" not in log
            # corrections now would make the run a different one on its next resume: refused in words
            late = client.put(f"/v1/fine-tunes/{job['id']}/transcripts", json={"items": [{"index": 0, "text": "Hi."}]})
            assert late.status_code == 409 and "training has begun" in late.json()["message"]
    finally:
        srv.stop()


def test_a_server_with_a_model_key_trains_encrypted_models(tmp_path, monkeypatch):
    import sys

    from myna.server.job_commands import child_command
    from myna.server.jobs import Job, JobRunner

    key = bytes(range(32))
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    monkeypatch.setenv("MYNA_MODEL_KEY_FILE", str(other))  # the server's own key came from elsewhere
    runner = JobRunner(tmp_path / "data", tmp_path / "home", model_key=key)
    job = Job(id="ft_abcdefgh", name="anna", language="en", base="preset:tiny", options={}, consent={},
              action="train")
    command = child_command(job, tmp_path, tmp_path / "data", None, "v2", sys.executable, encrypt=True)
    assert command[2:4] == ["myna", "train"] and "--encrypt" in command
    assert "--encrypt" not in child_command(job, tmp_path, tmp_path / "data", None, "v2", sys.executable)
    seen = subprocess.run([sys.executable, "-c", "from myna.config import Settings;"
                           "print(Settings.from_env().model_key_bytes().hex())"],
                          env=runner.child_env(), capture_output=True, text=True, timeout=60, check=True)
    assert seen.stdout.strip() == key.hex()  # the child seals with the key the server holds
    assert JobRunner(tmp_path / "data", tmp_path / "home").child_env() is None
