"""The frame-rate iSTFT decoder (SoVITSConfig decoder "istft"): shapes, config and file round trips, fast modes."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from myna.engine.loading import load_sovits
from myna.engine.sovits_fast import MODES, prepare_sovits
from myna.errors import InputError
from myna.models.istft_head import ISTFTHead
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.train.export import export_sovits
from myna.train.presets import get_preset

ISTFT_16K = dict(decoder="istft", decoder_channels=32, decoder_layers=2, sampling_rate=16000, filter_length=512,
                 hop_length=320, win_length=512, segment_size=3200)


def _model(seed: int = 0) -> SoVITS:
    torch.manual_seed(seed)
    return SoVITS(replace(get_preset("tiny").sovits, **ISTFT_16K)).eval()


def _inputs(model: SoVITS) -> dict:
    gen = torch.Generator().manual_seed(1)
    c = model.config
    return {"codes": torch.randint(0, 1024, (1, 1, 9), generator=gen), "phones": torch.randint(1, 700, (1, 7), generator=gen),
            "spec": torch.rand(1, c.spec_channels, 40, generator=gen), "sv": torch.randn(1, c.sv_dim, generator=gen)}


def _decode(model: SoVITS, x: dict) -> torch.Tensor:
    return model.decode(x["codes"], x["phones"], x["spec"], noise_scale=0.0, sv_emb=x["sv"])


def test_head_turns_frames_into_hop_samples_each():
    head = ISTFTHead(16, 24, 2, n_fft=64, hop_length=16, win_length=64, gin_channels=8).eval()
    audio = head(torch.randn(2, 16, 11), g=torch.randn(2, 8, 1))
    assert audio.shape == (2, 1, 11 * 16) and torch.isfinite(audio).all() and audio.abs().max() <= 1.0


def test_a_model_with_the_head_decodes_at_its_rate():
    model = _model()
    wave = _decode(model, _inputs(model))
    assert wave.shape == (1, 1, 9 * 2 * 320)  # 25 Hz tokens, two 20-ms frames each
    assert torch.isfinite(wave).all()


def test_config_round_trips_and_upstream_configs_stay_as_they_were():
    config = replace(get_preset("tiny").sovits, **ISTFT_16K)
    again = SoVITSConfig.from_dict(config.to_dict())
    assert again == config and again.samples_per_frame == 320
    upstream = SoVITSConfig().to_dict()["model"]
    assert not {"decoder", "decoder_channels", "decoder_layers"} & set(upstream)
    with pytest.raises(InputError, match="decoder must be one of"):
        SoVITSConfig(decoder="wavenet")


def test_exported_file_loads_and_decodes_the_same(tmp_path):
    model = _model()
    x = _inputs(model)
    export_sovits(model, tmp_path / "s2.pth", "istft test", {"myna": get_preset("tiny").encoder_record()}, safetensors=True)
    loaded = load_sovits(tmp_path / "s2.safetensors").eval()
    assert loaded.config.decoder == "istft" and isinstance(loaded.dec, ISTFTHead)
    # the file is fp16: the same model up to that rounding
    torch.testing.assert_close(_decode(loaded, x), _decode(model, x), atol=2e-2, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_every_fast_mode_runs_it(mode):
    if mode == "compile":
        pytest.skip("compiling takes too long for a unit test; the bf16 head it compiles is covered")
    model, x = _model(), None
    x = _inputs(model)
    exact = _decode(model, x)
    fast = prepare_sovits(_model(), mode)
    out = _decode(fast, x)
    assert out.shape == exact.shape
    if mode in ("exact", "fp32", "nwc", "onnx"):  # no weight norm, no sample-rate convolutions: fp32 maths
        torch.testing.assert_close(out, exact, atol=1e-5, rtol=0)
    else:
        assert fast.dec.conv_pre.weight.dtype == torch.bfloat16 and fast.dec.out.weight.dtype == torch.float32
        torch.testing.assert_close(out, exact, atol=0.05, rtol=0)
