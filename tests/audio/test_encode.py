"""Encoders: whole files decode back to the same audio; streamed pieces form a playable stream."""

import io
import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from myna.audio.encode import FORMATS, StreamEncoder, check_format, encode, media_type, pcm16, wav_header
from myna.errors import InputError

RATE = 32000


def _tone(seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_wav_and_pcm_are_exact_16_bit():
    audio = _tone()
    wav = encode(audio, RATE, "wav")
    decoded, rate = sf.read(io.BytesIO(wav), dtype="int16")
    assert rate == RATE and wav[44:] == encode(audio, RATE, "pcm") == encode(audio, RATE, "raw") == pcm16(audio)
    np.testing.assert_array_equal(decoded, np.frombuffer(pcm16(audio), "<i2"))
    assert pcm16(np.array([2.0, -2.0], np.float32)) == np.array([32767, -32768], "<i2").tobytes()


@pytest.mark.parametrize("fmt,container,rate", [("flac", "FLAC", RATE), ("ogg", "OGG", RATE), ("opus", "OGG", 48000),
                                               ("mp3", "MP3", RATE)])
def test_compressed_formats_decode(fmt, container, rate):
    info = sf.info(io.BytesIO(encode(_tone(), RATE, fmt)))
    assert info.format == container and info.samplerate == rate and info.channels == 1
    assert abs(info.duration - 0.5) < 0.1


def test_aac_is_adts():
    data = encode(_tone(), RATE, "aac")
    assert data[:2] in (b"\xff\xf1", b"\xff\xf9") and len(data) > 100


def test_streamed_wav_is_header_then_samples():
    encoder = StreamEncoder("wav", RATE)
    pieces = [encoder.header(), encoder.chunk(_tone(0.1)), encoder.chunk(_tone(0.2)), encoder.finish()]
    assert pieces[0] == wav_header(RATE, 0) and len(pieces[0]) == 44
    assert b"".join(pieces[1:]) == pcm16(np.concatenate([_tone(0.1), _tone(0.2)]))


def test_streamed_ogg_chunks_chain_into_one_stream():
    encoder = StreamEncoder("ogg", RATE)
    stream = encoder.header() + encoder.chunk(_tone(0.3)) + encoder.chunk(_tone(0.3)) + encoder.finish()
    decoded, _ = sf.read(io.BytesIO(stream))
    assert decoded.size >= int(RATE * 0.3)  # a chained Ogg file plays (libsndfile reads its first link)


def _probe(data: bytes, suffix: str, tmp_path) -> tuple[list, float]:
    """(streams, seconds) of a file: ffprobe's streams, and its length both as ffprobe states it and decoded."""
    path = tmp_path / f"stream.{suffix}"
    path.write_bytes(data)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json",
                            str(path)], capture_output=True, text=True, check=True)  # fmt: skip
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    stated, decoded = float(json.loads(probe.stdout)["format"]["duration"]), len(pcm) / 2 / 48000
    assert abs(stated - decoded) < 0.1, (stated, decoded)  # a chained Ogg file states the first link's length
    return json.loads(probe.stdout)["streams"], decoded


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe/ffmpeg (scripts/setup.sh installs them)")
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac"])
def test_streamed_compressed_chunks_form_one_continuous_file(fmt, tmp_path):
    """Nine chunks make one file with one stream whose length is the audio's (not nine glued files)."""
    audio = _tone(3.0)
    encoder = StreamEncoder(fmt, RATE)
    pieces = [encoder.header(), *(encoder.chunk(part) for part in np.array_split(audio, 9)), encoder.finish()]
    streamed = b"".join(pieces)
    streams, seconds = _probe(streamed, fmt, tmp_path)
    assert len(streams) == 1 and abs(seconds - 3.0) < 0.1, (streams, seconds)  # mp3: encoder delay + last frame
    assert sum(1 for p in pieces[1:-1] if p) >= 7  # audio leaves as it comes, not all at the end
    whole_streams, whole_seconds = _probe(encode(audio, RATE, fmt), fmt, tmp_path)
    assert len(whole_streams) == 1 and abs(whole_seconds - seconds) < 0.03


def test_streamed_pcm_can_leave_at_another_rate():
    """OpenAI's pcm is 24 kHz: one streaming resampler gives the whole file's length, chunk by chunk."""
    audio = _tone(1.0)
    encoder = StreamEncoder("pcm", RATE, out_rate=24000)
    streamed = b"".join([*(encoder.chunk(part) for part in np.array_split(audio, 5)), encoder.finish()])
    whole = encode(audio, RATE, "pcm", out_rate=24000)
    assert encoder.rate == 24000 and abs(len(streamed) - len(whole)) <= 4 and abs(len(whole) // 2 - 24000) <= 1
    np.testing.assert_allclose(np.frombuffer(streamed, "<i2")[2000:20000], np.frombuffer(whole, "<i2")[2000:20000],
                               atol=8)  # fmt: skip


def test_flac_is_held_until_the_end():
    encoder = StreamEncoder("flac", RATE)
    assert not encoder.streams and encoder.chunk(_tone(0.2)) == b"" and encoder.chunk(_tone(0.2)) == b""
    whole, _ = sf.read(io.BytesIO(encoder.finish()), dtype="int16")
    assert len(whole) == int(RATE * 0.2) * 2


def test_unknown_format_names_the_choices():
    with pytest.raises(InputError, match="expected one of wav, pcm"):
        check_format("mp4")
    assert media_type("mp3") == "audio/mpeg" and set(FORMATS) >= {"wav", "pcm", "flac", "ogg", "opus", "mp3", "aac"}
