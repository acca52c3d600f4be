"""`myna train --preset` (no base model): a from-scratch run on a few clips gives loadable, resumable files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from myna import checkpoints
from myna.cli import main
from myna.engine.precision import native_bf16
from myna.train.loop import checkpoint_paths

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

TEXTS = ("The quick brown fox jumps over the lazy dog near the river bank today.",
         "She sells sea shells by the sea shore every summer morning.")


def _corpus(folder: Path) -> Path:
    import subprocess

    lines = []
    for voice in ("en-us", "en-us+f3"):
        for i, text in enumerate(TEXTS[:1]):
            wav = folder / f"{voice.replace('+', '_')}_{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
            lines.append(f"{wav}|{voice}|EN|{text}")
    (folder / "corpus.list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "corpus.list"


def test_from_scratch_run_resumes_and_loads(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    args = ["train", "--data", str(corpus), "--preset", "tiny", "--name", "scratch", "--data-dir", str(tmp_path / "d"),
            "--sovits-epochs", "1", "--gpt-epochs", "1", "--train-precision", "bf16", "--quiet"]
    assert main(args) == 0
    # bf16 on a CPU without native kernels is allowed but much slower: the user is told
    warned = "no native bfloat16 kernels" in capsys.readouterr().err
    assert warned == (not native_bf16("cpu"))
    home = tmp_path / "d" / "trained" / "scratch"
    for stage in ("sovits", "gpt"):  # the preset's own settings, with the precision asked for
        assert json.loads((home / "work" / stage / "train_config.json").read_text())["precision"] == "bf16"
    record = json.loads((home / "voice.json").read_text())
    assert (record["encoders"]["content"], record["encoders"]["speaker"], record["hubert"]) == (
        "whisper-tiny.en", "resemblyzer", None)
    assert record["gpt"] == "scratch_s1.ckpt" and record["sovits"] == "scratch_s2.pth"
    sovits = checkpoints.read_sovits(home / "scratch_s2.pth")
    assert sovits.config["myna"]["content"] == "whisper-tiny.en" and sovits.config["model"]["ssl_dim"] == 384
    assert float(sovits.state_dict["quantizer.vq.layers.0._codebook.inited"]) == 1  # the codebook was learned
    manifest = json.loads((home / "work" / "features" / "features.json").read_text())
    assert all(item["tokens"] > 0 for item in manifest["items"])
    states = [p.name for p in checkpoint_paths(home / "work" / "sovits")]

    # a rerun resumes: nothing is retrained, the same checkpoints remain
    assert main(args) == 0
    assert [p.name for p in checkpoint_paths(home / "work" / "sovits")] == states

    # `say --voice` needs no --hubert/--sv for this model
    reference = tmp_path / "ref.wav"
    audio, rate = soundfile.read(str(corpus.parent / "en-us_0.wav"))
    soundfile.write(str(reference), np.concatenate([audio, audio]), rate)
    out = tmp_path / "out.wav"
    assert main(["say", "Hello there.", "--lang", "en", "--voice", "scratch", "--data-dir", str(tmp_path / "d"),
                 "--ref", str(reference), "--ref-text", f"{TEXTS[0]} {TEXTS[0]}", "--ref-lang", "en",
                 "-o", str(out)]) == 0, capsys.readouterr().err
    assert soundfile.info(str(out)).frames > 0


def test_base_or_preset_is_required(tmp_path, capsys):
    args = ["train", "--data", str(tmp_path / "x.list"), "--name", "n", "--data-dir", str(tmp_path)]
    assert main(args) == 1
    assert "--preset" in capsys.readouterr().err
    assert main([*args, "--preset", "huge"]) == 1
    assert "unknown model preset" in capsys.readouterr().err
