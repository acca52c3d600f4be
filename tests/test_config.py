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
