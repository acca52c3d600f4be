"""Result caches: the same behaviour from the embedded LRU and from a real redis-server."""

import threading
import uuid

import pytest
import redis
from redis_fixture import redis_url  # noqa: F401 - pytest fixture

from myna.server.cache import (
    CacheError,
    EmbeddedCache,
    RedisCache,
    make_result_cache,
    result_key,
)


@pytest.fixture(params=["embedded", "redis"])
def cache(request):
    """A fresh cache of each kind (Redis: the database is flushed first)."""
    if request.param == "embedded":
        yield make_result_cache(None, max_bytes=1 << 20)
        return
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    result = make_result_cache(url)
    assert isinstance(result, RedisCache)
    yield result
    result.close()


def _voice() -> str:
    return uuid.uuid4().hex


def test_result_key_is_stable_and_sensitive():
    voice = _voice()
    params = {"speed": 1.0, "top_k": 15, "format": "wav"}
    key = result_key(voice, 1, "hello", params)
    assert key == result_key(voice, 1, "hello", dict(reversed(params.items())))
    assert key.startswith(voice + ":") and len(key) == len(voice) + 1 + 64
    others = {
        result_key(voice, 2, "hello", params),
        result_key(voice, 1, "hello!", params),
        result_key(voice, 1, "hello", {**params, "top_k": 16}),
        result_key(_voice(), 1, "hello", params),
    }
    assert key not in others and len(others) == 4
    # A fixed document hashes to a fixed key across runs and machines.
    assert result_key("v", 3, "你好", {"a": [1, 2]}) == result_key("v", 3, "你好", {"a": (1, 2)})
    with pytest.raises(TypeError):
        result_key(voice, 1, "x", {"bad": object()})


def test_get_put_and_stats(cache):
    voice = _voice()
    key = result_key(voice, 1, "hello", {})
    assert cache.get(key) is None
    cache.put(key, b"RIFF-audio", voice_id=voice)
    assert cache.get(key) == b"RIFF-audio"
    cache.put(key, b"replaced")
    assert cache.get(key) == b"replaced"
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (2, 1, 1)


def test_delete_voice_drops_only_that_voice(cache):
    alice, bob = _voice(), _voice()
    for i in range(3):
        cache.put(result_key(alice, 1, f"text {i}", {}), b"a" * 10, voice_id=alice)
    cache.put(result_key(alice, 2, "inferred voice", {}), b"a")  # voice taken from the key
    cache.put("free-form-key", b"a", voice_id=alice)  # voice given explicitly
    bob_key = result_key(bob, 1, "text 0", {})
    cache.put(bob_key, b"b", voice_id=bob)
    assert cache.delete_voice(alice) == 5
    assert cache.get(result_key(alice, 1, "text 0", {})) is None
    assert cache.get("free-form-key") is None
    assert cache.get(bob_key) == b"b"
    assert cache.stats()["entries"] == 1
    assert cache.delete_voice(alice) == 0
    assert cache.delete_voice(_voice()) == 0


def test_concurrent_puts_and_gets(cache):
    voice = _voice()
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                key = result_key(voice, 1, f"{worker}-{i}", {})
                cache.put(key, f"{worker}-{i}".encode(), voice_id=voice)
                assert cache.get(key) == f"{worker}-{i}".encode()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert cache.stats()["entries"] == 200
    assert cache.delete_voice(voice) == 200
    assert cache.stats()["entries"] == 0


def test_embedded_lru_evicts_by_bytes():
    cache = EmbeddedCache(max_bytes=100)
    voice = _voice()
    keys = [result_key(voice, 1, str(i), {}) for i in range(4)]
    for key in keys[:3]:
        cache.put(key, b"x" * 30, voice_id=voice)
    assert cache.get(keys[0]) is not None  # keys[0] is now the most recently used
    cache.put(keys[3], b"y" * 30, voice_id=voice)  # 120 bytes > 100: evict the least recent (keys[1])
    assert cache.get(keys[1]) is None
    assert all(cache.get(k) is not None for k in (keys[0], keys[2], keys[3]))
    stats = cache.stats()
    assert (stats["entries"], stats["bytes"], stats["evictions"]) == (3, 90, 1)
    cache.put(keys[2], b"z" * 70)  # a bigger replacement evicts the least recent (keys[0])
    assert cache.get(keys[0]) is None and cache.get(keys[2]) == b"z" * 70 and cache.get(keys[3]) is not None
    assert (cache.stats()["bytes"], cache.stats()["entries"]) == (100, 2)
    huge = result_key(voice, 1, "huge", {})
    cache.put(huge, b"h" * 101)  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(huge) is None and cache.stats()["entries"] == 2
    assert cache.delete_voice(voice) == 2
    assert (cache.stats()["entries"], cache.stats()["bytes"]) == (0, 0)


def test_redis_ttl_and_namespacing(redis_url):  # noqa: F811 - fixture
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    cache = RedisCache(redis_url, ttl_seconds=100)
    voice = _voice()
    key = result_key(voice, 1, "hi", {})
    cache.put(key, b"v")
    names = {name.decode() for name in client.keys("*")}
    assert names == {f"myna:result:{key}", f"myna:result-voice:{voice}"}
    assert f"myna:result:{key}".startswith(f"myna:result:{voice}:")
    assert 0 < client.ttl(f"myna:result:{key}") <= 100
    client.delete(f"myna:result-voice:{voice}")  # index lost: the prefix scan still finds the entry
    assert cache.delete_voice(voice) == 1 and client.dbsize() == 0
    cache.close()


def test_redis_unreachable():
    with pytest.raises(CacheError, match="Redis"):
        make_result_cache("redis://127.0.0.1:1/0")
