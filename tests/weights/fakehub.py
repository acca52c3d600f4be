"""A Hugging Face-style hub and its CDN on loopback, for tests of `myna models pull` (plus helpers).

Two real HTTP servers on 127.0.0.1 (two ports, so the CDN is another origin, as on the Hub):

- hub: `HEAD|GET /{owner}/{name}/resolve/{revision}/{path}` answers as huggingface.co does for what
  `huggingface_hub` reads: a small file comes back directly with `ETag` (its git blob id),
  `Content-Length` and `X-Repo-Commit`; an LFS file is a 302 to the CDN with `X-Linked-Etag` (its
  sha256), `X-Linked-Size` and `X-Repo-Commit`. Unknown repos/files are 404 with `X-Error-Code`.
  `GET|HEAD /models/{owner}/{name}/resolve/{revision}/{path}` is a ModelScope-style plain download.
- cdn: `GET /{sha256}` with `Range: bytes=N-` support (206 + Content-Range).

Faults, per repo path: `drops[path] = [n, ...]` cuts the next transfers of that file after n body bytes
(the connection is closed mid-body, with the full Content-Length announced); `fail_after_drop[path]`
answers the transfer after a drop with 503; `tamper[path] = bytes` serves other bytes than the
announced hash. `requests` logs (server, method, path, Range header) of every request, `tokens` the
Authorization header of each hub request.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

from myna.weights.catalog import G2PW_ARCHIVE, VERSION_FILES

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".bin", ".pth", ".ckpt", ".zip", ".onnx")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Serve `repos` ({"owner/name": {path: bytes}}) like the Hub; start() / stop() or use as a context."""

    def __init__(self, repos: Mapping[str, Mapping[str, bytes]]):
        self.repos = {repo: dict(files) for repo, files in repos.items()}
        self.drops: dict[str, list[int]] = {}
        self.fail_after_drop: set[str] = set()
        self.tamper: dict[str, bytes] = {}
        self.announce: dict[str, tuple[str, int]] = {}  # path -> (sha256, size) announced instead of the truth
        self.requests: list[tuple[str, str, str, str | None]] = []
        self.tokens: list[str | None] = []  # the Authorization header of each hub request
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        self.hub = self._server("hub")
        self.cdn = self._server("cdn")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def start(self) -> FakeHub:
        for server in (self.hub, self.cdn):
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def transfers(self, path: str) -> list[str | None]:
        """The Range headers of the CDN/ModelScope GETs that carried `path`'s bytes."""
        sha = self._sha_of_path(path)
        return [rng for server, method, url, rng in self.requests
                if method == "GET" and (url == f"/{sha}" or url.endswith("/" + quote(path)))
                and (server == "cdn" or url.startswith("/models/"))]

    # -- internals ----------------------------------------------------------------------------------
    def _sha_of_path(self, path: str) -> str | None:
        for files in self.repos.values():
            if path in files:
                return hashlib.sha256(files[path]).hexdigest()
        return None

    def _by_sha(self, sha: str) -> tuple[str, bytes] | None:
        for files in self.repos.values():
            for path, data in files.items():
                if hashlib.sha256(data).hexdigest() == sha:
                    return path, data
        return None

    def _server(self, role: str) -> ThreadingHTTPServer:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                self._handle(body=False)

            def do_GET(self) -> None:
                self._handle(body=True)

            def _handle(self, body: bool) -> None:
                path = urlsplit(self.path).path
                with hub._lock:
                    hub.requests.append((role, self.command, path, self.headers.get("Range")))
                    if role == "hub":
                        hub.tokens.append(self.headers.get("Authorization"))
                if role == "cdn":
                    found = hub._by_sha(path.strip("/"))
                    return self._send_file(*found, body) if found else self._error(404, "EntryNotFound")
                parts = path.strip("/").split("/")
                if parts[0] == "models" and len(parts) > 5 and parts[3] == "resolve":
                    repo, rel = "/".join(parts[1:3]), unquote("/".join(parts[5:]))
                    files = hub.repos.get(repo, {})
                    return self._send_file(rel, files[rel], body) if rel in files else self._error(404, "EntryNotFound")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo, rel = "/".join(parts[:2]), unquote("/".join(parts[4:]))
                if repo not in hub.repos:
                    return self._error(404, "RepoNotFound")
                if rel not in hub.repos[repo]:
                    return self._error(404, "EntryNotFound")
                data = hub.repos[repo][rel]
                if rel.endswith(LFS_SUFFIXES):
                    sha, size = hub.announce.get(rel, (hashlib.sha256(data).hexdigest(), len(data)))
                    self.send_response(302)
                    self.send_header("Location", f"{hub.cdn_url}/{hashlib.sha256(data).hexdigest()}")
                    self.send_header("X-Linked-Etag", f'"{sha}"')
                    self.send_header("X-Linked-Size", str(size))
                    self.send_header("ETag", f'"{git_blob_sha1(b"pointer " + sha.encode())}"')
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                served = hub.tamper.get(rel, data)  # the ETag always names the true bytes
                self.send_response(200)
                self.send_header("ETag", f'"{git_blob_sha1(data)}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", str(len(served)))
                self.end_headers()
                if body:
                    self.wfile.write(served)
                return None

            def _send_file(self, rel: str, data: bytes, body: bool) -> None:
                data = hub.tamper.get(rel, data)
                with hub._lock:
                    drop = hub.drops.get(rel, [None]).pop(0) if body and hub.drops.get(rel) else None
                    fail = body and rel in hub._dropped and rel in hub.fail_after_drop
                    if drop is not None:
                        hub._dropped.add(rel)
                    if fail:
                        hub._dropped.discard(rel)
                        hub.fail_after_drop.discard(rel)
                if fail:
                    return self._error(503, None)
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                chunk = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if not body:
                    return
                if drop is None:
                    self.wfile.write(chunk)
                    return
                self.wfile.write(chunk[:drop])  # then hang up mid-body, as a dropped connection does
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _error(self, status: int, code: str | None) -> None:
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                    self.send_header("X-Error-Message", f"{code} (fake hub)")
                self.send_header("Content-Length", "0")
                self.end_headers()

        return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


TEST_REPO = "myna-test/GPT-SoVITS"  # not the release's name, so myna's pins (real hashes) do not apply


def random_release(seed: int = 7) -> dict[str, bytes]:
    """Random bytes under every path the catalog names (sizes ~10-300 kB; JSON files small), plus G2PWModel.zip."""
    rng = random.Random(seed)
    files = {}
    for rel in sorted({rel for paths in VERSION_FILES.values() for rel in paths}):
        size = 900 + rng.randrange(300) if rel.endswith(".json") else 100_000 + rng.randrange(200_000)
        files[rel] = rng.randbytes(size)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("G2PWModel/g2pW.onnx", rng.randbytes(50_000))
        zf.writestr("G2PWModel/POLYPHONIC_CHARS.txt", "行\tㄏㄤˊ\n")
        zf.writestr("G2PWModel/version", "v2.0")
    files[G2PW_ARCHIVE] = buffer.getvalue()
    return files


def run_myna(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m myna ARGS` with `env` added to a clean copy of the environment (text output)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MYNA_"))}
    return subprocess.run([sys.executable, "-m", "myna", *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})})
