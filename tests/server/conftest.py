"""A real `myna serve` subprocess on a free 127.0.0.1 port, with the tiny model set; stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ADMIN_KEY = "test-admin-key"
TTS_KEY = "test-tts-key"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One `myna serve` process; `url`, `admin` / `tts` headers, `stop()` / `start()`."""

    def __init__(self, tiny_set: dict, data_dir: Path, **env: str):
        from myna.server.auth import hash_key

        self.data_dir = data_dir
        keys = data_dir.parent / f"{data_dir.name}-keys.txt"
        keys.write_text(f"# test keys\n{hash_key(TTS_KEY)} tts reader\n", encoding="utf-8")
        self.env = {
            **os.environ,
            "MYNA_DATA_DIR": str(data_dir), "MYNA_REF_DIRS": str(tiny_set["root"]),
            "MYNA_GPT": str(tiny_set["gpt"]), "MYNA_SOVITS": str(tiny_set["sovits"]),
            "MYNA_HUBERT": str(tiny_set["hubert"]), "MYNA_BERT": str(tiny_set["bert"]),
            "MYNA_API_KEYS_FILE": str(keys), "MYNA_ADMIN_KEY": ADMIN_KEY, "MYNA_WORKERS": "2",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env,
        }
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.process: subprocess.Popen | None = None
        self.preexec = None  # run in the child before `myna serve` starts (e.g. resource limits)
        self.url = ""
        self.admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        self.tts = {"Authorization": f"Bearer {TTS_KEY}"}

    def start(self, timeout: float = 90.0) -> Server:
        """Start the process on a new free port and wait until /ready answers 200."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**self.env, "MYNA_PORT": str(port), "MYNA_HOST": "127.0.0.1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen([sys.executable, "-m", "myna", "serve"], env=env, stdout=log, stderr=log,
                                        preexec_fn=self.preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"myna serve exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"myna serve was not ready in {timeout} s: {self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the process (graceful shutdown) and wait for it; returns its exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def client(self, **kwargs) -> httpx.Client:
        """An HTTP client for this server."""
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


@pytest.fixture(scope="session")
def server(tiny_set, tmp_path_factory):
    """The shared server of the server tests (2 workers, keys configured)."""
    srv = Server(tiny_set, tmp_path_factory.mktemp("serve") / "data").start()
    yield srv
    srv.stop()


def upload_voice(srv: Server, clip: Path, name: str, transcript: str = "This is my reference voice.") -> dict:
    """Register a voice through the API; returns its JSON record."""
    with srv.client() as client:
        response = client.post(
            "/v1/voices", headers=srv.admin,
            files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
            data={"name": name, "language": "en", "transcript": transcript,
                  "consent_subject": name, "consent_statement": "I agree to my voice being cloned for tests."},
        )
    assert response.status_code == 201, response.text
    return response.json()
