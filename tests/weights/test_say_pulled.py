"""A pulled version speaks: pull tiny real weights from the fake hub, then `myna say` with no model files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from fakehub import TEST_REPO, FakeHub, run_myna
from safetensors.torch import load_file

from myna.engine.default_voice import BUNDLED_DIR
from myna.engine.voice_file import VOICE_FILE
from myna.errors import InputError
from myna.weights.catalog import VERSION_FILES
from myna.weights.reference import bundled_reference


def _as_upstream_dir(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """A transformers folder as upstream ships it: the named files plus pytorch_model.bin (not safetensors)."""
    files = {name: (folder / name).read_bytes() for name in names}
    buffer = io.BytesIO()
    torch.save(load_file(folder / "model.safetensors"), buffer)
    files["pytorch_model.bin"] = buffer.getvalue()
    return files


@pytest.fixture(scope="module")
def tiny_release(tiny_set) -> dict[str, bytes]:
    """The tiny seeded v2 model set under upstream's real v2 file names."""
    gpt, sovits = VERSION_FILES["v2"][:2]
    files = {gpt: Path(tiny_set["gpt"]).read_bytes(), sovits: Path(tiny_set["sovits"]).read_bytes()}
    for prefix, key, names in (("chinese-hubert-base", "hubert", ("config.json", "preprocessor_config.json")),
                               ("chinese-roberta-wwm-ext-large", "bert", ("config.json", "tokenizer.json"))):
        files.update({f"{prefix}/{k}": v for k, v in _as_upstream_dir(Path(tiny_set[key]), names).items()})
    assert sorted(files) == sorted(VERSION_FILES["v2"])
    return files


def test_say_speaks_with_the_pulled_version_and_the_bundled_clip(tiny_release, tmp_path, monkeypatch, capsys):
    from myna.cli import main

    with FakeHub({TEST_REPO: tiny_release}) as hub:
        env = {"MYNA_HOME": str(tmp_path / "home"), "HF_ENDPOINT": hub.endpoint}
        pulled = run_myna("models", "pull", "v2", "--repo", TEST_REPO, env=env)
        assert pulled.returncode == 0, pulled.stderr
    # the hub is gone: speaking needs no network (in this process, to load torch and transformers once)
    monkeypatch.setenv("MYNA_HOME", env["MYNA_HOME"])
    for name in ("MYNA_MODEL", "MYNA_DEFAULT_VOICE"):
        monkeypatch.delenv(name, raising=False)
    common = ["--seed", "0", "--max-tokens", "30"]
    assert main(["say", "Hello there.", "--model", "v2", "-o", str(tmp_path / "a.wav"), *common]) == 0, \
        capsys.readouterr().err
    audio, rate = soundfile.read(tmp_path / "a.wav")
    assert rate == 32000 and len(audio) > rate * 0.2 and np.abs(audio).max() > 0
    # the same as naming the pulled folder, the bundled clip and its transcript by hand
    clip = bundled_reference()
    monkeypatch.setenv("MYNA_HOME", str(tmp_path / "elsewhere"))
    assert main(["say", "Hello there.", "--model-dir", pulled.stdout.strip(), "--model-version", "v2",
                 "--lang", "auto", "--ref", str(clip.path), "--ref-lang", "en", "--ref-text", clip.text,
                 "-o", str(tmp_path / "b.wav"), *common]) == 0, capsys.readouterr().err
    assert np.array_equal(audio, soundfile.read(tmp_path / "b.wav")[0])


def _say_args(*argv: str):
    from myna.cli import build_parser

    return build_parser().parse_args(["say", "Hello there.", "-o", "out.wav", *argv])


