"""Caches of synthesized results (encoded audio bytes), keyed by voice, voice version, text and options.

Two kinds behave the same: `EmbeddedCache`, an in-process LRU bounded by total bytes (the
default), and `RedisCache`, shared by several server processes. Every entry belongs to a voice,
so deleting a voice drops its results (`delete_voice`), as erasure requires.

Keys from `result_key` are `"<voice id>:<sha256 hex>"`; the voice id in front lets a cache find a
key's voice when `put` is not told it, and gives Redis keys of the form
`myna:result:<voice id>:<sha256 hex>`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import PurePath
from typing import Protocol

from myna.errors import ServerFault

log = logging.getLogger(__name__)

KEY_FORMAT_VERSION = 1
REDIS_PREFIX = "myna:result:"
REDIS_VOICE_SET = "myna:result-voice:"
_KEY_PATTERN = re.compile(r"(?P<voice>[^:]+):[0-9a-f]{64}")


class CacheError(ServerFault):
    """The result cache cannot be reached or could not drop a voice's results."""

    status = 503
    code = "cache_unavailable"


class ResultCache(Protocol):
    """What the server needs from a result cache."""

    def get(self, key: str) -> bytes | None:
        """The cached value, or None (counted as a miss)."""

    def put(self, key: str, value: bytes, voice_id: str | None = None) -> None:
        """Store a value; `voice_id` (or the voice in a `result_key` key) lets `delete_voice` find it."""

    def discard(self, key: str) -> None:
        """Drop one entry if present."""

    def delete_voice(self, voice_id: str) -> int:
        """Drop every entry of a voice; return how many were dropped."""

    def check(self) -> None:
        """Raise `CacheError` unless the cache can be reached now (an erasure must be able to finish)."""

    def stats(self) -> dict[str, int]:
        """Counters: hits, misses, entries (and kind-specific extras)."""


def result_key(voice_id: str, voice_version: int, text: str, params: Mapping[str, object]) -> str:
    """A stable key: `<voice id>:` + sha256 of the canonical JSON of everything that shapes the result."""
    document = {"v": KEY_FORMAT_VERSION, "voice": voice_id, "version": voice_version, "text": text,
                "params": dict(params)}  # fmt: skip
    canonical = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable
    )
    return f"{voice_id}:{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def _jsonable(value: object) -> object:
    """JSON form of the non-JSON option values a request may carry (dataclasses, paths, sets)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"result_key: option value {value!r} ({type(value).__name__}) has no stable JSON form")


def _voice_of(key: str, voice_id: str | None) -> str | None:
    """The voice an entry belongs to: the one given, else the one in a `result_key` key."""
    if voice_id is not None:
        return voice_id
    match = _KEY_PATTERN.fullmatch(key)
    return match["voice"] if match else None


class EmbeddedCache:
    """In-process LRU cache bounded by the total size of its values; thread-safe."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes, str | None]] = OrderedDict()
        self._by_voice: dict[str, set[str]] = {}
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0

    def get(self, key: str) -> bytes | None:
        """The cached value (now most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, key: str, value: bytes, voice_id: str | None = None) -> None:
        """Store a value, evicting least recently used entries; a value above `max_bytes` is not kept."""
        value = bytes(value)
        voice = _voice_of(key, voice_id)
        with self._lock:
            self._drop(key)
            if len(value) > self.max_bytes:
                return
            self._entries[key] = (value, voice)
            self._bytes += len(value)
            if voice is not None:
                self._by_voice.setdefault(voice, set()).add(key)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
                self._evictions += 1

    def discard(self, key: str) -> None:
        """Drop one entry if present."""
        with self._lock:
            self._drop(key)

    def delete_voice(self, voice_id: str) -> int:
        """Drop every entry of a voice."""
        with self._lock:
            keys = self._by_voice.pop(voice_id, set())
            for key in keys:
                self._drop(key)
            return len(keys)

    def check(self) -> None:
        """Always reachable (it lives in this process)."""

    def stats(self) -> dict[str, int]:
        """hits, misses, entries, bytes, max_bytes, evictions."""
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "entries": len(self._entries),
                    "bytes": self._bytes, "max_bytes": self.max_bytes, "evictions": self._evictions}  # fmt: skip

    def _drop(self, key: str) -> None:
        """Remove one entry and its voice index (lock held)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= len(entry[0])
        keys = self._by_voice.get(entry[1]) if entry[1] is not None else None
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_voice[entry[1]]


