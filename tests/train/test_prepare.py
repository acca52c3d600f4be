"""myna data prepare: slicing, checks, loudness, denoising, ASR and the .list, on espeak-ng speech."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from myna.audio.decode import decode
from myna.audio.io import write_wav
from myna.errors import InputError
from myna.features.asr import Transcriber
from myna.train.conditioning import integrated_loudness, normalize_loudness
from myna.train.listfile import ListEntry, language_code, read_list, write_list
from myna.train.prepare import LIST_NAME, PrepareOptions, prepare_dataset
from myna.train.slicing import slice_on_silence

RATE = 32000


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(threads=1, beam_size=1)  # the bundled Whisper tiny.en


def test_slices_40_s_with_pauses_into_2_to_12_s_pieces(speech, with_pauses) -> None:
    audio = with_pauses(speech["audio"], 40.0)
    assert audio.shape[0] >= 40 * RATE
    pieces = slice_on_silence(audio, RATE)
    lengths = [(stop - start) / RATE for start, stop in pieces]
    assert len(pieces) >= 6
    assert all(2.0 <= length <= 12.0 for length in lengths), lengths
    assert all(a[1] <= b[0] for a, b in zip(pieces, pieces[1:], strict=False))  # in order, no overlap
    speech_seconds = sum(clip.shape[0] for clip in speech["audio"]) / RATE * 40 / (audio.shape[0] / RATE)
    assert sum(lengths) >= 0.8 * speech_seconds


def test_speech_without_pauses_is_cut_to_at_most_12_s() -> None:
    t = np.arange(30 * RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    lengths = [(b - a) / RATE for a, b in slice_on_silence(audio, RATE)]
    assert sum(lengths) == pytest.approx(30.0, abs=0.05)
    assert all(2.0 <= length <= 12.0 for length in lengths), lengths


def test_loudness_normalization_reaches_the_target(speech) -> None:
    quiet = speech["audio"][2] * 0.05
    out = normalize_loudness(quiet, RATE, -20.0)
    assert integrated_loudness(out, RATE) == pytest.approx(-20.0, abs=0.1)
    loud = normalize_loudness(speech["audio"][2], RATE, -3.0)  # would clip: the peak limit wins
    assert np.max(np.abs(loud)) == pytest.approx(0.944, abs=1e-3)


def test_prepare_end_to_end(speech, with_pauses, tmp_path: Path, transcriber: Transcriber) -> None:
    inputs = tmp_path / "recordings"
    inputs.mkdir()
    soundfile.write(inputs / "session.flac", with_pauses(speech["audio"], 28.0), RATE)
    (inputs / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    write_wav(inputs / "clipped.wav", np.clip(speech["audio"][1] * 20, -1, 1), RATE)
    write_wav(inputs / "silence.wav", np.full(3 * RATE, 1e-5, dtype=np.float32), RATE)
    out = tmp_path / "voice"
    report = prepare_dataset([inputs], out, PrepareOptions(threads=1), transcriber=transcriber)

    assert report.list_path == out / LIST_NAME
    entries, problems = read_list(report.list_path)
    assert problems == [] and entries == report.entries and len(entries) >= 4
    assert {e.speaker for e in entries} == {"voice"} and {e.lang for e in entries} == {"en"}
    for entry in entries:
        audio, rate = soundfile.read(entry.audio, dtype="float32")
        assert entry.audio.parent == (out / "wavs").resolve() and rate == 32000
        assert 2.0 <= audio.shape[0] / rate <= 12.0
        assert integrated_loudness(audio, rate) == pytest.approx(-20.0, abs=1.0)
    words = " ".join(e.text for e in entries).lower()
    assert sum(word in words for word in ("dog", "journey", "store", "rainbow", "morning")) >= 3
    assert [Path(p).name for p, _ in report.skipped_files] == ["broken.wav"]
    assert "not a readable audio file" in report.skipped_files[0][1]
    counts = report.dropped_counts()
    assert counts.get("clipped") == 1 and counts.get("near-silent") == 1, report.dropped
    assert not list(out.glob(".staging-*"))
    assert report.seconds == pytest.approx(sum(soundfile.info(e.audio).duration for e in entries), abs=0.01)


def test_refuses_under_20_s_and_writes_nothing(speech, tmp_path: Path) -> None:
    out = tmp_path / "short"
    with pytest.raises(InputError, match=r"at least 20 s") as refused:
        prepare_dataset(speech["clips"][:2], out)  # about 6 s of speech; refused before any model is loaded
    measured = float(str(refused.value).split(" s of usable speech")[0].removeprefix("only "))
    assert 4.0 < measured < 7.5
    assert not out.exists()


def test_existing_list_is_used_as_is(speech, tmp_path: Path) -> None:
    lines = [f"{clip}|anna|EN|{text}" for clip, text in zip(speech["clips"], speech["texts"], strict=True)]
    lines += [f"{tmp_path / 'missing.wav'}|anna|EN|gone", f"{speech['clips'][0]}|anna|KO|안녕하세요", "not a line"]
    given = tmp_path / "given.list"
    given.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = prepare_dataset([given], tmp_path / "out")  # no audio to transcribe: no ASR model is loaded
    assert [(e.audio, e.text) for e in report.entries] == list(zip(speech["clips"], speech["texts"], strict=True))
    reasons = " | ".join(reason for _, reason in report.skipped_files)
    assert "no such audio file" in reasons and "'KO' is not supported" in reasons and "4 fields" in reasons
    assert read_list(report.list_path)[0] == report.entries


def test_whisper_transcribes_espeak_speech(speech, transcriber: Transcriber) -> None:
    from myna.audio.io import resample_soxr

    text, lang = transcriber.transcribe(resample_soxr(speech["audio"][4], RATE, 16000))
    assert lang == "en"
    assert {"rainbow", "light"} <= set(text.lower().replace(".", " ").replace(",", " ").split())
    with pytest.raises(InputError, match="English-only"):
        transcriber.transcribe(np.zeros(16000, np.float32), "zh")


def test_m4a_is_decoded_through_ffmpeg(speech, tmp_path: Path) -> None:
    m4a = tmp_path / "clip.m4a"
    subprocess.run([shutil.which("ffmpeg"), "-v", "error", "-i", str(speech["clips"][0]), "-c:a", "aac", str(m4a)],
                   check=True)
    audio = decode(m4a, RATE)
    assert abs(audio.shape[0] - speech["audio"][0].shape[0]) < 0.1 * RATE
    assert np.sqrt(np.mean(audio**2)) > 0.01


def test_denoise_removes_background_noise(speech) -> None:
    from myna.train.denoise import Denoiser

    clean = np.concatenate([np.zeros(RATE // 2, np.float32), speech["audio"][0]])
    noisy = clean + 0.02 * np.random.default_rng(1).standard_normal(clean.shape[0]).astype(np.float32)
    out = Denoiser()(noisy, RATE)
    assert out.shape == noisy.shape
    lead = slice(RATE // 10, RATE * 2 // 5)  # the noise-only lead-in
    assert np.sqrt(np.mean(out[lead] ** 2)) < 0.1 * np.sqrt(np.mean(noisy[lead] ** 2))
    assert np.corrcoef(out, clean)[0, 1] > 0.9  # speech kept, in place (latency trimmed)


def test_list_format(tmp_path: Path) -> None:
    assert [language_code(s) for s in ("ZH", "zh", "JP", "ja", "JA", "En", "EN")] == ["zh"] * 2 + ["ja"] * 3 + ["en"] * 2
    with pytest.raises(InputError, match="not supported"):
        language_code("yue")
    path = write_list(tmp_path / "a.list", [ListEntry(Path("/data/a.wav"), "spk", "ja", "こんにちは")])
    assert path.read_text(encoding="utf-8") == "/data/a.wav|spk|JA|こんにちは\n"
    (tmp_path / "b.list").write_text("clips/x.wav|spk|zh|你好\n\nclips/y.wav|spk|EN|\n", encoding="utf-8")
    entries, problems = read_list(tmp_path / "b.list")
    assert entries == [ListEntry(tmp_path / "clips" / "x.wav", "spk", "zh", "你好")]
    assert problems == [(3, "the transcript is empty")]
    with pytest.raises(InputError, match="'|'"):
        write_list(tmp_path / "c.list", [ListEntry(Path("a.wav"), "s", "en", "a|b")])
