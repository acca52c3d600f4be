"""The app factory: settings -> a FastAPI app owning its workers, voice registry, consent checker, audit log,
result cache and metrics.

Everything lives on one `Service` object in `app.state` (no module globals), so two apps in one
process share nothing. Routers stay thin: parse, check auth, call the service, answer. Voices are
registered, changed and erased through myna.engine.consent under MYNA_CONSENT_MODE, each change
logged in the audit trail (myna.audit) with the start of the service and every reload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from myna.audit import AuditError, AuditLog
from myna.config import Settings
from myna.engine import consent
from myna.engine.synthesizer import Synthesizer
from myna.errors import InputError, MynaError
from myna.server import errors
from myna.server.auth import KeyStore
from myna.server.cache import make_result_cache, result_key
from myna.server.errors import ApiError
from myna.server.gate import RequestGate
from myna.server.metrics import Metrics
from myna.server.worker import ReloadError, WorkerPool
from myna.voices.registry import (
    ErasureIncomplete,
    UnknownVoiceError,
    VoiceRecord,
    VoiceRegistry,
    make_private_dir,
)
from myna.voices.registry_references import DuplicateReferenceError, ReferenceRecord, RegistryReferences
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
    check_model_keys([paths.gpt, paths.sovits, paths.sv], settings)
    return lambda: load_synthesizer(paths, settings.device, settings.precision, settings.cpu_kernels,
                                    watermark=settings.watermark)


def check_model_keys(files: list, settings: Settings) -> None:
    """Refuse encrypted model files the configured model key cannot open, before anything loads (ModelKeyError).

    Only the headers are read here; the files are decrypted in memory when the workers load them.
    """
    from myna.weights.sealed import ModelKeyError, is_sealed, key_id, key_id_of

    sealed = [path for path in files if path is not None and is_sealed(path)]
    if not sealed:
        return
    key = settings.model_key_bytes()
    if key is None:
        raise ModelKeyError(f"{sealed[0]}: the model file is encrypted; give its key with MYNA_MODEL_KEY_FILE (a key "
                            "file) or MYNA_MODEL_KEY (64 hex digits)")
    for path in sealed:
        if key_id_of(path) != key_id(key).hex():
            raise ModelKeyError(f"{path}: encrypted with another key (key id {key_id_of(path)}, the configured key "
                                f"has id {key_id(key).hex()}); give the key it was encrypted with")


class Service:
    """What the routes work with: settings, workers, registry, consent checker, audit log, cache, keys, metrics."""

    def __init__(self, settings: Settings, factory: Callable[[], Synthesizer] | None = None):
        self.settings = settings
        self._factory = factory
        self.pool = WorkerPool(factory or synthesizer_factory(settings), settings.workers, settings.queue_size,
                               settings.batch_size)
        self.auth = KeyStore.load(settings.api_keys_file, settings.admin_key)
        try:
            make_private_dir(settings.data_dir)  # personal data below: only the server's user may enter
        except OSError as exc:
            raise VoiceStorageError(f"cannot create the data folder {settings.data_dir}: {exc}") from exc
        # Clips are sealed by default when a voice or model key is configured (MYNA_ENCRYPT_VOICES=auto).
        voice_key = settings.voice_key_bytes()
        self.registry = VoiceRegistry(settings.data_dir / "voices", key=voice_key)
        self.voices_encrypted = voice_key is not None
        self.references = RegistryReferences(self.registry)  # emotion references, erased with their voice
        # Personal fields in the log are sealed with the voice key too, so they are no more readable there.
        self.audit = AuditLog(settings.audit_path, settings.audit_key_bytes(), personal_key=voice_key)
        self.consent = consent.consent_checker(settings)  # Whisper loads on the first check
        self._consent_lock = threading.Lock()  # one check at a time: each runs Whisper and a speaker encoder
        self.cache = make_result_cache(settings.redis_url, max(settings.result_cache_bytes, 1))
        self.caching = settings.result_cache_bytes > 0 or bool(settings.redis_url)
        self.metrics = Metrics(lambda: self.pool.depth, lambda: self.pool.busy, self.cache.stats)
        self.stopping = False
        self.reload_error: str | None = None  # why the last reload failed (None: it worked, or none was asked)
        model_files = (settings.model_dir, settings.gpt, settings.sovits, settings.hubert, settings.bert, settings.sv,
                       settings.protected_voices, settings.consent_asr_model)
        self.private_roots = errors.private_roots(
            [settings.data_dir, settings.audit_path.parent, *settings.ref_dirs,
             *(p if p is None or p.is_dir() else p.parent for p in model_files)]
        )
        self.registry.on_delete(self._forget_voice)
        self.audit.append("admin.start", data=self._configuration())

    def _configuration(self) -> dict:
        """What the `admin.start` record says: consent mode, watermark, keys (a changed key set shows as a new
        `keys_sha256`), and whether clips and the audit chain are keyed."""
        digests = "\n".join(sorted(entry.digest for entry in self.auth.entries))
        return {"consent_mode": self.settings.consent_mode, "watermark": self.settings.watermark,
                "keys": [{"name": e.name, "scopes": sorted(e.scopes)} for e in self.auth.entries],
                "keys_sha256": hashlib.sha256(digests.encode()).hexdigest(),
                "voices_encrypted": self.voices_encrypted, "audit_keyed": self.audit.key is not None}

    def register_voice(self, **fields) -> VoiceRecord:
        """Register a voice under the consent mode (myna.engine.consent.register_voice) and log `voice.create`.

        A voice whose creation could not be logged is removed again (AuditError): no voice without its record.
        """
        with self._consent_lock:
            try:
                record, _ = consent.register_voice(self.registry, self.consent, self.audit,
                                                   mode=self.settings.consent_mode, **fields)
            except AuditError:
                try:
                    self.registry.delete(self.registry.find(fields["name"]).id)  # names are unique: it is the new one
                except UnknownVoiceError:
                    pass
                raise
        return record

    def update_voice(self, voice_id: str, **fields) -> VoiceRecord:
        """Change a voice's clip or text (a new clip needs the same consent proof as a new voice); logs `voice.update`."""
        self.registry.get(voice_id)  # an unknown voice is refused before a consent challenge is spent on it
        with self._consent_lock:
            return consent.update_voice(self.registry, self.consent, self.audit, voice_id,
                                        mode=self.settings.consent_mode, **fields)

    def add_reference(self, voice_id: str, **fields) -> ReferenceRecord:
        """Add an emotion reference under the proof a new clip of the voice needs (myna.engine.consent.add_reference),
        logged as `voice.reference.add`; a label the voice has is refused before a consent challenge is spent on it."""
        from myna.text.emotion_markup import check_label

        label = check_label(fields["emotion"])
        if not fields.get("replace") and any(r.emotion == label for r in self.references.list(voice_id)):
            raise DuplicateReferenceError(f"voice {voice_id} already has a {label!r} reference; delete it first "
                                          f"(DELETE /v1/voices/{voice_id}/references/{label}) or send replace=true")
        with self._consent_lock:
            try:
                return consent.add_reference(self.references, self.consent, self.audit, voice_id,
                                             mode=self.settings.consent_mode, **fields)
            except AuditError:
                for record in self.references.list(voice_id):  # no reference without its record
                    if record.emotion == label:
                        self.references.remove(voice_id, record.id)
                raise

    def remove_reference(self, voice_id: str, key: str, actor: str | None = None) -> ReferenceRecord:
        """Erase an emotion reference (id or label), logged as `voice.reference.remove`, with the prompts and cached
        results made from it; refused (nothing erased) while the result cache cannot be reached."""
        self.cache.check()
        record = consent.remove_reference(self.references, self.audit, voice_id, key, actor)
        for synth in self.pool.synthesizers():
            synth.forget(record.id)  # its clip's path holds the reference id
        self.cache.delete_voice(voice_id)  # results spoken with it go too (keys name the references they used)
        return record

    def delete_voice(self, voice_id: str, actor: str | None = None) -> None:
        """Erase a voice everywhere, its personal fields in the audit log included; refused (nothing erased) while
        the result cache cannot be reached. Sent again, it finishes what a failed erasure left behind."""
        self.cache.check()
        try:
            consent.delete_voice(self.registry, self.audit, voice_id, actor)
        except UnknownVoiceError:
            if self.registry.is_voice_id(voice_id):
                self._forget_voice(voice_id)  # a retried erasure drops what a failed one left in the caches
                self._erase_audit(voice_id, actor)  # ... and in the audit log
            raise
        except AuditError as exc:
            raise ErasureIncomplete(f"voice {voice_id} is erased, but the audit log could not be updated ({exc}); "
                                    "send the DELETE again") from exc

    def _erase_audit(self, voice_id: str, actor: str | None) -> None:
        """Remove a deleted voice's personal fields from the audit log, if any are left."""
        if any(r.voice == voice_id and r.personal is not None for r in self.audit.records()):
            self.audit.erase(voice_id, actor=actor)

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

    def reload(self, actor: str | None = None) -> None:
        """Load the configured models again, then switch to them at once; on failure the old ones keep serving.
        Either way an `admin.reload` record says what happened."""
        try:
            try:
                factory = self._factory or synthesizer_factory(self.settings)
            except MynaError as exc:
                raise ReloadError(f"the models could not be loaded ({exc}); the models loaded before keep serving") from exc
            self.pool.reload(factory)
        except ReloadError as exc:
            self.reload_error = str(exc)
            self.audit.append("admin.reload", actor=actor, data={"ok": False, "generation": self.pool.generation,
                                                                 "error": errors.public_message(str(exc), self.private_roots)})
            raise
        self.reload_error = None
        self.audit.append("admin.reload", actor=actor, data={"ok": True, "generation": self.pool.generation})


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


