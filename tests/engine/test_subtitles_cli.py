"""Subtitle and timestamp files, and `myna say` with prosody and timing flags end to end (real subprocess)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from myna.engine.subtitles import cues, to_srt, to_vtt
from myna.engine.timing import WordTiming

WORDS = [WordTiming("Hello", 0.1, 0.5), WordTiming("there", 0.5, 0.9), WordTiming("你好", 1.4, 1.9),
         WordTiming("世界", 1.9, 2.3), WordTiming("again", 3661.0, 3661.25)]


def test_cues_split_at_pauses_and_join_words_as_written():
    assert cues(WORDS) == [(0.1, 0.9, "Hello there"), (1.4, 2.3, "你好世界"), (3661.0, 3661.25, "again")]
    long = [WordTiming("word", i * 0.3, i * 0.3 + 0.3) for i in range(20)]
    assert all(len(text) <= 42 for _, _, text in cues(long)) and len(cues(long)) > 1


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_subtitle_files_read_back_with_ffmpeg(tmp_path, kind):
    text = to_srt(WORDS) if kind == "srt" else to_vtt(WORDS)
    assert ("01:01:01,000 --> 01:01:01,250" if kind == "srt" else "01:01:01.000 --> 01:01:01.250") in text
    path = tmp_path / f"a.{kind}"
    path.write_text(text, encoding="utf-8")
    other = tmp_path / ("b.vtt" if kind == "srt" else "b.srt")
    proc = subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), str(other)], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    converted = other.read_text(encoding="utf-8")
    assert "Hello there" in converted and "你好世界" in converted and "again" in converted


def say(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "myna", "say", *args], capture_output=True, timeout=600)


def test_say_with_ssml_duration_timestamps_and_subtitles(tiny_set, tmp_path):
    models = ["--gpt", str(tiny_set["gpt"]), "--sovits", str(tiny_set["sovits"]), "--hubert", str(tiny_set["hubert"]),
              "--ref", str(tiny_set["clips"][0]), "--ref-text", "This is my reference voice.", "--ref-lang", "en",
              "--lang", "en", "--top-k", "1", "--seed", "0", "--max-tokens", "30"]
    doc = '<speak>Hello <emphasis>big</emphasis> world.<break time="400ms"/>See you.</speak>'
    out, stamps, subs = tmp_path / "o.wav", tmp_path / "o.json", tmp_path / "o.vtt"
    proc = say(doc, "-o", str(out), *models, "--duration", "3.5", "--volume", "-3", "--timestamps", str(stamps),
               "--subtitles", str(subs))
    assert proc.returncode == 0, proc.stderr.decode()
    audio, rate = soundfile.read(out, dtype="float32")
    assert len(audio) == round(3.5 * rate)
    timing = json.loads(stamps.read_text())
    assert [w["text"] for w in timing["words"]] == ["Hello", "big", "world", "See", "you"]
    assert timing["duration"] == 3.5 and timing["words"][-1]["end"] <= 3.5
    starts = [w["start"] for w in timing["words"]]
    assert starts == sorted(starts) and len(timing["phonemes"]) > len(timing["words"])
    assert subs.read_text().startswith("WEBVTT\n\n") and "Hello big world" in subs.read_text()
    assert np.abs(audio).max() > 0


@pytest.mark.parametrize(("args", "message"), [
    (["<speak>Hi <x/></speak>"], b"SSML line 1, column 11: unsupported element <x>"),
    (["Hi.", "--subtitles", "out.txt"], b"subtitles are written as .srt or .vtt"),
    (["Hi.", "--pitch", "20"], b"pitch must be between -12 and +12"),
    (["Hi.", "--duration", "0"], b"duration must be between"),
])
def test_say_refuses_bad_prosody_input_in_one_line(tiny_set, tmp_path, args, message):
    models = ["--gpt", str(tiny_set["gpt"]), "--sovits", str(tiny_set["sovits"]), "--hubert", str(tiny_set["hubert"]),
              "--ref", str(tiny_set["clips"][0]), "--lang", "en"]
    if "--subtitles" in args:
        args = [a if a != "out.txt" else str(tmp_path / "out.txt") for a in args]
    proc = say(*args, "-o", str(tmp_path / "o.wav"), *models)
    assert proc.returncode == 1 and message in proc.stderr and b"Traceback" not in proc.stderr
