"""Settings from MYNA_* variables; config.py is the only module that reads the environment."""

import re
from pathlib import Path

import pytest

from myna.config import Settings
from myna.errors import InputError

SRC = Path(__file__).resolve().parents[1] / "src" / "myna"


def test_from_env_parses_types():
    env = {"MYNA_PORT": "9999", "MYNA_REQUEST_TIMEOUT": "2.5", "MYNA_REF_DIRS": "/a:/b", "MYNA_DATA_DIR": "/tmp/x",
           "MYNA_REDIS_URL": "redis://127.0.0.1:1/0", "MYNA_HOST": "", "UNRELATED": "1"}
    settings = Settings.from_env(env)
    assert settings.port == 9999 and settings.request_timeout == 2.5 and settings.host == "127.0.0.1"
    assert settings.ref_dirs == (Path("/a"), Path("/b")) and settings.data_dir == Path("/tmp/x")
    assert settings.redis_url == "redis://127.0.0.1:1/0"
    assert settings.with_overrides(port=1234, host=None).port == 1234


def test_bad_values_name_the_variable():
    with pytest.raises(InputError, match="MYNA_PORT"):
        Settings.from_env({"MYNA_PORT": "eighty"})
    with pytest.raises(InputError, match="workers must be"):
        Settings.from_env({"MYNA_WORKERS": "0"})


def test_only_config_reads_the_environment():
    pattern = re.compile(r"os\.environ|os\.getenv|getenv\(")
    readers = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert readers == ["config.py"]


def test_stream_chunk_tokens_setting_is_read_and_checked():
    from myna.config import Settings
    from myna.errors import InputError

    assert Settings().stream_chunk_tokens == 16
    assert Settings.from_env({"MYNA_STREAM_CHUNK_TOKENS": "0"}).stream_chunk_tokens == 0
    with pytest.raises(InputError, match="stream_chunk_tokens"):
        Settings(stream_chunk_tokens=501)


def test_models_home_and_model_are_read():
    settings = Settings.from_env({"MYNA_HOME": "~/somewhere", "MYNA_MODEL": "v2Pro",
                                  "MYNA_MODELSCOPE_ENDPOINT": "https://example.invalid"})
    assert settings.models_dir == Path("~/somewhere").expanduser() / "models"
    assert settings.model == "v2Pro" and settings.modelscope_endpoint == "https://example.invalid"
    assert Settings.from_env({}).models_dir == Path.home() / ".cache" / "myna" / "models"


def test_one_list_of_precisions_for_flags_settings_and_engine():
    from myna.cli import build_parser
    from myna.config import PRECISIONS
    from myna.engine.precision import resolve_precision

    say = build_parser()._subparsers._group_actions[0].choices["say"]
    offered = next(a for a in say._actions if a.dest == "precision").choices
    assert tuple(offered) == PRECISIONS
    for precision in PRECISIONS:
        assert Settings(precision=precision).precision == precision
        resolve_precision(precision, "cuda" if precision == "fp16" else "cpu")  # each is a mode the engine knows
    with pytest.raises(InputError, match="precision must be one of auto, fp32"):
        Settings(precision="fp8")


def test_trust_settings_are_read_and_checked(tmp_path):
    settings = Settings.from_env({"MYNA_CONSENT_MODE": "record", "MYNA_CONSENT_TTL": "120", "MYNA_SPEAKER_THRESHOLD": "0.8",
                                  "MYNA_PROTECTED_VOICES": str(tmp_path), "MYNA_DATA_DIR": str(tmp_path)})
    assert settings.consent_mode == "record" and settings.consent_ttl == 120.0 and settings.speaker_threshold == 0.8
    assert settings.protected_voices == tmp_path and settings.audit_path == tmp_path / "audit" / "audit.jsonl"
    assert Settings().consent_mode == "captcha" and Settings().consent_max_error == 0.25
    for name, value in (("MYNA_CONSENT_MODE", "none"), ("MYNA_CONSENT_TTL", "1"), ("MYNA_SPEAKER_THRESHOLD", "2"),
                        ("MYNA_ENCRYPT_VOICES", "maybe")):
        with pytest.raises(InputError):
            Settings.from_env({name: value})


def test_model_key_from_file_or_variable_and_voice_encryption_default(tmp_path):
    from myna.weights.sealed import ModelKeyError

    key = bytes(range(32))
    (tmp_path / "model.key").write_text(key.hex() + "\n")
    (tmp_path / "voice.key").write_text(bytes(32).hex())
    assert Settings().model_key_bytes() is None and Settings().voice_key_bytes() is None
    from_file = Settings.from_env({"MYNA_MODEL_KEY_FILE": str(tmp_path / "model.key")})
    assert from_file.model_key_bytes() == key
    assert Settings.from_env({"MYNA_MODEL_KEY": key.hex()}).model_key_bytes() == key
    with pytest.raises(ModelKeyError, match="MYNA_MODEL_KEY"):
        Settings.from_env({"MYNA_MODEL_KEY": "not-a-key"}).model_key_bytes()
    # stored clips are encrypted by default once a key is configured: the voice key, else the model key
    assert from_file.voice_key_bytes() == key
    both = from_file.with_overrides(voice_key_file=tmp_path / "voice.key")
    assert both.voice_key_bytes() == bytes(32)
    assert from_file.with_overrides(encrypt_voices="off").voice_key_bytes() is None
    with pytest.raises(ModelKeyError, match="needs a key"):
        Settings(encrypt_voices="on").voice_key_bytes()
