"""ERes2NetV2 speaker network: upstream key names and shapes, outputs of upstream GPT-SoVITS commit 48b1a01
(`ERes2NetV2.forward3` / `forward`) for a tiny seeded model (data/eres2net_upstream.json, made by
tools/upstream_reference/make_eres2net_reference.py)."""

from __future__ import annotations

import json
from pathlib import Path

import eres2net_fixtures as fx
import pytest
import torch

from myna.models.eres2net import ERes2NetV2, ERes2NetV2Config

DATA = Path(__file__).parent / "data"
KEYS = json.loads((DATA / "eres2net_keys.json").read_text(encoding="utf-8"))
UPSTREAM = json.loads((DATA / "eres2net_upstream.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tiny() -> ERes2NetV2:
    model = ERes2NetV2(ERes2NetV2Config(**fx.TINY_MODEL)).eval()
    model.load_state_dict(fx.seeded_weights({k: v.shape for k, v in model.state_dict().items()}), strict=True)
    return model


def shapes(model: ERes2NetV2) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("size", ["full", "tiny"])
def test_keys_and_shapes_equal_upstream(size: str) -> None:
    config = ERes2NetV2Config(**(fx.FULL_MODEL if size == "full" else fx.TINY_MODEL))
    with torch.device("meta"):
        model = ERes2NetV2(config)
    assert shapes(model) == KEYS[size]
    assert list(shapes(model)) == list(KEYS[size])  # same order too


def test_defaults_are_gpt_sovits_sv_model() -> None:
    with torch.device("meta"):
        model = ERes2NetV2()
    assert shapes(model) == KEYS["full"]
    assert model.output_dim == 20480  # SoVITS v2Pro's sv_emb Linear input


def test_speaker_vector_matches_upstream_forward3(tiny: ERes2NetV2) -> None:
    with torch.no_grad():
        out = tiny(fx.sample_fbank())
    expected = torch.tensor(UPSTREAM["forward3"])
    assert out.shape == expected.shape == (2, tiny.output_dim)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_xvector_matches_upstream_forward(tiny: ERes2NetV2) -> None:
    with torch.no_grad():
        out = tiny.xvector(fx.sample_fbank())
    torch.testing.assert_close(out, torch.tensor(UPSTREAM["forward"]), rtol=0, atol=1e-5)


def test_rows_are_independent(tiny: ERes2NetV2) -> None:
    feats = fx.sample_fbank()
    with torch.no_grad():
        both, first = tiny(feats), tiny(feats[:1])
    torch.testing.assert_close(both[:1], first, rtol=0, atol=1e-5)  # batched convs may round differently


def test_odd_lengths_and_bands() -> None:
    model = ERes2NetV2(ERes2NetV2Config(m_channels=4, feat_dim=20, num_blocks=(1, 1, 1, 1))).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 7, 20))
    assert out.shape == (1, model.output_dim) == (1, 4 * 8 * 4 * 3)
