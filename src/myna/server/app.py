"""The app factory: settings -> a FastAPI app owning its workers, voice registry, result cache and metrics.

Everything lives on one `Service` object in `app.state` (no module globals), so two apps in one
process share nothing. Routers stay thin: parse, check auth, call the service, answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from myna.config import Settings
from myna.engine.synthesizer import Synthesizer
from myna.errors import InputError, MynaError
from myna.server import errors
from myna.server.auth import KeyStore
from myna.server.cache import make_result_cache, result_key
from myna.server.errors import ApiError
from myna.server.gate import RequestGate
from myna.server.metrics import Metrics
from myna.server.worker import ReloadError, WorkerPool
from myna.voices.crypto import read_key
from myna.voices.registry import UnknownVoiceError, VoiceRegistry, make_private_dir
from myna.voices.store import VoiceStorageError

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
        try:
            make_private_dir(settings.data_dir)  # personal data below: only the server's user may enter
        except OSError as exc:
            raise VoiceStorageError(f"cannot create the data folder {settings.data_dir}: {exc}") from exc
        self.registry = VoiceRegistry(settings.data_dir / "voices", key=key)
        self.cache = make_result_cache(settings.redis_url, max(settings.result_cache_bytes, 1))
        self.caching = settings.result_cache_bytes > 0 or bool(settings.redis_url)
        self.metrics = Metrics(lambda: self.pool.depth, lambda: self.pool.busy, self.cache.stats)
        self.stopping = False
        self.reload_error: str | None = None  # why the last reload failed (None: it worked, or none was asked)
        model_files = (settings.model_dir, settings.gpt, settings.sovits, settings.hubert, settings.bert, settings.sv)
        self.private_roots = errors.private_roots(
            [settings.data_dir, *settings.ref_dirs, *(p if p is None or p.is_dir() else p.parent for p in model_files)]
        )
        self.registry.on_delete(self._forget_voice)

    def delete_voice(self, voice_id: str) -> None:
        """Erase a voice everywhere; refused (nothing erased) while the result cache cannot be reached."""
        self.cache.check()
        try:
            self.registry.delete(voice_id)
        except UnknownVoiceError:
            if self.registry.is_voice_id(voice_id):
                self._forget_voice(voice_id)  # a retried erasure drops what a failed one left in the caches
            raise

    def store_result(self, key: str, body: bytes, voice_id: str | None) -> None:
        """Cache a result, unless its voice is gone; a voice erased while storing takes the entry with it."""
        if voice_id is None:
            self.cache.put(key, body)
            return
        if not self.registry.exists(voice_id):
            return
        self.cache.put(key, body, voice_id)
        if not self.registry.exists(voice_id):  # erased between the check and the put (here or in another process)
            self.cache.discard(key)

    def _forget_voice(self, voice_id: str) -> None:
        """Drop every trace of a deleted (or changed) voice outside the registry: jobs, prompts and results."""
        stopped = 0
        if not self.registry.exists(voice_id):  # deleted, not changed: its requests stop now
            stopped = self.pool.cancel_voice(voice_id, ApiError(
                404, f"voice {voice_id} was deleted while this request was in flight", "voice_deleted"))
        for synth in self.pool.synthesizers():
            synth.forget(voice_id)
        removed = self.cache.delete_voice(voice_id)
        log.info(json.dumps({"event": "voice_forgotten", "voice": voice_id, "requests_stopped": stopped,
                             "cached_results_removed": removed}))

    @property
    def sampling_rate(self) -> int:
        """The output rate of the loaded models."""
        synths = self.pool.synthesizers()
        return synths[0].sampling_rate if synths else 32000

    def result_key(self, voice_id: str, version: int, text: str, params: dict) -> str | None:
        """The result-cache key of a repeatable request (None when caching is off)."""
        return result_key(voice_id, version, text, params) if self.caching else None

    def reload(self) -> None:
        """Load the configured models again, then switch to them at once; on failure the old ones keep serving."""
        try:
            factory = self._factory or synthesizer_factory(self.settings)
        except MynaError as exc:
            raise ReloadError(f"the models could not be loaded ({exc}); the models loaded before keep serving") from exc
        try:
            self.pool.reload(factory)
        except ReloadError as exc:
            self.reload_error = str(exc)
            raise
        self.reload_error = None


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        try:
            payload = json.loads(message) if message.startswith("{") else {"message": message}
        except ValueError:
            payload = {"message": message}
        payload = {"time": round(record.created, 3), "level": record.levelname.lower(), **payload}
        if record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging() -> None:
    """One JSON object per line on stderr for myna's server logger and uvicorn's (tracebacks become a field)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    for name, level in (("myna.server", logging.INFO), ("uvicorn", logging.WARNING), ("uvicorn.error", logging.WARNING),
                        ("uvicorn.access", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def server_options(settings: Settings) -> dict:
    """uvicorn's options for this app: its logging left to `configure_logging`, a graceful stop after the timeout."""
    return {"host": settings.host, "port": settings.port, "log_config": None, "log_level": "warning",
            "timeout_graceful_shutdown": int(settings.request_timeout) + 5}


def create_app(settings: Settings, factory: Callable[[], Synthesizer] | None = None) -> FastAPI:
    """The myna HTTP app; models load at startup (before /ready turns 200)."""
    from myna.server import routes_finetune, routes_openai, routes_ops, routes_tts, routes_voices
    from myna.server.jobs import JobRunner
    from myna.server.ui import routes as routes_ui

    service = Service(settings, factory)
    jobs = JobRunner(settings.data_dir, settings.home, settings.model_dir, settings.model_version or "v2")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.pool.start)
        jobs.open()
        log.info(json.dumps({"event": "ready", "workers": settings.workers, "batch_size": settings.batch_size,
                             "queue_size": settings.queue_size}))
        try:
            yield
        finally:
            service.stopping = True
            await asyncio.gather(asyncio.to_thread(service.pool.shutdown, settings.request_timeout),
                                 asyncio.to_thread(jobs.shutdown))
            service.registry.close()
            log.info(json.dumps({"event": "stopped"}))

    app = FastAPI(title="myna", version="0.1.0", lifespan=lifespan,
                  description="Few-shot voice-cloning TTS: upstream GPT-SoVITS api_v2 compatible /tts, "
                              "OpenAI-compatible /v1/audio/speech, voice registry.")
    app.state.service = service
    app.state.jobs = jobs
    errors.install(app)
    for module in (routes_tts, routes_openai, routes_voices, routes_ops, routes_finetune, routes_ui):
        app.include_router(module.router)
    app.add_middleware(RequestGate, service_of=lambda: service)
    return app
