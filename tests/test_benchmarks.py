"""The benchmark commands keep running (numbers are printed, not asserted: speed is not a test)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_text_parity_prints_a_row_per_language():
    out = run("benchmarks/text_parity.py", "--show", "0")
    rows = {line.split()[0] for line in out.splitlines()[1:] if line and not line.startswith(" ")}
    assert {"zh", "en", "ja"} <= rows


def test_emotion_benchmark_prints_accuracy_per_language_and_confusions():
    out = run("benchmarks/emotion.py", "--errors", "1")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["zh"], ["en"], ["ja"], ["all"])}
    assert set(rows) == {"zh", "en", "ja", "all"} and rows["all"][1] == "390"
    assert all(0.0 <= float(rows[lang][2]) <= 1.0 for lang in rows)
    assert out.count("confusion matrix") == 3 and "sentences/s" in out


def test_engine_benchmark_prints_every_figure():
    out = run("benchmarks/engine.py", "--tokens", "12", "--repeats", "1", "--threads", "1", "--modes", "fp32",
              "--quality-steps", "8", "--seeds", "1", "--no-zh", "--eager-step")
    lines = out.splitlines()
    header = next(line.split() for line in lines if line.split()[:1] == ["mode"])
    assert {"t2s_tok_s", "sovits_rtf", "e2e_rtf", "first_audio_ms", "peak_rss_mb", "forced_agree", "snr_db"} <= set(header)
    # the engine's flat decode step, then the module path (the fast modes' own numbers are tests/engine/test_precision.py's)
    modes = {"fp32", "fp32+eager"}
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] and line.split()[0] in modes}
    assert set(rows) == modes and all(len(row) == len(header) for row in rows.values())
    # both decode steps compute the same numbers: fp32's tokens (and so its audio) agree exactly
    assert rows["fp32+eager"][header.index("free_agree")] == "1.000"
    assert rows["fp32+eager"][header.index("snr_db")] == "inf"


def _voice_quality_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("voice_quality", ROOT / "benchmarks" / "voice_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_word_error_rate_compares_spoken_forms():
    vq = _voice_quality_module()
    assert vq.word_error_rate(["It costs 12 dollars."], ["it costs twelve dollars"]) == 0.0
    assert vq.word_error_rate(["the cat sat"], ["the dog sat"]) == 1 / 3
    assert "heldout" not in " ".join(vq.heldout_sentences()) and len(vq.heldout_sentences()) >= 20


def test_whisper_hears_clear_speech(tmp_path):
    """The WER measurement itself works: clear synthetic speech of a known sentence transcribes closely.

    flite's slt voice (recorded speech, CMU ARCTIC): espeak-ng's default voice is on the edge for
    Whisper tiny.en ("The quick round-fark stump over the lazy nog." on one CPU, exact on another)."""
    import shutil

    import pytest
    import soundfile

    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (scripts/setup.sh installs it)")
    from myna.audio.io import resample_soxr
    from myna.features.asr import Transcriber

    text = "The quick brown fox jumps over the lazy dog."
    wav = tmp_path / "fox.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(wav)], check=True)
    audio, rate = soundfile.read(wav, dtype="float32")
    heard, _ = Transcriber().transcribe(resample_soxr(audio, rate, 16000), "en")
    assert _voice_quality_module().word_error_rate([text], [heard]) <= 0.25, heard


def test_voice_quality_quick_mode_prints_every_figure(tiny_set, tmp_path):
    import json
    import os

    root = tmp_path / "voice"
    root.mkdir()
    for name, key in (("s1.ckpt", "gpt"), ("s2.pth", "sovits"), ("hubert", "hubert")):
        (root / name).symlink_to(tiny_set[key])
    (root / "ref.wav").symlink_to(tiny_set["clips"][0])
    (root / "voice.json").write_text(json.dumps({"gpt": "s1.ckpt", "sovits": "s2.pth", "hubert": "hubert",
                                                 "ref": "ref.wav", "ref_text": "A reference.", "lang": "en"}))
    proc = subprocess.run([sys.executable, "benchmarks/voice_quality.py", "--quick", "--json", "--voice-dir", str(root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.splitlines()[-1])
    assert figures["sentences"] == 2 and figures["wer"] >= 0 and figures["rtf"] > 0


def test_stream_benchmark_measures_a_given_sovits_checkpoint(tiny_set):
    out = run("benchmarks/engine_stream.py", "--tokens", "12", "--repeats", "1", "--threads", "1",
              "--modes", "exact,bf16", "--skip-stitch", "--sovits", str(tiny_set["sovits"]))
    rows = {line.split("[")[1].split("]")[0].strip(): line for line in out.splitlines() if line.startswith("sovits_rtf[")}
    assert set(rows) == {"exact", "bf16"}
    assert "log-mel L1 0.000 vs exact" in rows["exact"]
    distance = float(rows["bf16"].split("log-mel L1 ")[1].split()[0])
    assert 0 < distance < 1  # bf16 rounding shows, but both modes decode the same model
    assert sum(line.startswith("first_audio[") for line in out.splitlines()) == 3


def test_consent_benchmark_prints_eer_and_threshold():
    if shutil.which("flite") is None or shutil.which("rubberband") is None:
        pytest.skip("flite and rubberband are needed (scripts/setup.sh installs them)")
    out = run("benchmarks/consent.py", "--voices", "flite-slt,flite-rms,flite-kal16", "--pseudo", "1",
              "--utterances", "3")
    assert "EER" in out and "chosen threshold" in out and "pairs:" in out


def test_watermark_benchmark_prints_its_tables(tmp_path):
    out = run("benchmarks/watermark.py", "--quick", "--cache", str(tmp_path), "--voices", "flite-slt,espeak-us-f2")
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("attack"))
    assert "myna det" in header and "bits" in header and "fp" in header
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] and line.split()[0] in
            ("none", "mp3_64k", "resample_16k", "excerpt_3s", "stream")}
    assert len(rows) == 5 and all(len(row) == 6 for row in rows.values())  # name | det exact bits fp
    for name, row in rows.items():
        assert 0.0 <= float(row[2]) <= 1.0  # detection rate
        # false positives are measured on clean clips: always without an attack, for the others only where
        # the quick run attacked clean clips too ('-' otherwise)
        if name == "none" or row[5] != "-":
            assert 0.0 <= float(row[5]) <= 1.0
    costs = next(line.split() for line in lines if line.startswith("myna "))
    assert len(costs) == 7 and 1.0 <= float(costs[1]) <= 4.7  # a PESQ score
    assert "first streamed chunk" in out


def test_cold_start_benchmark_prints_every_phase(tiny_set):
    out = run("benchmarks/cold_start.py", "--models", str(Path(tiny_set["gpt"]).parent), "--runs", "1",
              "--threads", "1", "--tokens", "8")
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines()[2:]}
    for phase in ("imports", "load (all models)", "load GPT", "load SoVITS", "load content encoder", "reference prompt",
                  "T2S", "SoVITS", "write", "myna say (whole command)", "myna serve ready"):
        assert phase in rows and len(rows[phase]) >= 3, (phase, out)
    assert float(rows["load BERT"][1]) < 0.5  # read on the first Chinese sentence, not at start-up


def test_emotion_strength_benchmark_prints_a_row_per_strength():
    out = run("benchmarks/emotion_strength.py", "--layers", "2", "--tokens", "12", "--strengths", "0,0.5,1,1.5",
              "--threads", "1")
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in out.splitlines()
            if line.split()[:1] and line.split()[0][0].isdigit()}
    assert set(rows) == {"0.00", "0.50", "1.00", "1.50"}
    assert rows["0.00"][0] == 0.0 and rows["1.00"][1] < 1e-6  # each end is its own prompt's distribution
    assert rows["0.50"][0] > 0.0 and rows["0.50"][1] > 0.0 and "one prompt alone" in out


def test_vs_upstream_benchmark_prints_a_row_per_system(tiny_set):
    # upstream's side needs an upstream checkout and its interpreter; myna's side runs on its own
    out = run("benchmarks/vs_upstream.py", "--models", str(Path(tiny_set["gpt"]).parent), "--no-upstream",
              "--modes", "fp32,int8", "--tokens", "8", "--sentences", "2", "--rounds", "1", "--threads", "1",
              "--agreement-steps", "6")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["myna:fp32"], ["myna:int8"])}
    assert set(rows) == {"myna:fp32", "myna:int8"} and all(len(row) == 13 for row in rows.values())
    assert rows["myna:fp32"][11] == "-" and 0.0 <= float(rows["myna:int8"][11]) <= 1.0  # agreement with fp32
    assert all(float(row[1]) > 0 and float(row[7]) > 0 for row in rows.values())  # marginal RTF, T2S tokens/s
    assert "CPU:" in out
