"""SpeakerEncoder against upstream GPT-SoVITS commit 48b1a01 `sv.SV.compute_embedding3` (fp32) with full-size
seeded ERes2NetV2 weights (data/speaker_upstream.json, made by tools/upstream_reference/make_eres2net_reference.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from myna.audio.io import resample_sinc
from myna.checkpoints import CheckpointError
from myna.errors import InputError
from myna.features.speaker import SpeakerEncoder
from myna.models.eres2net import ERes2NetV2, ERes2NetV2Config

# the weight and audio recipes are shared with the script that ran upstream (tests/models/eres2net_fixtures.py)
_SPEC = importlib.util.spec_from_file_location(
    "eres2net_fixtures", Path(__file__).parents[1] / "models" / "eres2net_fixtures.py"
)
fx = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fx)

UPSTREAM = json.loads((Path(__file__).parent / "data" / "speaker_upstream.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def full_state() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in ERes2NetV2().state_dict().items()}
    return fx.seeded_weights(shapes)


@pytest.fixture(scope="module")
def encoder(full_state: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> SpeakerEncoder:
    path = tmp_path_factory.mktemp("sv") / "pretrained_eres2netv2w24s4ep4.ckpt"
    torch.save(full_state, path)  # a plain state dict, as the released file
    return SpeakerEncoder.from_file(path)


def test_matches_upstream_compute_embedding3(encoder: SpeakerEncoder) -> None:
    out = encoder.embed(fx.sample_audio(2, 4000))
    assert list(out.shape) == UPSTREAM["shape"] == [2, encoder.dim] == [2, 20480]
    for row, ref in zip(out, UPSTREAM["rows"], strict=True):
        # upstream ran on an AVX-512 CPU; other SIMD widths sum the deep convolutions in other orders
        # (a 2-core AVX2 CPU: 1 of 1,576 values 1.03e-5 off, all others within 1e-5)
        torch.testing.assert_close(row[:: ref["stride"]], torch.tensor(ref["values"]), rtol=0, atol=2e-5)
        assert row.double().sum().item() == pytest.approx(ref["sum"], rel=1e-5)
        assert row.double().abs().sum().item() == pytest.approx(ref["abs_sum"], rel=1e-5)


def test_single_clip_and_resampling(encoder: SpeakerEncoder) -> None:
    audio = fx.sample_audio(1, 800)
    assert torch.equal(encoder.embed(audio[0]), encoder.embed(audio))
    resampled = resample_sinc(fx.sample_audio(1, 1600), 32000, 16000)
    assert torch.equal(encoder.embed(fx.sample_audio(1, 1600), rate=32000), encoder.embed(resampled))


def test_rejects_bad_audio(encoder: SpeakerEncoder) -> None:
    for audio in (torch.zeros(1, 300), torch.zeros(2, 1, 800), torch.zeros(0, 800), torch.zeros(800, dtype=torch.long)):
        with pytest.raises(InputError):
            encoder.embed(audio)


def test_fp16_file_loads(full_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = tmp_path / "half.ckpt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in full_state.items()}, path)
    model = SpeakerEncoder.from_file(path).model
    assert model.conv1.weight.dtype == torch.float32
    torch.testing.assert_close(model.conv1.weight, full_state["conv1.weight"].half().float())


def test_wrong_files_raise_checkpoint_errors(full_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    cases = {
        "missing.ckpt": None,
        "garbage.ckpt": b"not a checkpoint at all",
        "sovits.ckpt": {"weight": {"enc_p.x": torch.zeros(1)}, "config": {}},
        "fewer.ckpt": {k: v for k, v in full_state.items() if k.startswith("layer1.")},
        "tiny.ckpt": fx.seeded_weights({k: v.shape for k, v in ERes2NetV2(ERes2NetV2Config(**fx.TINY_MODEL)).state_dict().items()}),
    }
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            torch.save(content, path)
        with pytest.raises(CheckpointError, match=name):
            SpeakerEncoder.from_file(path)