# Drops a voice's entries atomically: every key in the voice's set, then the set itself.
_DELETE_VOICE_SCRIPT = """
local dropped = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    dropped = dropped + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return dropped
"""


class RedisCache:
    """Results in Redis, shared between processes; size is bounded by Redis' own `maxmemory` policy.

    `get` and `put` degrade to a miss / no-op when Redis is unreachable (counted as `errors`);
    `delete_voice` raises `CacheError` instead, because a failed erasure must not pass silently.
    """

    def __init__(self, url: str, ttl_seconds: int | None = None) -> None:
        import redis

        self.ttl_seconds = ttl_seconds
        self._redis_errors = (redis.RedisError, OSError)
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
            self._client.ping()
        except (ValueError, *self._redis_errors) as exc:
            raise CacheError(f"cannot use Redis at {url!r} for the result cache ({exc}); "
                             "start redis-server there or run without a Redis URL") from exc  # fmt: skip
        self._delete_script = self._client.register_script(_DELETE_VOICE_SCRIPT)
        self._lock = threading.Lock()
        self._hits = self._misses = self._errors = 0

    def get(self, key: str) -> bytes | None:
        """The cached value, or None (also when Redis fails)."""
        try:
            value = self._client.get(REDIS_PREFIX + key)
        except self._redis_errors as exc:
            log.warning("result cache: Redis get failed: %s", exc)
            self._count("errors")
            return None
        self._count("hits" if value is not None else "misses")
        return value

    def put(self, key: str, value: bytes, voice_id: str | None = None) -> None:
        """Store a value (with the TTL, if any) and index it under its voice."""
        voice = _voice_of(key, voice_id)
        name = REDIS_PREFIX + key
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(name, bytes(value), ex=self.ttl_seconds)
                if voice is not None:
                    pipe.sadd(REDIS_VOICE_SET + voice, name)
                    if self.ttl_seconds:
                        pipe.expire(REDIS_VOICE_SET + voice, self.ttl_seconds)
                pipe.execute()
        except self._redis_errors as exc:
            log.warning("result cache: Redis put failed: %s", exc)
            self._count("errors")

    def discard(self, key: str) -> None:
        """Drop one entry (and its place in its voice's index); raises `CacheError` when Redis fails."""
        voice = _voice_of(key, None)
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(REDIS_PREFIX + key)
                if voice is not None:
                    pipe.srem(REDIS_VOICE_SET + voice, REDIS_PREFIX + key)
                pipe.execute()
        except self._redis_errors as exc:
            raise CacheError(f"could not drop a cached result from Redis: {exc}") from exc

    def check(self) -> None:
        """Raise `CacheError` unless Redis answers now."""
        try:
            self._client.ping()
        except self._redis_errors as exc:
            raise CacheError(f"the Redis result cache cannot be reached ({exc}); retry once it is back") from exc

    def delete_voice(self, voice_id: str) -> int:
        """Drop every entry of a voice (indexed ones, and any key under its prefix)."""
        try:
            dropped = int(self._delete_script(keys=[REDIS_VOICE_SET + voice_id]))
            pattern = REDIS_PREFIX + _glob_escape(voice_id) + ":*"
            stray = list(self._client.scan_iter(match=pattern, count=500))
            if stray:
                dropped += int(self._client.delete(*stray))
        except self._redis_errors as exc:
            raise CacheError(f"could not drop the cached results of voice {voice_id} from Redis: {exc}") from exc
        return dropped

    def stats(self) -> dict[str, int]:
        """hits, misses and errors of this process; entries counted in Redis (all processes)."""
        try:
            entries = sum(1 for _ in self._client.scan_iter(match=REDIS_PREFIX + "*", count=1000))
        except self._redis_errors:
            entries = -1
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "entries": entries, "errors": self._errors}

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, f"_{name}", getattr(self, f"_{name}") + 1)


def _glob_escape(text: str) -> str:
    """Escape Redis glob characters."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def make_result_cache(redis_url: str | None, max_bytes: int = 256 * 2**20, ttl_seconds: int | None = None) -> ResultCache:
    """A `RedisCache` when a URL is given (checked now), else an `EmbeddedCache` of `max_bytes`."""
    if redis_url:
        return RedisCache(redis_url, ttl_seconds=ttl_seconds)
    return EmbeddedCache(max_bytes)
