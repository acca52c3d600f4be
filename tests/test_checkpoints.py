"""Upstream GPT-SoVITS checkpoint files: reading, version detection, writing, safetensors, bad files."""

import io
import sys
import types

import pytest
import torch

from myna.checkpoints import (
    CheckpointError,
    GPTCheckpoint,
    SoVITSCheckpoint,
    read_gpt,
    read_sovits,
    write_gpt,
    write_sovits,
)

GPT_CONFIG = {"data": {"max_sec": 54}, "model": {"hidden_dim": 8, "EOS": 1024}}
SOVITS_CONFIG = {"data": {"sampling_rate": 32000}, "model": {"gin_channels": 8}}


def gpt_weights(dtype=torch.float16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "model.ar_text_embedding.word_embeddings.weight": torch.randn(732, 8, generator=g).to(dtype),
        "model.ar_predict_layer.weight": torch.randn(1025, 8, generator=g).to(dtype),
    }


def sovits_weights(phoneme_rows=732, pro=False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    weights = {
        "enc_p.text_embedding.weight": torch.randn(phoneme_rows, 4, generator=g).half(),
        "dec.conv_pre.weight": torch.randn(4, 4, 7, generator=g).half(),
        "quantizer.vq.layers.0._codebook.embed": torch.randn(1, 16, 4, generator=g).half(),
    }
    if pro:
        weights["sv_emb.weight"] = torch.randn(8, 20, generator=g).half()
    return weights


def save_upstream_style(path, payload, marker: bytes = b"PK"):
    """Write a file the way upstream's trainers do (torch.save, optionally with a 2-byte version marker)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.write_bytes(marker + buffer.getvalue()[2:])


def test_reads_upstream_gpt_and_strips_the_lightning_prefix(tmp_path):
    path = tmp_path / "voice-e15.ckpt"
    save_upstream_style(path, {"weight": gpt_weights(), "config": GPT_CONFIG, "info": "GPT-e15"})
    ckpt = read_gpt(path)
    assert set(ckpt.state_dict) == {"ar_text_embedding.word_embeddings.weight", "ar_predict_layer.weight"}
    assert ckpt.config == GPT_CONFIG and ckpt.info == "GPT-e15"
    assert ckpt.state_dict["ar_predict_layer.weight"].dtype == torch.float16


@pytest.mark.parametrize(
    ("rows", "marker", "pro", "config_version", "expected"),
    [
        (732, b"PK", False, None, "v2"),
        (322, b"PK", False, None, "v1"),
        (732, b"05", True, None, "v2Pro"),
        (732, b"06", True, None, "v2ProPlus"),
        (732, b"PK", True, "v2ProPlus", "v2ProPlus"),
        (732, b"01", False, None, "v2"),
    ],
)
def test_sovits_version_detection(tmp_path, rows, marker, pro, config_version, expected):
    config = {"model": {"version": config_version}} if config_version else SOVITS_CONFIG
    path = tmp_path / "s.pth"
    save_upstream_style(path, {"weight": sovits_weights(rows, pro), "config": config, "info": "x"}, marker)
    assert read_sovits(path).version == expected


def test_trainer_hparams_config_loads_without_upstream_code(tmp_path):
    # Upstream's trainer pickles its `utils.HParams` object as the config; build a look-alike class.
    module = types.ModuleType("utils")

    class HParams:
        def __init__(self, **kwargs):
            for key, value in kwargs.items():
                setattr(self, key, HParams(**value) if isinstance(value, dict) else value)

    HParams.__module__, HParams.__qualname__ = "utils", "HParams"
    module.HParams = HParams
    sys.modules["utils"] = module
    try:
        config = HParams(model={"gin_channels": 8, "upsample_rates": [10, 8]}, data={"sampling_rate": 32000})
        path = tmp_path / "trained.pth"
        save_upstream_style(path, {"weight": sovits_weights(), "config": config, "info": "10epoch"})
    finally:
        del sys.modules["utils"]
    ckpt = read_sovits(path)
    assert ckpt.config == {"model": {"gin_channels": 8, "upsample_rates": [10, 8]}, "data": {"sampling_rate": 32000}}


@pytest.mark.parametrize("version", ["v1", "v2", "v2Pro", "v2ProPlus"])
def test_sovits_round_trip_keeps_version_and_values(tmp_path, version):
    weights = sovits_weights(322 if version == "v1" else 732, pro="Pro" in version)
    weights["enc_q.pre.weight"] = torch.ones(2)  # the posterior encoder is never written
    ckpt = SoVITSCheckpoint(version, SOVITS_CONFIG, weights, "info")
    path = tmp_path / "out.pth"
    write_sovits(path, ckpt)
    back = read_sovits(path)
    assert back.version == version
    assert set(back.state_dict) == set(weights) - {"enc_q.pre.weight"}
    for key, value in back.state_dict.items():
        assert torch.equal(value, weights[key])
    assert path.read_bytes()[:2] != b"PK"  # a version marker, as upstream's loader expects


def test_gpt_round_trip_writes_fp16_with_prefix(tmp_path):
    state = {k.removeprefix("model."): v.float() for k, v in gpt_weights().items()}
    write_gpt(tmp_path / "g.ckpt", GPTCheckpoint(GPT_CONFIG, state, "mine"))
    raw = torch.load(tmp_path / "g.ckpt", weights_only=True)
    assert set(raw) == {"weight", "config", "info"}
    assert all(k.startswith("model.") and v.dtype == torch.float16 for k, v in raw["weight"].items())
    back = read_gpt(tmp_path / "g.ckpt")
    assert all(torch.equal(back.state_dict[k], v.half()) for k, v in state.items())


def test_full_precision_write(tmp_path):
    state = {k.removeprefix("model."): v.float() for k, v in gpt_weights().items()}
    write_gpt(tmp_path / "g.ckpt", GPTCheckpoint(GPT_CONFIG, state), half=False)
    assert read_gpt(tmp_path / "g.ckpt").state_dict["ar_predict_layer.weight"].dtype == torch.float32


def test_safetensors_round_trip(tmp_path):
    state = {k.removeprefix("model."): v for k, v in gpt_weights().items()}
    write_gpt(tmp_path / "g.safetensors", GPTCheckpoint(GPT_CONFIG, state, "st"))
    back = read_gpt(tmp_path / "g.safetensors")
    assert back.config == GPT_CONFIG and back.info == "st"
    assert all(torch.equal(back.state_dict[k], v) for k, v in state.items())
    write_sovits(tmp_path / "s.safetensors", SoVITSCheckpoint("v2Pro", SOVITS_CONFIG, sovits_weights(pro=True)))
    assert read_sovits(tmp_path / "s.safetensors").version == "v2Pro"
    with pytest.raises(CheckpointError, match="holds a sovits model"):
        read_gpt(tmp_path / "s.safetensors")


def test_wrong_kind_names_the_file_and_the_fix(tmp_path):
    gpt, sovits = tmp_path / "g.ckpt", tmp_path / "s.pth"
    save_upstream_style(gpt, {"weight": gpt_weights(), "config": GPT_CONFIG})
    save_upstream_style(sovits, {"weight": sovits_weights(), "config": SOVITS_CONFIG})
    with pytest.raises(CheckpointError, match=r"s\.pth.*SoVITS"):
        read_gpt(sovits)
    with pytest.raises(CheckpointError, match=r"g\.ckpt.*GPT"):
        read_sovits(gpt)


def test_damaged_files_give_clear_errors(tmp_path):
    good = tmp_path / "good.pth"
    save_upstream_style(good, {"weight": sovits_weights(), "config": SOVITS_CONFIG})
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"PK" + bytes(range(256)) * 10)
    text = tmp_path / "notes.pth"
    text.write_text("hello, this is not a model")
    for path in (truncated, garbage, text, tmp_path / "empty.pth", tmp_path / "missing.pth", tmp_path):
        if path.name == "empty.pth":
            path.write_bytes(b"")
        with pytest.raises(CheckpointError) as info:
            read_sovits(path)
        assert str(path) in str(info.value)


def test_unsupported_versions_are_named(tmp_path):
    path = tmp_path / "v4.pth"
    save_upstream_style(path, {"weight": sovits_weights(), "config": SOVITS_CONFIG}, marker=b"04")
    with pytest.raises(CheckpointError, match="v4 LoRA"):
        read_sovits(path)


def test_pickled_code_is_never_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    torch.save({"weight": gpt_weights(), "config": Evil()}, path)
    with pytest.raises(CheckpointError, match="could run code"):
        read_gpt(path)


def test_reads_upstream_discriminator_files(tmp_path):
    from myna.checkpoints import read_discriminator
    from myna.train.pipeline import pretrained_discriminator

    weights = {"module.discriminators.0.convs.0.weight_v": torch.ones(2, 1, 3), "discriminators.1.conv_post.bias": torch.zeros(1)}
    generator = tmp_path / "s2G2333k.pth"
    save_upstream_style(generator, {"weight": sovits_weights(), "config": SOVITS_CONFIG})
    assert pretrained_discriminator(generator) is None  # no s2D file beside it
    save_upstream_style(tmp_path / "s2D2333k.pth", {"weight": weights, "iteration": 2333})
    state = pretrained_discriminator(generator)
    assert set(state) == {"discriminators.0.convs.0.weight_v", "discriminators.1.conv_post.bias"}
    assert torch.equal(read_discriminator(tmp_path / "s2D2333k.pth")["discriminators.0.convs.0.weight_v"], torch.ones(2, 1, 3))
    with pytest.raises(CheckpointError, match="discriminator"):
        read_discriminator(generator)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import os

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    path = tmp_path / "g.ckpt"
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(CheckpointError, match="No space left"):
        write_gpt(path, GPTCheckpoint(GPT_CONFIG, {"ar_predict_layer.weight": torch.ones(2, 2)}))
    assert list(tmp_path.iterdir()) == []
