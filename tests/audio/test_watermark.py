"""The watermark on real speech (espeak-ng and flite voices): payload round trip, attacks, streams, clean audio."""

import shutil
import subprocess

import numpy as np
import pytest

from myna.audio.io import resample_soxr
from myna.audio.watermark import Watermarker
from myna.audio.watermark_code import CODED_BITS, decode_payload, encode_payload
from myna.errors import InputError

RATE = 32000
SENTENCES = [
    "The quick brown fox jumps over the lazy dog, and then it runs back home before the rain starts.",
    "Please remember to bring your umbrella tomorrow because the weather report says heavy rain is coming.",
    "She counted forty two boxes in the garage, all of them full of old letters and photographs.",
    "When the train finally arrived, nobody wanted to leave the warm waiting room at the station.",
    "A small bakery on the corner sells fresh bread every morning at seven o'clock sharp.",
    "He asked whether the meeting could move to Thursday, since Friday was already fully booked.",
]


def speak(voice: str, text: str) -> np.ndarray:
    """`text` spoken by one of myna's corpus voices, at RATE, peak 0.8."""
    from myna.train.synth.voices import BASE_VOICES

    audio, rate = BASE_VOICES[voice].render(text)
    audio = resample_soxr(audio, rate, RATE)
    return (audio / np.abs(audio).max() * 0.8).astype(np.float32)


@pytest.fixture(scope="module")
def marker():
    return Watermarker()


@pytest.fixture(scope="module")
def speech():
    """Six clips of two sentences (7-12 s, as `say` makes them): three espeak-ng voices, three flite voices."""
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng and flite are installed by scripts/setup.sh")
    voices = ["espeak-us-m3", "flite-slt", "espeak-gb-f4", "flite-awb", "espeak-scot-m7", "flite-rms"]
    return [speak(voice, f"{text} {SENTENCES[(i + 1) % len(SENTENCES)]}")
            for i, (voice, text) in enumerate(zip(voices, SENTENCES, strict=True))]


