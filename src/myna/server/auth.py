"""API keys: kept only as SHA-256 hashes; scopes "tts" (synthesis, read voices) and "admin" (everything).

Keys file, one key per line (blank lines and # comments skipped):
    sha256:<64 hex digits> tts,admin  optional-name
Make a line with `myna serve --hash-key KEY`. With no keys configured the server is open (local use).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from myna.errors import InputError
from myna.server.errors import ApiError

SCOPES = ("tts", "admin")


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyEntry:
    """One accepted key: its hash, scopes and a name for logs."""

    digest: str
    scopes: frozenset[str]
    name: str


class KeyStore:
    """The accepted keys; `check(request, scope)` raises 401/403 unless the request's key allows `scope`."""

    def __init__(self, entries: list[KeyEntry]):
        self.entries = entries

    @classmethod
    def load(cls, keys_file: Path | None, admin_key: str | None) -> KeyStore:
        """Keys from the keys file plus the admin key (hashed now, the clear text is not kept)."""
        entries = []
        if keys_file is not None:
            if not keys_file.is_file():
                raise InputError(f"{keys_file}: no such API keys file")
            for number, line in enumerate(keys_file.read_text(encoding="utf-8").splitlines(), start=1):
                line = line.strip()
                if line and not line.startswith("#"):
                    entries.append(_parse_line(line, keys_file, number))
        if admin_key:
            entries.append(KeyEntry(hash_key(admin_key), frozenset(SCOPES), "admin"))
        return cls(entries)

    @property
    def enabled(self) -> bool:
        """Whether requests need a key at all."""
        return bool(self.entries)

    def check(self, request: Request, scope: str) -> str | None:
        """The name of the key that allows `scope` for this request (None when auth is off)."""
        return self.check_headers(request.headers, scope)

    def allows(self, headers: Mapping[str, str], scope: str) -> bool:
        """Whether these request headers carry a key with `scope` (always, when auth is off)."""
        try:
            self.check_headers(headers, scope)
        except ApiError:
            return False
        return True

    def check_headers(self, headers: Mapping[str, str], scope: str) -> str | None:
        """The name of the key in these request headers that allows `scope` (None when auth is off)."""
        if not self.enabled:
            return None
        key = _presented_key(headers)
        if key is None:
            raise ApiError(401, "an API key is required: send 'Authorization: Bearer KEY'", "missing_api_key",
                           {"WWW-Authenticate": "Bearer"})
        digest = hash_key(key)
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, digest):
                if scope in entry.scopes or "admin" in entry.scopes:
                    return entry.name
                raise ApiError(403, f"this API key lacks the {scope!r} scope", "forbidden")
        raise ApiError(401, "the API key is not valid", "invalid_api_key", {"WWW-Authenticate": "Bearer"})


def _presented_key(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return headers.get("x-api-key") or None


# Paths anyone may reach; everything else needs a key once keys are configured.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_TTS_PATHS = frozenset({"/tts", "/v1/audio/speech", "/v1/models", "/v1/ui/transcode"})
# the web page and its files hold no data; /v1/ui/config tells the page whether to ask for a key
_PAGE_PATHS = frozenset({"/", "/v1/ui/config"})


def required_scope(method: str, path: str) -> str | None:
    """The scope an HTTP request needs (None: open), decided from its method and path before any body is read.

    Synthesis and reading voices need `tts`; creating or deleting voices, reloads and any path not
    listed need `admin` (an unknown path answers 404 only to a key that could use it).
    """
    if path in OPEN_PATHS or path in _PAGE_PATHS or path.startswith("/ui/"):
        return None
    if path in _TTS_PATHS:
        return "tts"
    if path == "/v1/voices" or path.startswith("/v1/voices/"):
        return "tts" if method in ("GET", "HEAD") else "admin"
    return "admin"


def _parse_line(line: str, path: Path, number: int) -> KeyEntry:
    parts = line.split(None, 2)
    digest = parts[0]
    if not digest.startswith("sha256:") or len(digest) != 71 or any(c not in "0123456789abcdef" for c in digest[7:]):
        raise InputError(f"{path}:{number}: expected 'sha256:<64 lowercase hex digits> SCOPES [NAME]' "
                         "(make one with `myna serve --hash-key KEY`)")
    scopes = frozenset(parts[1].split(",")) if len(parts) > 1 else frozenset({"tts"})
    unknown = scopes - set(SCOPES)
    if unknown:
        raise InputError(f"{path}:{number}: unknown scope(s) {', '.join(sorted(unknown))}; use tts and/or admin")
    return KeyEntry(digest, scopes, parts[2] if len(parts) > 2 else f"key{number}")
