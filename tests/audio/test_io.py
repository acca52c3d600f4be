"""Audio reading, mixing and resampling; resamplers against upstream's (torchaudio / librosa) output.

Reference: data/resample_upstream.json, from torchaudio 2.11 `transforms.Resample` and librosa 0.11
`resample(res_type="soxr_hq")` as upstream GPT-SoVITS 48b1a01 calls them.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from myna.audio.io import AudioError, read_audio, resample_sinc, resample_soxr, to_int16, to_mono, write_wav

REF = json.loads((Path(__file__).parent / "data/resample_upstream.json").read_text())
SIGNAL = torch.randn(1, 4410, generator=torch.Generator().manual_seed(0)) * 0.3


@pytest.mark.parametrize("pair", sorted(REF["sinc"]))
def test_sinc_resampler_matches_torchaudio(pair):
    rate, target = map(int, pair.split("-"))
    case = REF["sinc"][pair]
    got = resample_sinc(SIGNAL[:, : case["n"]], rate, target)[0]
    expected = torch.tensor(case["out"])
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-7, rtol=0)


@pytest.mark.parametrize("pair", sorted(REF["soxr"]))
def test_soxr_resampler_matches_librosa(pair):
    rate, target = map(int, pair.split("-"))
    case = REF["soxr"][pair]
    got = resample_soxr(SIGNAL[0, : case["n"]].numpy(), rate, target)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(case["out"], dtype=np.float32), atol=1e-7, rtol=0)


def test_same_rate_is_identity():
    x = SIGNAL[0, :100]
    assert resample_sinc(x, 32000, 32000) is x
    assert resample_soxr(x.numpy(), 16000, 16000) is not None


def test_read_stereo_and_mix_down(tmp_path):
    left, right = np.full(800, 0.5, np.float32), np.full(800, -0.25, np.float32)
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    audio, rate = read_audio(tmp_path / "s.wav")
    assert rate == 8000 and audio.shape == (2, 800)
    assert np.allclose(to_mono(audio), 0.125)


def test_wav_round_trip_and_int16_conversion(tmp_path):
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.5], dtype=np.float32)
    assert to_int16(x).tolist() == [0, 16384, -16384, 32767, -32768, 32767]  # clipped, never wrapped
    write_wav(tmp_path / "o.wav", x[:3], 32000)
    back, rate = read_audio(tmp_path / "o.wav")
    assert rate == 32000 and np.allclose(back[0], x[:3])


@pytest.mark.parametrize("content", [b"", b"not audio at all", b"RIFF\x00\x00"])
def test_unreadable_files_raise_audio_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="bad.wav"):
        read_audio(path)


def test_missing_file_and_missing_folder(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="does not exist"):
        write_wav(tmp_path / "no" / "dir" / "o.wav", np.zeros(10, np.float32), 16000)