def mp3_roundtrip(audio: np.ndarray, rate: int) -> np.ndarray:
    """Encode to MP3 at 64 kbps with the real ffmpeg and decode back."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is installed by scripts/setup.sh")
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-f", "s16le", "-ar", str(rate), "-ac", "1"]
    mp3 = subprocess.run(["ffmpeg", "-v", "error", *raw, "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", "64k",
                          "-f", "mp3", "pipe:1"], input=pcm, capture_output=True, check=True).stdout
    back = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", *raw, "pipe:1"], input=mp3,
                          capture_output=True, check=True).stdout
    return np.frombuffer(back, dtype="<i2").astype(np.float32) / 32768


def test_payload_round_trip(marker, speech):
    for i, clip in enumerate(speech[:3]):
        payload = 0x9E3779B9 ^ (i * 0x01010101)
        marked = marker.embed(clip, RATE, payload)
        assert marked.shape == clip.shape and marked.dtype == np.float32 and np.abs(marked).max() <= 1.0
        found = marker.detect(marked, RATE)
        assert found.watermarked and found.payload == payload and found.confidence > 0.999999
        assert found.as_dict() == {"watermarked": True, "confidence": round(found.confidence, 6), "payload": payload,
                                   "score": round(found.score, 3)}


def test_mark_is_quiet(marker, speech):
    """The mark changes each tile by at most a few dB: far below the speech (> 10 dB SNR), nothing in silence."""
    clip = np.concatenate([np.zeros(RATE // 2, np.float32), speech[0]])
    marked = marker.embed(clip, RATE, 7)
    error = marked - clip
    assert 10 * np.log10(np.sum(clip**2) / np.sum(error**2)) > 10
    assert np.abs(error[: RATE // 2 - 1024]).max() == 0.0  # digital silence stays silent


@pytest.mark.parametrize("attack", ["gain_-6dB", "gain_+6dB", "resample_16k", "mp3_64k", "mp3+resample+gain"])
def test_survives_attacks(marker, speech, attack):
    payload = 0xC0FFEE42
    for clip in speech[3:5]:
        marked = marker.embed(clip, RATE, payload)
        if attack == "gain_-6dB":
            heard, rate = marked * 0.5, RATE
        elif attack == "gain_+6dB":
            heard, rate = np.clip(marked * 2.0, -1, 1), RATE
        elif attack == "resample_16k":
            heard, rate = resample_soxr(resample_soxr(marked, RATE, 16000), 16000, RATE), RATE
        elif attack == "mp3_64k":
            heard, rate = mp3_roundtrip(marked, RATE), RATE
        else:
            heard, rate = mp3_roundtrip(resample_soxr(marked, RATE, 16000) * 0.6, 16000), 16000
        found = marker.detect(heard, rate)
        assert found.watermarked and found.payload == payload, (attack, found)


def test_a_three_second_excerpt_cut_anywhere_is_found(marker, speech):
    marked = marker.embed(speech[0], RATE, 5)
    for start in (0.37, 2.11, 4.003):
        begin = int(start * RATE)
        assert marker.detect(marked[begin : begin + 3 * RATE], RATE).watermarked, start


def test_clean_speech_is_not_detected(marker, speech):
    for clip in speech:
        found = marker.detect(clip, RATE)
        assert not found.watermarked and found.payload is None and found.score < 4.5
        assert not marker.detect(mp3_roundtrip(clip, RATE), RATE).watermarked


def test_another_key_neither_finds_nor_is_found(marker, speech):
    other = Watermarker(b"an operator's own key")
    marked = other.embed(speech[2], RATE, 1)
    assert other.detect(marked, RATE).payload == 1
    assert not marker.detect(marked, RATE).watermarked


def test_a_stream_marked_in_chunks_carries_the_payload(marker, speech):
    clip = np.concatenate([speech[1], np.zeros(RATE // 4, np.float32), speech[2][: 3 * RATE]])
    stream, rng, chunks, at = marker.stream(RATE, 0xABCDEF01), np.random.default_rng(0), [], 0
    while at < len(clip):
        size = int(rng.integers(1, 12_000))
        chunks.append(stream.push(clip[at : at + size]))
        assert len(chunks[-1]) == len(clip[at : at + size])  # no delay: every sample comes back at once
        at += size
    assert len(stream.push(np.zeros(0, np.float32))) == 0
    joined = np.concatenate(chunks)
    found = marker.detect(joined, RATE)
    assert found.watermarked and found.payload == 0xABCDEF01
    whole = marker.embed(clip, RATE, 0xABCDEF01)
    # chunk seams add no clicks: the mark of the joined stream is no louder than the whole clip's
    assert np.sqrt(np.mean((joined - clip) ** 2)) < 1.2 * np.sqrt(np.mean((whole - clip) ** 2))
    assert np.abs(np.diff(joined - clip)).max() < 1.5 * np.abs(np.diff(whole - clip)).max()


@pytest.mark.parametrize("rate", [16000, 24000, 44100, 48000])
def test_other_rates(marker, speech, rate):
    clip = resample_soxr(speech[4], RATE, rate)
    marked = marker.embed(clip, rate, 77)
    assert marker.detect(marked, rate).payload == 77
    assert marker.detect(resample_soxr(marked, rate, 22050), 22050).payload == 77


def test_bad_input_is_refused(marker):
    with pytest.raises(InputError, match="mono"):
        marker.embed(np.zeros((2, 100), np.float32), RATE)
    with pytest.raises(InputError, match="32-bit"):
        marker.embed(np.zeros(100, np.float32), RATE, 2**32)
    with pytest.raises(InputError, match="sampling rate"):
        marker.detect(np.zeros(100, np.float32), 4000)
    with pytest.raises(InputError, match="NaN"):
        marker.detect(np.full(100, np.nan, np.float32), RATE)


def test_silence_and_short_audio_are_not_marked_or_detected(marker):
    for audio in (np.zeros(3 * RATE, np.float32), np.zeros(10, np.float32), np.zeros(0, np.float32)):
        assert np.array_equal(marker.embed(audio, RATE, 3), audio)
        found = marker.detect(audio, RATE)
        assert not found.watermarked and found.confidence == 0.0 and found.score == 0.0


def test_code_corrects_errors_and_its_crc_rejects_noise():
    rng = np.random.default_rng(1)
    payload = 0x12345678
    code = encode_payload(payload)
    assert code.shape == (CODED_BITS,) and set(np.unique(code)) <= {0, 1}
    soft = (1.0 - 2.0 * code) + rng.normal(0, 0.8, CODED_BITS)
    assert np.mean((soft < 0) != code) > 0.05  # raw decisions are wrong often
    assert decode_payload(soft) == (payload, True)
    checked = sum(decode_payload(rng.normal(0, 1, CODED_BITS))[1] for _ in range(200))
    assert checked <= 1  # noise decodes to a payload whose CRC checks about once in 32768 tries


def test_long_audio_is_marked_in_pieces_that_join_seamlessly(marker, speech):
    clip = np.concatenate(speech[:3])  # over 20 s: marked as several 10 s pieces
    marked = marker.embed(clip, RATE, 99)
    by_hand, ten_seconds = marker.stream(RATE, 99), 10 * RATE
    pieces = np.concatenate([by_hand.push(clip[:ten_seconds]), by_hand.push(clip[ten_seconds:2 * ten_seconds]),
                             by_hand.push(clip[2 * ten_seconds:])])
    assert np.array_equal(marked, pieces)  # the same cut points give the same samples
    for begin in (0, len(clip) // 2, len(clip) - 3 * RATE):
        found = marker.detect(marked[begin : begin + 3 * RATE], RATE)
        assert found.watermarked
    assert marker.detect(marked, RATE).payload == 99
