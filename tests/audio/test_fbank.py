"""Kaldi filterbank against upstream GPT-SoVITS commit 48b1a01 `eres2net/kaldi.fbank` (equal to torchaudio's)
with upstream's options (80 bins, 16 kHz, dither 0); data/fbank_upstream.json, made by
tools/upstream_reference/make_eres2net_reference.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from myna.audio.fbank import frame_sizes, kaldi_fbank, mel_banks
from myna.errors import InputError

# the audio recipe is shared with the script that ran upstream (tests/models/eres2net_fixtures.py)
_SPEC = importlib.util.spec_from_file_location(
    "eres2net_fixtures", Path(__file__).parents[1] / "models" / "eres2net_fixtures.py"
)
fx = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fx)

CASES = json.loads((Path(__file__).parent / "data" / "fbank_upstream.json").read_text("utf-8"))["cases"]
SAMPLED = ["tones", "silence_first", "odd_length", "one_frame"]


@pytest.mark.parametrize("name", SAMPLED)
def test_matches_upstream(name: str) -> None:
    case = CASES[name]
    out = kaldi_fbank(torch.tensor(case["input"]))
    expected = torch.tensor(case["fbank"])
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_silent_frame_is_floored_at_epsilon() -> None:
    first = kaldi_fbank(torch.tensor(CASES["silence_first"]["input"]))[0]
    torch.testing.assert_close(first, torch.full((80,), float(torch.finfo(torch.float32).eps)).log())


def test_batch_equals_rows_and_upstream_sums() -> None:
    audio = fx.sample_audio(2, 4000)
    batch = kaldi_fbank(audio)
    ref = CASES["sample_audio_2x4000"]
    assert list(batch.shape) == ref["shape"] == [2, 23, 80]
    torch.testing.assert_close(batch, torch.stack([kaldi_fbank(row) for row in audio]))
    assert batch.double().sum().item() == pytest.approx(ref["sum"], rel=1e-6)
    assert batch.double().abs().sum().item() == pytest.approx(ref["abs_sum"], rel=1e-6)


def test_frame_sizes_and_banks() -> None:
    assert frame_sizes(16000) == (400, 160, 512)
    banks = mel_banks(80, 512, 16000)
    assert banks.shape == (80, 257) and banks.dtype == torch.float32
    assert torch.all(banks[:, -1] == 0) and torch.all(banks >= 0) and banks.max() <= 1
    banks.zero_()  # a caller's copy: the cached banks stay intact
    assert mel_banks(80, 512, 16000).max() > 0


@pytest.mark.parametrize(
    "audio", [torch.zeros(399), torch.zeros(1, 2, 500), torch.zeros(500, dtype=torch.int16)], ids=str
)
def test_rejects_unusable_audio(audio: torch.Tensor) -> None:
    with pytest.raises(InputError):
        kaldi_fbank(audio)
