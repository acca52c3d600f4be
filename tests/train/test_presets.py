"""From-scratch presets: sizes, configs that record their encoders, codebook learning."""

from __future__ import annotations

import pytest
import torch

from myna import checkpoints
from myna.engine.loading import ModelPaths, load_synthesizer, sovits_encoders
from myna.errors import InputError
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SModel
from myna.train.codebook import ema_update, kmeans_init
from myna.train.export import export_gpt, export_sovits
from myna.train.presets import get_preset


def _params(model: torch.nn.Module) -> int:
    return sum(t.numel() for t in model.state_dict().values())


def test_small_preset_fits_the_size_budget():
    preset = get_preset("small")
    gpt, sovits = T2SModel(preset.gpt), SoVITS(preset.sovits)
    assert sovits.enc_p.ssl_proj.in_channels == 384 and sovits.sv_emb.in_features == 256
    fp16_megabytes = 2 * (_params(gpt) + _params(sovits)) / 1e6
    assert fp16_megabytes <= 60, fp16_megabytes
    assert preset.encoder_record() == {"content": "whisper-tiny.en", "speaker": "resemblyzer", "preset": "small"}


def test_config_validation_names_the_fix():
    with pytest.raises(InputError, match="hop_length"):
        SoVITSConfig(upsample_rates=(10, 8, 2, 2))
    with pytest.raises(InputError, match="positive"):
        SoVITSConfig(version="v2Pro", sv_dim=0)
    model = SoVITS(get_preset("tiny").sovits)
    with pytest.raises(InputError, match="384-channel content features"):
        model.extract_latent(torch.zeros(1, 768, 10))


def test_upstream_config_keeps_its_keys():
    config = SoVITSConfig()
    assert "ssl_dim" not in config.to_dict()["model"] and "sv_dim" not in config.to_dict()["model"]
    small = get_preset("small").sovits
    again = SoVITSConfig.from_dict(small.to_dict())
    assert (again.ssl_dim, again.sv_dim, again.freeze_quantizer) == (384, 256, False)


def test_checkpoints_record_dims_and_encoders(tmp_path, tiny_set):
    preset = get_preset("tiny")
    torch.manual_seed(0)
    record = {"myna": preset.encoder_record()}
    export_sovits(SoVITS(preset.sovits), tmp_path / "s2.pth", "t", record)
    export_gpt(T2SModel(preset.gpt), tmp_path / "s1.ckpt", "t", record)
    config = checkpoints.read_sovits(tmp_path / "s2.pth").config
    assert config["model"]["ssl_dim"] == 384 and config["model"]["sv_dim"] == 256
    assert sovits_encoders(tmp_path / "s2.pth") == {"content": "whisper-tiny.en", "speaker": "resemblyzer"}
    synth = load_synthesizer(ModelPaths(tmp_path / "s1.ckpt", tmp_path / "s2.pth", None))
    assert type(synth.content).__name__ == "WhisperContentEncoder"
    assert type(synth.speaker).__name__ == "GE2ESpeakerEmbedder"
    # upstream files name no encoders: HuBERT (and ERes2NetV2), which then must be given
    assert sovits_encoders(tiny_set["sovits"]) == {"content": "hubert", "speaker": "eres2net"}
    with pytest.raises(InputError, match="--hubert"):
        load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], None))


def test_codebook_learns_clusters_and_reseeds_dead_entries():
    from myna.models.quantizer import Codebook

    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 4, generator=gen) * 5
    data = centres[torch.randint(8, (400,), generator=gen)] + 0.05 * torch.randn(400, 4, generator=gen)
    book = Codebook(4, 16)
    kmeans_init(book, data, gen)
    assert book.inited.item() == 1
    error = (book.decode(book.encode(data)) - data).pow(2).mean()
    assert error < 0.05
    book.embed[3] = 1e6  # an entry nothing maps to dies and is re-seeded from the data
    for _ in range(200):
        ema_update(book, data, book.encode(data), gen)
    assert book.embed[3].abs().max() < 100
    assert (book.decode(book.encode(data)) - data).pow(2).mean() < 0.05
