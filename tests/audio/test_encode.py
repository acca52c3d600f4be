"""Encoders: whole files decode back to the same audio; streamed pieces form a playable stream."""

import io
import shutil

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


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="aac needs ffmpeg (scripts/setup.sh installs it)")
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


def test_flac_is_held_until_the_end():
    encoder = StreamEncoder("flac", RATE)
    assert not encoder.streams and encoder.chunk(_tone(0.2)) == b"" and encoder.chunk(_tone(0.2)) == b""
    whole, _ = sf.read(io.BytesIO(encoder.finish()), dtype="int16")
    assert len(whole) == int(RATE * 0.2) * 2


def test_unknown_format_names_the_choices():
    with pytest.raises(InputError, match="expected one of wav, pcm"):
        check_format("mp4")
    assert media_type("mp3") == "audio/mpeg" and set(FORMATS) >= {"wav", "pcm", "flac", "ogg", "opus", "mp3", "aac"}
