"""Typed settings. Every MYNA_* environment variable is listed here once; nothing else reads os.environ.

    MYNA_HOST, MYNA_PORT                 where `myna serve` listens (127.0.0.1:9880)
    MYNA_DATA_DIR                        voices, consent records, caches (~/.local/share/myna)
    MYNA_HOME                            downloads: `myna models pull` keeps released models in MYNA_HOME/models (~/.cache/myna)
    MYNA_MODEL                           a pulled version (v1, v2, v2Pro, v2ProPlus) for say/serve/train/load_model
    MYNA_MODELSCOPE_ENDPOINT             where `myna models pull --source modelscope` downloads from (https://www.modelscope.cn)
    MYNA_MODEL_DIR, MYNA_MODEL_VERSION   a directory laid out like upstream's pretrained_models
    MYNA_GPT, MYNA_SOVITS, MYNA_HUBERT, MYNA_BERT, MYNA_SV   or the model files one by one
    MYNA_DEVICE                          torch device (cpu)
    MYNA_DEFAULT_VOICE                   folder of the voice `myna say` uses when given no model (the bundled one)
    MYNA_MODEL_KEY_FILE, MYNA_MODEL_KEY  key of encrypted model files: a file of 64 hex digits, or the digits themselves
    MYNA_PRECISION                       GPT decoding: auto (int8 on CPU, bf16 on CUDA), fp32 (exact), bf16, int8, fp16
    MYNA_CPU_KERNELS                     1/0: the fast precisions' CPU attention kernel, compiled on first use (1)
    MYNA_WATERMARK                       1/0: mark every clip made with the inaudible watermark (1); only
                                         the operator turns it off, no request can (myna.audio.watermark)
    MYNA_REF_DIRS                        folders /tts may read reference clips from (os.pathsep-separated)
    MYNA_API_KEYS_FILE                   hashed API keys, one per line: "sha256:<hex> <scope>[,<scope>] [name]"
    MYNA_ADMIN_KEY                       one admin key given in clear (hashed on read, never stored)
    MYNA_CONSENT_MODE                    how a new voice's consent is proven: captcha (a recording of a challenge
                                         sentence, checked by speech recognition and speaker verification) or
                                         record (a typed consent record, as before) (captcha)
    MYNA_CONSENT_TTL                     seconds a consent challenge stays valid (300)
    MYNA_CONSENT_MAX_ERROR               largest word (zh/ja: character) error rate of a consent recording (0.25)
    MYNA_CONSENT_ASR_MODEL               local multilingual faster-whisper model folder for zh/ja consent checks
    MYNA_SPEAKER_THRESHOLD               same-speaker similarity threshold (default: the calibrated one per encoder)
    MYNA_PROTECTED_VOICES                folder of protected speakers' clips (.wav/.flac) or embeddings (.npy)
    MYNA_AUDIT_LOG                       the audit log, JSON lines (MYNA_DATA_DIR/audit/audit.jsonl)
    MYNA_AUDIT_KEY_FILE                  key (64 hex digits) that makes the audit chain an HMAC chain
    MYNA_ENCRYPT_VOICES                  auto (encrypt stored clips when a voice or model key is set), on, off (auto)
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

(scripts/setup.sh reads MYNA_TORCH and MYNA_TORCH_INDEX while installing; myna itself never does.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from myna.errors import InputError

# The one list of each kind of precision: settings, command-line flags, the engine and the trainers read these.
PRECISIONS = ("auto", "fp32", "bf16", "int8", "fp16")  # GPT decoding, see myna.engine.precision
TRAIN_PRECISIONS = ("fp32", "bf16")  # forward passes while training, see myna.train.config


@dataclass(frozen=True)
class Settings:
    """Server and runtime settings; build with `Settings.from_env()` and override with `with_overrides`."""

    host: str = "127.0.0.1"
    port: int = 9880
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "myna")
    home: Path = field(default_factory=lambda: Path.home() / ".cache" / "myna")
    model: str | None = None
    modelscope_endpoint: str = "https://www.modelscope.cn"
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
    model_key_file: Path | None = None
    model_key: str | None = None
    consent_mode: str = "captcha"
    consent_ttl: float = 300.0
    consent_max_error: float = 0.25
    consent_asr_model: Path | None = None
    speaker_threshold: float | None = None
    protected_voices: Path | None = None
    audit_log: Path | None = None
    audit_key_file: Path | None = None
    encrypt_voices: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535, f"port must be 1-65535, got {self.port}"),
            (1 <= self.workers <= 64, f"workers must be 1-64, got {self.workers}"),
            (self.precision in PRECISIONS,
             f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (1 <= self.batch_size <= 64, f"batch_size must be 1-64, got {self.batch_size}"),
            (0 <= self.stream_chunk_tokens <= 500,
             f"stream_chunk_tokens must be 0-500, got {self.stream_chunk_tokens}"),
            (1 <= self.queue_size <= 100_000, f"queue_size must be 1-100000, got {self.queue_size}"),
            (self.request_timeout > 0, f"request_timeout must be > 0 seconds, got {self.request_timeout}"),
            (self.max_text_chars >= 1, f"max_text_chars must be >= 1, got {self.max_text_chars}"),
            (self.max_upload_bytes >= 1024, f"max_upload_bytes must be >= 1024, got {self.max_upload_bytes}"),
            (self.max_body_bytes >= 1024, f"max_body_bytes must be >= 1024, got {self.max_body_bytes}"),
            (self.result_cache_bytes >= 0, f"result_cache_bytes must be >= 0, got {self.result_cache_bytes}"),
            (self.consent_mode in ("captcha", "record"), f"consent_mode must be captcha or record, got {self.consent_mode!r}"),
            (10 <= self.consent_ttl <= 86400, f"consent_ttl must be 10-86400 seconds, got {self.consent_ttl}"),
            (0 <= self.consent_max_error < 1, f"consent_max_error must be in [0, 1), got {self.consent_max_error}"),
            (self.speaker_threshold is None or -1 <= self.speaker_threshold <= 1,
             f"speaker_threshold must be a cosine similarity in [-1, 1], got {self.speaker_threshold}"),
            (self.encrypt_voices in ("auto", "on", "off"), f"encrypt_voices must be auto, on or off, got {self.encrypt_voices!r}"),
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

    @property
    def models_dir(self) -> Path:
        """Where `myna models pull` puts released models: MYNA_HOME/models."""
        return self.home / "models"

    @property
    def audit_path(self) -> Path:
        """The audit log: MYNA_AUDIT_LOG, else MYNA_DATA_DIR/audit/audit.jsonl."""
        return self.audit_log if self.audit_log is not None else self.data_dir / "audit" / "audit.jsonl"

    def model_key_bytes(self) -> bytes | None:
        """The key of encrypted model files (MYNA_MODEL_KEY_FILE, else MYNA_MODEL_KEY), or None."""
        from myna.weights.sealed import parse_key, read_key_file

        if self.model_key_file is not None:
            return read_key_file(self.model_key_file)
        if self.model_key:
            return parse_key(self.model_key, "MYNA_MODEL_KEY")
        return None

    def audit_key_bytes(self) -> bytes | None:
        """The audit chain's HMAC key (MYNA_AUDIT_KEY_FILE), or None for a plain SHA-256 chain."""
        from myna.weights.sealed import read_key_file

        return read_key_file(self.audit_key_file) if self.audit_key_file is not None else None

    def voice_key_bytes(self) -> bytes | None:
        """The key stored voice clips are sealed with, or None: by MYNA_ENCRYPT_VOICES, the voice key file,
        else (auto/on) the model key. `on` without any key is an error, so clips are never silently stored in clear."""
        from myna.weights.sealed import ModelKeyError, read_key_file

        if self.encrypt_voices == "off":
            return None
        key = read_key_file(self.voice_key_file) if self.voice_key_file is not None else self.model_key_bytes()
        if key is None and self.encrypt_voices == "on":
            raise ModelKeyError("MYNA_ENCRYPT_VOICES=on needs a key: set MYNA_VOICE_KEY_FILE or MYNA_MODEL_KEY_FILE")
        return key

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the non-None `changes` applied (command-line flags over the environment)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_INTS = {"port", "workers", "batch_size", "stream_chunk_tokens", "queue_size", "max_text_chars", "max_upload_bytes", "max_body_bytes", "result_cache_bytes"}
_FLOATS = {"request_timeout", "consent_ttl", "consent_max_error", "speaker_threshold"}
_BOOLS = {"cpu_kernels", "watermark"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_PATHS = {"data_dir", "home", "model_dir", "gpt", "sovits", "hubert", "bert", "sv", "default_voice", "api_keys_file",
          "voice_key_file", "model_key_file", "consent_asr_model", "protected_voices", "audit_log", "audit_key_file"}


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


def child_environment(values: Mapping[str, str], drop: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment with `values` set and the `drop` names removed, for a child process."""
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env.update(values)
    return env
