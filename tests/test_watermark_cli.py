"""`myna watermark detect` through a real subprocess: one JSON line per file, exit status by readability."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from myna.audio.io import resample_soxr
from myna.audio.watermark import Watermarker


def detect(*files) -> tuple[int, list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "myna", "watermark", "detect", *map(str, files)],
                          capture_output=True, timeout=600)
    return proc.returncode, [json.loads(line) for line in proc.stdout.decode().splitlines()], proc.stderr.decode()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A marked WAV, the same clip clean, and the marked one as 64 kbps MP3 (ffmpeg)."""
    from myna.train.synth.voices import BASE_VOICES

    if shutil.which("flite") is None or shutil.which("ffmpeg") is None:
        pytest.skip("flite and ffmpeg are installed by scripts/setup.sh")
    root = tmp_path_factory.mktemp("wm")
    speech, rate = BASE_VOICES["flite-slt"].render("Good morning. The train to the coast leaves at half past nine, "
                                                   "so please be on the platform a few minutes early.")
    speech = resample_soxr(speech, rate, 32000) * 0.7
    marked = Watermarker().embed(speech, 32000, 0x5EED1234)
    soundfile.write(root / "marked.wav", marked, 32000)
    soundfile.write(root / "clean.wav", speech, 32000)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(root / "marked.wav"), "-b:a", "64k", str(root / "marked.mp3")],
                   check=True)
    return root


def test_one_json_line_per_file_in_order(files):
    code, records, _ = detect(files / "marked.wav", files / "clean.wav", files / "marked.mp3")
    assert code == 0
    assert [r["file"] for r in records] == [str(files / n) for n in ("marked.wav", "clean.wav", "marked.mp3")]
    assert [r["watermarked"] for r in records] == [True, False, True]
    assert [r["payload"] for r in records] == [0x5EED1234, None, 0x5EED1234]
    assert records[0]["confidence"] > 0.999 > records[1]["confidence"] >= 0.0
    assert np.isfinite([r["score"] for r in records]).all()


def test_an_unreadable_file_is_reported_and_sets_the_exit_status(files, tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    code, records, err = detect(tmp_path / "missing.wav", files / "marked.wav", tmp_path / "notes.wav")
    assert code == 1 and "Traceback" not in err and "missing.wav: no such audio file" in err
    assert [r["watermarked"] for r in records] == [None, True, None]
    assert "error" in records[0] and "error" in records[2] and "error" not in records[1]


def test_no_file_is_a_usage_error():
    code, records, err = detect()
    assert code == 2 and records == [] and "FILE" in err
