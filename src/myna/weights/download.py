"""One file over the network: where it is, what it must hash to, and a resumable transfer.

Every request goes through `huggingface_hub`'s HTTP layer, so `HF_ENDPOINT`, `HF_TOKEN`,
`HF_HUB_OFFLINE`, proxies and its retry-with-Range on dropped connections apply to every source. Hub
sources announce each file's hash in the headers `huggingface_hub` reads (`X-Linked-Etag`: the sha256
of an LFS file; `ETag`: the git blob id of a small file); plain HTTPS sources (ModelScope) announce
nothing, so only hashes pinned in myna can vouch for their bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from myna.errors import IntegrityError, MynaError, NetworkError
from myna.weights.store import sha256_of, storage_error

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Remote:
    """A file to fetch: its URL, byte size and the hash its bytes must have (sha256, else git blob id)."""

    rel: str
    url: str
    size: int | None
    sha256: str | None
    git_sha1: str | None
    commit: str | None
    hub: bool  # send the Hub's headers (token) with the request

    def expected(self) -> str:
        """The hash a downloaded copy is checked against, as "sha256:..." or "git-sha1:..."."""
        return f"sha256:{self.sha256}" if self.sha256 else f"git-sha1:{self.git_sha1}"


def hub_remote(endpoint: str, repo: str, revision: str, rel: str, path_in_repo: str | None = None) -> Remote:
    """Metadata of a file on a Hugging Face-style hub (HEAD on its resolve URL, as hf_hub_download does)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo, path_in_repo or rel, revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, endpoint=endpoint)
    except Exception as exc:  # huggingface_hub and httpx raise many types; all become one NetworkError
        raise network_error(exc, url) from None
    etag = (meta.etag or "").lower()
    return Remote(rel, meta.location, meta.size, etag if _SHA256.fullmatch(etag) else None,
                  etag if _GIT_SHA1.fullmatch(etag) else None, meta.commit_hash, True)


def https_remote(endpoint: str, repo: str, revision: str, rel: str, sha256: str, size: int | None,
                 path_in_repo: str | None = None) -> Remote:
    """A file on a plain HTTPS mirror laid out as `{endpoint}/models/{repo}/resolve/{revision}/{path}`."""
    url = f"{endpoint.rstrip('/')}/models/{repo}/resolve/{revision}/{quote(path_in_repo or rel)}"
    if size is None:
        size = _content_length(url)
    return Remote(rel, url, size, sha256, None, None, False)


def _content_length(url: str) -> int | None:
    from huggingface_hub.utils import http_backoff

    try:
        response = http_backoff("HEAD", url, follow_redirects=True, retry_on_exceptions=(), retry_on_status_codes=())
        response.raise_for_status()
    except Exception as exc:
        raise network_error(exc, url) from None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (what a hub announces as the ETag of a non-LFS file)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def matches(path: Path, remote: Remote) -> str | None:
    """The file's sha256 if its bytes are the ones `remote` announces, else None."""
    digest = sha256_of(path)
    if remote.sha256:
        return digest if digest == remote.sha256 else None
    return digest if git_blob_sha1(path) == remote.git_sha1 else None


def fetch(remote: Remote, part: Path, bar: Callable | None) -> str:
    """Download `remote` into `part` (resuming what is there), check its hash; its sha256.

    A part whose sidecar names other bytes (the file changed at the source) is started over. On a hash
    mismatch the part is deleted, so nothing of the bad bytes is kept, and IntegrityError is raised.
    """
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    sidecar = part.with_name(part.name + ".json")
    wanted = {"expected": remote.expected(), "size": remote.size}
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        if _read_json(sidecar) != wanted or (remote.size is not None and _size(part) > remote.size):
            part.unlink(missing_ok=True)
            sidecar.write_text(json.dumps(wanted), encoding="utf-8")
        done = _size(part)
        headers = build_hf_headers() if remote.hub else {"User-Agent": "myna"}
        with open(part, "ab") as f:
            http_get(remote.url, f, resume_size=done, headers=headers, expected_size=remote.size,
                     displayed_filename=remote.rel, tqdm_class=bar)
    except Exception as exc:  # the disk (OSError with an errno) or the network (everything else)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise storage_error(exc, part) from None
        raise network_error(exc, remote.url) from None
    digest = matches(part, remote)
    if digest is None:
        got = sha256_of(part)
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise IntegrityError(f"{remote.rel}: the downloaded bytes (sha256 {got}) are not the announced "
                             f"{remote.expected()}; nothing was kept. Run the command again; if this repeats, "
                             "the source serves other bytes than the release: try another --source")
    return digest


def network_error(exc: BaseException, url: str) -> MynaError:
    """A NetworkError (or StorageError) with a message a user can act on, for any error a request raised."""
    import httpx2
    from huggingface_hub import errors as hub_errors

    if isinstance(exc, hub_errors.OfflineModeIsEnabled):
        return NetworkError("HF_HUB_OFFLINE is set, so nothing can be downloaded: unset it to pull "
                            "(models already pulled keep working offline)")
    if isinstance(exc, hub_errors.GatedRepoError | hub_errors.RepositoryNotFoundError):
        return NetworkError(f"{url}: repository not found or not accessible (HTTP "
                            f"{_status(exc)}); check --repo, or set HF_TOKEN if it needs a login")
    if isinstance(exc, hub_errors.EntryNotFoundError | hub_errors.RemoteEntryNotFoundError):
        return NetworkError(f"{url}: no such file at the source (HTTP 404)")
    if isinstance(exc, hub_errors.HfHubHTTPError | httpx2.HTTPStatusError):
        return NetworkError(f"{url}: the server answered HTTP {_status(exc)}; try again later, or another --source "
                            "(the download resumes where it stopped)")
    if isinstance(exc, OSError) and exc.errno is None and "Consistency check failed" in str(exc):
        return NetworkError(f"{url}: the transfer ended before the announced size; run the same command again "
                            "to resume")
    if isinstance(exc, httpx2.HTTPError):
        return NetworkError(f"cannot reach {_origin(url)} ({type(exc).__name__}: {exc}): check the network "
                            "connection (or HF_ENDPOINT); where huggingface.co is blocked use --source hf-mirror "
                            "or --source modelscope. Running the same command again resumes the download")
    if isinstance(exc, OSError):
        return storage_error(exc, Path("."))
    return NetworkError(f"{url}: {type(exc).__name__}: {exc}")


def _status(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(getattr(response, "status_code", "?"))


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
