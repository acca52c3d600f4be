"""Reference spectrogram against upstream GPT-SoVITS commit 48b1a01 `module.mel_processing.spectrogram_torch`
(data/spectrogram_upstream.json, produced by tools/upstream_reference/make_sovits_reference.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from myna.audio.spectrogram import linear_spectrogram, reference_spectrogram
from myna.errors import InputError

# the signal recipe is shared with the script that ran upstream (tests/models/sovits_fixtures.py)
_SPEC = importlib.util.spec_from_file_location(
    "sovits_fixtures", Path(__file__).parents[1] / "models" / "sovits_fixtures.py"
)
fx = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fx)

UPSTREAM = json.loads((Path(__file__).parent / "data" / "spectrogram_upstream.json").read_text("utf-8"))[
    "cases"
]


@pytest.mark.parametrize("case", UPSTREAM, ids=lambda c: f"{c['seconds']}s")
def test_matches_upstream(case: dict) -> None:
    wave = fx.spectrogram_input(case["seconds"], case["peak"])
    spec = linear_spectrogram(wave)
    assert list(spec.shape) == case["shape"]
    got = fx.summarize_spectrogram(spec)
    for part in ("first_frame", "last_frame", "bins_stride_64"):
        diff = max(abs(a - b) for a, b in zip(got[part], case[part], strict=True))
        assert diff <= 1e-5, f"{part}: max abs diff {diff:.3g}"
    assert got["sum"] == pytest.approx(case["sum"], rel=1e-6)


def test_frame_count_and_shapes() -> None:
    wave = torch.zeros(32000)
    spec = linear_spectrogram(wave)
    # (samples + 2 * 704 - 2048) // 640 + 1 frames, 1025 bins; silence gives sqrt(1e-8)
    assert spec.shape == (1, 1025, (32000 + 1408 - 2048) // 640 + 1)
    assert torch.allclose(spec, torch.full_like(spec, 1e-4))
    assert linear_spectrogram(torch.zeros(2, 32000)).shape[0] == 2


def test_reference_peak_rule() -> None:
    wave = fx.spectrogram_input(0.5, 0.8)[0]
    assert torch.equal(reference_spectrogram(wave), linear_spectrogram(wave))
    assert torch.equal(reference_spectrogram(wave * 1.5), linear_spectrogram(wave * 1.5 / (0.8 * 1.5)))
    assert torch.equal(reference_spectrogram(wave * 5), linear_spectrogram(wave * 5 / 2))


def test_bad_input() -> None:
    with pytest.raises(InputError, match="too short"):
        linear_spectrogram(torch.zeros(100))
    with pytest.raises(InputError, match="mono"):
        linear_spectrogram(torch.zeros(1, 1, 4000))
