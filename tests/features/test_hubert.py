"""myna's HuBERT module gives transformers' HubertModel output bit for bit, from the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import HubertConfig, HubertModel

from myna.features.content import HubertContentEncoder
from myna.features.hf_files import ModelDirError
from myna.features.hubert import load_hubert

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             conv_dim=(8, 8, 8), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3), num_conv_pos_embeddings=8,
             num_conv_pos_embedding_groups=4)


def _wave(seconds: float = 1.3, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(1, int(16000 * seconds), generator=torch.Generator().manual_seed(seed))


def _reference(model_dir: Path, wave: torch.Tensor) -> torch.Tensor:
    model = HubertModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    with torch.inference_mode():
        return model(wave)["last_hidden_state"]


def _saved(tmp_path: Path, safe: bool = True, seed: int = 3, **config) -> Path:
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**{**SMALL, **config})).eval()
    with torch.no_grad():  # transformers' init leaves biases and norms at 0/1: move them so every term counts
        for name, value in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "weight_g" in name or "original0" in name:
                value.add_(0.1 * torch.randn_like(value))
    model.save_pretrained(tmp_path)
    if not safe:  # transformers 5 writes safetensors only; the released files are torch pickles
        as_torch_file(tmp_path)
    return tmp_path


def as_torch_file(model_dir: Path) -> None:
    """Replace a directory's model.safetensors by the same tensors in pytorch_model.bin."""
    from safetensors.torch import load_file

    torch.save(load_file(model_dir / "model.safetensors"), model_dir / "pytorch_model.bin")
    (model_dir / "model.safetensors").unlink()


def test_tiny_set_hubert_equals_transformers(tiny_set: dict) -> None:
    wave = _wave(2.0)
    ours = HubertContentEncoder(tiny_set["hubert"]).encode(wave)
    assert torch.equal(ours, _reference(tiny_set["hubert"], wave).transpose(1, 2))


@pytest.mark.parametrize("variant", [
    {"safe": True},
    {"safe": False},  # pytorch_model.bin, as chinese-hubert-base is released
    {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True},  # the HuBERT-large layout
    {"feat_proj_layer_norm": False, "hidden_act": "relu", "num_conv_pos_embeddings": 7},
])
def test_layouts_and_file_formats_equal_transformers(tmp_path: Path, variant: dict) -> None:
    model_dir = _saved(tmp_path, **variant)
    assert (model_dir / ("model.safetensors" if variant.get("safe", True) else "pytorch_model.bin")).is_file()
    wave = _wave(0.9, seed=1)
    with torch.inference_mode():
        ours = load_hubert(model_dir)(wave)
    assert torch.equal(ours, _reference(model_dir, wave))


def test_old_weight_norm_names_and_half_precision_files_load(tmp_path: Path) -> None:
    model_dir = _saved(tmp_path, safe=False)
    state = torch.load(model_dir / "pytorch_model.bin", weights_only=True)
    prefix = "encoder.pos_conv_embed.conv."
    old = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                               "weight_v"): v for k, v in state.items()}
    assert f"{prefix}weight_g" in old and f"{prefix}weight_v" in old
    torch.save({k: v.half() for k, v in old.items()}, model_dir / "pytorch_model.bin")
    wave = _wave(0.7, seed=2)
    with torch.inference_mode():
        hidden = load_hubert(model_dir)(wave)
    assert hidden.dtype == torch.float32 and hidden.shape[-1] == SMALL["hidden_size"]
    assert all(p.dtype == torch.float32 for p in load_hubert(model_dir).parameters())


def test_incomplete_or_unsupported_directories_say_what_is_wrong(tmp_path: Path) -> None:
    model_dir = _saved(tmp_path)
    (model_dir / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    with pytest.raises(ModelDirError, match="no HuBERT weights"):
        load_hubert(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "feat_extract_norm": "batch"}))
    with pytest.raises(ModelDirError, match="feat_extract_norm 'batch'"):
        load_hubert(model_dir)
    with pytest.raises(ModelDirError, match="no such directory"):
        load_hubert(tmp_path / "missing")