def _pulled_home(tmp_path: Path, versions: tuple[str, ...]) -> Path:
    """A MYNA_HOME whose record says `versions` are pulled (empty files: resolution never reads them)."""
    import json

    root = tmp_path / "home" / "models"
    files = {}
    for version in versions:
        for rel in VERSION_FILES[version]:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"")
            files[rel] = {"sha256": "0" * 64, "size": 0, "mtime_ns": (root / rel).stat().st_mtime_ns, "origin": "t"}
    (root / ".myna").mkdir(parents=True)
    record = {"format": 1, "files": files, "pulled": {v: {} for v in versions}, "started": {}}
    (root / ".myna" / "models.json").write_text(json.dumps(record))
    return root


def test_without_a_model_flag_say_takes_myna_model_or_the_newest_pulled(tmp_path, monkeypatch):
    from myna.cli.say import _use_default_voice

    root = _pulled_home(tmp_path, ("v1", "v2Pro"))
    monkeypatch.setenv("MYNA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MYNA_MODEL", raising=False)
    monkeypatch.delenv("MYNA_DEFAULT_VOICE", raising=False)
    if not (BUNDLED_DIR / VOICE_FILE).is_file():  # with no default voice installed: the newest pulled version
        monkeypatch.setenv("MYNA_HOME", str(tmp_path / "empty"))
        with pytest.raises(InputError, match="no models pulled .*`myna models pull v2ProPlus`"):
            _use_default_voice(_say_args(), io.StringIO())
        monkeypatch.setenv("MYNA_HOME", str(tmp_path / "home"))
        args = _say_args()
        _use_default_voice(args, io.StringIO())
        assert (args.model_dir, args.model_version) == (str(root), "v2Pro")
        assert (args.ref, args.ref_text, args.ref_lang, args.lang) == (
            str(bundled_reference().path), bundled_reference().text, "en", "auto")
    monkeypatch.setenv("MYNA_MODEL", "v1")
    args = _say_args("--ref", "mine.wav", "--lang", "zh")
    _use_default_voice(args, io.StringIO())
    assert (args.model_dir, args.model_version, args.ref, args.lang) == (str(root), "v1", "mine.wav", "zh")
    monkeypatch.setenv("MYNA_MODEL", "v2")
    with pytest.raises(InputError, match="`myna models pull v2`"):
        _use_default_voice(_say_args(), io.StringIO())
    with pytest.raises(InputError, match="give it alone"):
        _use_default_voice(_say_args("--model", "v1", "--model-dir", "x"), io.StringIO())


def test_serve_train_and_the_python_api_resolve_pulled_versions(tmp_path, monkeypatch):
    from myna import load_model
    from myna.cli import build_parser
    from myna.cli.serve import _use_pulled_model
    from myna.cli.train import _base_models
    from myna.config import Settings

    monkeypatch.setenv("MYNA_HOME", str(tmp_path / "home"))
    for name in ("MYNA_MODEL", "MYNA_MODEL_DIR", "MYNA_GPT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InputError, match="`myna models pull v2ProPlus`"):
        load_model()  # nothing pulled: nothing loads, nothing downloads
    root = _pulled_home(tmp_path, ("v2", "v2Pro"))

    def serve(*argv: str) -> Settings:
        return _use_pulled_model(build_parser().parse_args(["serve", *argv]), Settings.from_env())

    assert (serve().model_dir, serve().model_version) == (root, "v2Pro")  # the newest pulled
    assert serve("--model", "v2").model_version == "v2"
    monkeypatch.setenv("MYNA_MODEL_DIR", str(tmp_path))  # an explicit folder wins over pulled versions
    assert serve().model_dir == tmp_path
    monkeypatch.setenv("MYNA_MODEL", "v1")
    with pytest.raises(InputError, match="`myna models pull v1`"):
        serve("--model", "v1")

    assert _base_models("v2Pro", "v2") == (root, "v2Pro")
    assert _base_models(str(tmp_path), "v2") == (tmp_path, "v2")
    with pytest.raises(InputError, match="`myna models pull v1`"):
        _base_models("v1", "v2")
    with pytest.raises(InputError, match="unknown model"):
        load_model("v9")
