"""The app factory: settings -> a FastAPI app owning its workers, voice registry, result cache and metrics.

Everything lives on one `Service` object in `app.state` (no module globals), so two apps in one
process share nothing. Routers stay thin: parse, check auth, call the service, answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from myna.config import Settings
from myna.engine.synthesizer import Synthesizer
from myna.errors import InputError
from myna.server import errors
from myna.server.auth import KeyStore
from myna.server.cache import make_result_cache, result_key
from myna.server.metrics import Metrics
from myna.server.worker import WorkerPool
from myna.voices.crypto import read_key
from myna.voices.registry import VoiceRegistry

log = logging.getLogger("myna.server")


def synthesizer_factory(settings: Settings) -> Callable[[], Synthesizer]:
    """A function that loads the models the settings name (called once per worker, and on reload)."""
    from myna.engine.loading import ModelPaths, load_synthesizer

    if settings.model_dir is not None:
        paths = ModelPaths.from_model_dir(settings.model_dir, settings.model_version)
    elif settings.gpt and settings.sovits and settings.hubert:
        paths = ModelPaths(settings.gpt, settings.sovits, settings.hubert, settings.bert, settings.sv)
    else:
        raise InputError("no models configured: set --model-dir (MYNA_MODEL_DIR) or --gpt, --sovits and --hubert")
    return lambda: load_synthesizer(paths, settings.device, settings.precision, settings.cpu_kernels)


class Service:
    """What the routes work with: settings, workers, registry, cache, keys, metrics."""

    def __init__(self, settings: Settings, factory: Callable[[], Synthesizer] | None = None):
        self.settings = settings
        self._factory = factory
        self.pool = WorkerPool(factory or synthesizer_factory(settings), settings.workers, settings.queue_size,
                               settings.batch_size)
        self.auth = KeyStore.load(settings.api_keys_file, settings.admin_key)
        key = read_key(settings.voice_key_file) if settings.voice_key_file else None
        self.registry = VoiceRegistry(settings.data_dir / "voices", key=key)
        self.cache = make_result_cache(settings.redis_url, max(settings.result_cache_bytes, 1))
        self.caching = settings.result_cache_bytes > 0 or bool(settings.redis_url)
        self.metrics = Metrics(lambda: self.pool.depth, lambda: self.pool.busy, self.cache.stats)
        self.stopping = False
        self.registry.on_delete(self._forget_voice)

    def _forget_voice(self, voice_id: str) -> None:
        """Drop every trace of a deleted (or changed) voice outside the registry: prompts and results."""
        for synth in self.pool.synthesizers():
            synth.forget(voice_id)
        removed = self.cache.delete_voice(voice_id)
        log.info(json.dumps({"event": "voice_forgotten", "voice": voice_id, "cached_results_removed": removed}))

    @property
    def sampling_rate(self) -> int:
        """The output rate of the loaded models."""
        synths = self.pool.synthesizers()
        return synths[0].sampling_rate if synths else 32000

    def result_key(self, voice_id: str, version: int, text: str, params: dict) -> str | None:
        """The result-cache key of a repeatable request (None when caching is off)."""
        return result_key(voice_id, version, text, params) if self.caching else None

    def reload(self) -> None:
        """Load the configured models again; workers switch between requests."""
        self.pool.reload(self._factory or synthesizer_factory(self.settings))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{"):
            payload = json.loads(message)
        else:
            payload = {"message": message}
        payload = {"time": round(record.created, 3), "level": record.levelname.lower(), **payload}
        if record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging() -> None:
    """One JSON object per line on stderr for myna's server logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


class _Limits:
    """ASGI middleware: reject bodies over the size limit (413) and log + count every request."""

    def __init__(self, app, service_of: Callable[[], Service]):
        self.app = app
        self.service_of = service_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service = self.service_of()
        path = scope["path"]
        limit = service.settings.max_upload_bytes if path.startswith("/v1/voices") else service.settings.max_body_bytes
        limit += 64 * 1024  # room for multipart framing and form fields
        declared = dict(scope.get("headers") or []).get(b"content-length")
        started, status, request_id = time.monotonic(), [500], uuid.uuid4().hex[:12]
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = errors.error_response(413, f"the request body is larger than {limit} bytes", "body_too_large")
            await response(scope, receive, send)
            status[0] = 413
        else:
            seen = [0]

            async def counted_receive():
                message = await receive()
                if message["type"] == "http.request":
                    seen[0] += len(message.get("body", b""))
                    if seen[0] > limit:
                        raise errors.ApiError(413, f"the request body is larger than {limit} bytes", "body_too_large")
                return message

            async def tracked_send(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            await self.app(scope, counted_receive, tracked_send)
        route = path if path in _ROUTES else ("/v1/voices/{id}" if path.startswith("/v1/voices/") else "other")
        elapsed = time.monotonic() - started
        service.metrics.requests.labels(route, str(status[0])).inc()
        if route not in ("/tts", "/v1/audio/speech"):  # streamed routes observe their own end time
            service.metrics.latency.labels(route).observe(elapsed)
        log.info(json.dumps({"event": "request", "id": request_id, "method": scope.get("method"), "path": path,
                             "status": status[0], "seconds": round(elapsed, 4)}))


_ROUTES = {"/tts", "/v1/audio/speech", "/v1/models", "/v1/voices", "/health", "/ready", "/metrics", "/admin/reload"}


def create_app(settings: Settings, factory: Callable[[], Synthesizer] | None = None) -> FastAPI:
    """The myna HTTP app; models load at startup (before /ready turns 200)."""
    from myna.server import routes_openai, routes_ops, routes_tts, routes_voices

    service = Service(settings, factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.pool.start)
        log.info(json.dumps({"event": "ready", "workers": settings.workers, "batch_size": settings.batch_size,
                             "queue_size": settings.queue_size}))
        try:
            yield
        finally:
            service.stopping = True
            await asyncio.to_thread(service.pool.shutdown, settings.request_timeout)
            service.registry.close()
            log.info(json.dumps({"event": "stopped"}))

    app = FastAPI(title="myna", version="0.1.0", lifespan=lifespan,
                  description="Few-shot voice-cloning TTS: upstream GPT-SoVITS api_v2 compatible /tts, "
                              "OpenAI-compatible /v1/audio/speech, voice registry.")
    app.state.service = service
    errors.install(app)
    for module in (routes_tts, routes_openai, routes_voices, routes_ops):
        app.include_router(module.router)
    app.add_middleware(_Limits, service_of=lambda: service)
    return app