class _StderrHandler(logging.StreamHandler):
    """A stream handler writing to whatever `sys.stderr` is when a record comes, not to the stream it was when the
    handler was made (which whoever swapped it may have closed since)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging() -> None:
    """One JSON object per line on stderr for myna's server logger and uvicorn's (tracebacks become a field)."""
    handler = _StderrHandler()
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
    from myna.server import (
        routes_finetune,
        routes_openai,
        routes_ops,
        routes_references,
        routes_tts,
        routes_voices,
    )
    from myna.server.jobs import JobRunner
    from myna.server.routes_watermark import router as watermark_routes
    from myna.server.ui import routes as routes_ui

    service = Service(settings, factory)
    jobs = JobRunner(settings.data_dir, settings.home, settings.model_dir, settings.model_version or "v2",
                     model_key=settings.model_key_bytes())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from myna.text.en.normalize import prepare as prepare_english_numbers

        await asyncio.to_thread(prepare_english_numbers)  # before any worker thread runs (see its doc)
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
            service.references.close()
            service.registry.close()
            log.info(json.dumps({"event": "stopped"}))

    app = FastAPI(title="myna", version="0.1.0", lifespan=lifespan,
                  description="Few-shot voice-cloning TTS: upstream GPT-SoVITS api_v2 compatible /tts, "
                              "OpenAI-compatible /v1/audio/speech, voice registry.")
    app.state.service = service
    app.state.jobs = jobs
    errors.install(app)
    for module in (routes_tts, routes_openai, routes_voices, routes_references, routes_ops, routes_finetune, routes_ui):
        app.include_router(module.router)
    app.include_router(watermark_routes)
    app.add_middleware(RequestGate, service_of=lambda: service)
    return app
