"""Typed settings. Every MYNA_* environment variable is listed here once; nothing else reads os.environ.

    MYNA_HOST, MYNA_PORT                 where `myna serve` listens (127.0.0.1:9880)
    MYNA_DATA_DIR                        voices, consent records, caches (~/.local/share/myna)
    MYNA_MODEL_DIR, MYNA_MODEL_VERSION   a directory laid out like upstream's pretrained_models
    MYNA_GPT, MYNA_SOVITS, MYNA_HUBERT, MYNA_BERT, MYNA_SV   or the model files one by one
    MYNA_DEVICE                          torch device (cpu)
    MYNA_DEFAULT_VOICE                   folder of the voice `myna say` uses when given no model (the bundled one)
    MYNA_PRECISION                       GPT decoding: auto (int8 on CPU, bf16 on CUDA), fp32 (exact), bf16, int8, fp16
    MYNA_CPU_KERNELS                     1/0: the fast precisions' CPU attention kernel, compiled on first use (1)
    MYNA_WATERMARK                       1/0: mark every clip made with the inaudible watermark (1); only
                                         the operator turns it off, no request can (myna.audio.watermark)
    MYNA_REF_DIRS                        folders /tts may read reference clips from (os.pathsep-separated)
    MYNA_API_KEYS_FILE                   hashed API keys, one per line: "sha256:<hex> <scope>[,<scope>] [name]"
    MYNA_ADMIN_KEY                       one admin key given in clear (hashed on read, never stored)
    MYNA_WORKERS                         synthesis workers, each owning a Synthesizer (1)
    MYNA_BATCH_SIZE                      requests whose GPT decoding is batched together; 1 = unbatched (1)
    MYNA_QUEUE_SIZE                      requests that may wait for a worker before 503 (32)
    MYNA_REQUEST_TIMEOUT                 seconds a request may take, queue wait included (120)
    MYNA_MAX_TEXT_CHARS                  longest text accepted (2000)
    MYNA_MAX_UPLOAD_BYTES                largest voice upload (20 MiB)
    MYNA_MAX_BODY_BYTES                  largest JSON/form body other than uploads (1 MiB)
    MYNA_RESULT_CACHE_BYTES              embedded result cache size (256 MiB; 0 disables caching)
    MYNA_REDIS_URL                       use Redis for the result cache instead (redis://127.0.0.1:6379/0)
    MYNA_VOICE_KEY_FILE                  encrypt stored voices at rest with this 32-byte key (64 hex digits)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from myna.errors import InputError


@dataclass(frozen=True)
class Settings:
    """Server and runtime settings; build with `Settings.from_env()` and override with `with_overrides`."""

    host: str = "127.0.0.1"
    port: int = 9880
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "myna")
    model_dir: Path | None = None
    model_version: str = "v2"
    gpt: Path | None = None
    sovits: Path | None = None
    hubert: Path | None = None
    bert: Path | None = None
    sv: Path | None = None
    default_voice: Path | None = None
    device: str = "cpu"
    precision: str = "auto"
    cpu_kernels: bool = True
    watermark: bool = True
    ref_dirs: tuple[Path, ...] = ()
    api_keys_file: Path | None = None
    admin_key: str | None = None
    workers: int = 1
    batch_size: int = 1
    stream_chunk_tokens: int = 16  # streamed OpenAI/WebSocket speech: first audio after N tokens (0: per sentence)
    queue_size: int = 32
    request_timeout: float = 120.0
    max_text_chars: int = 2000
    max_upload_bytes: int = 20 * 2**20
    max_body_bytes: int = 2**20
    result_cache_bytes: int = 256 * 2**20
    redis_url: str | None = None
    voice_key_file: Path | None = None

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535, f"port must be 1-65535, got {self.port}"),
            (1 <= self.workers <= 64, f"workers must be 1-64, got {self.workers}"),
            (self.precision in ("auto", "fp32", "bf16", "int8", "fp16"),
             f"precision must be auto, fp32, bf16, int8 or fp16, got {self.precision!r}"),
            (1 <= self.batch_size <= 64, f"batch_size must be 1-64, got {self.batch_size}"),
            (0 <= self.stream_chunk_tokens <= 500,
             f"stream_chunk_tokens must be 0-500, got {self.stream_chunk_tokens}"),
            (1 <= self.queue_size <= 100_000, f"queue_size must be 1-100000, got {self.queue_size}"),
            (self.request_timeout > 0, f"request_timeout must be > 0 seconds, got {self.request_timeout}"),
            (self.max_text_chars >= 1, f"max_text_chars must be >= 1, got {self.max_text_chars}"),
            (self.max_upload_bytes >= 1024, f"max_upload_bytes must be >= 1024, got {self.max_upload_bytes}"),
            (self.max_body_bytes >= 1024, f"max_body_bytes must be >= 1024, got {self.max_body_bytes}"),
            (self.result_cache_bytes >= 0, f"result_cache_bytes must be >= 0, got {self.result_cache_bytes}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from MYNA_* variables of `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"MYNA_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw)
        return cls(**values)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the non-None `changes` applied (command-line flags over the environment)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_INTS = {"port", "workers", "batch_size", "stream_chunk_tokens", "queue_size", "max_text_chars", "max_upload_bytes", "max_body_bytes", "result_cache_bytes"}
_FLOATS = {"request_timeout"}
_BOOLS = {"cpu_kernels", "watermark"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_PATHS = {"data_dir", "model_dir", "gpt", "sovits", "hubert", "bert", "sv", "default_voice", "api_keys_file",
          "voice_key_file"}


def _parse(name: str, raw: str) -> object:
    """One environment value converted to its field's type, or an InputError naming the variable."""
    try:
        if name in _INTS:
            return int(raw)
        if name in _FLOATS:
            return float(raw)
    except ValueError:
        raise InputError(f"MYNA_{name.upper()}={raw!r} is not a number") from None
    if name in _BOOLS:
        if raw.strip().lower() not in _TRUE + _FALSE:
            raise InputError(f"MYNA_{name.upper()}={raw!r}: use 1 or 0 (or true/false, yes/no, on/off)")
        return raw.strip().lower() in _TRUE
    if name in _PATHS:
        return Path(raw).expanduser()
    if name == "ref_dirs":
        return tuple(Path(part).expanduser() for part in raw.split(os.pathsep) if part)
    return raw
