"""HuBERT (chinese-hubert-base) as a small torch module, read from a transformers model directory.

Same state-dict keys and the same torch operations in the same order as transformers' `HubertModel`
in inference (no masking, no dropout, no attention mask), so its last hidden state equals
transformers' bit for bit (tests/features/test_hubert.py checks it) without importing
transformers, whose import alone took ~6 s of a cold `myna say` on a 2-core machine.
Weights are read in float32 whatever the file holds (as transformers 4 read them, which upstream
GPT-SoVITS was written for; HuBERT then runs in fp32 on every device).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from myna.features.hf_files import ModelDirError, assign_weights, read_config, read_weights

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}  # transformers' "gelu" is the exact (erf) GELU


@dataclass(frozen=True)
class HubertConfig:
    """The config.json fields the encoder uses; names and defaults are transformers' HubertConfig's."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_bias: bool = False
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    conv_pos_batch_norm: bool = False
    feat_proj_layer_norm: bool = True
    do_stable_layer_norm: bool = False

    @classmethod
    def from_dict(cls, config: dict[str, Any], where: str = "config.json") -> HubertConfig:
        """The fields of a config.json dict (others ignored), checked for what this module implements."""
        values = {f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config}
        for name in ("conv_dim", "conv_stride", "conv_kernel"):
            if name in values:
                values[name] = tuple(values[name])
        made = cls(**values)
        problems = []
        if made.feat_extract_norm not in ("group", "layer"):
            problems.append(f"feat_extract_norm {made.feat_extract_norm!r}")
        if made.conv_pos_batch_norm:
            problems.append("conv_pos_batch_norm")
        for name in ("hidden_act", "feat_extract_activation"):
            if getattr(made, name) not in _ACTIVATIONS:
                problems.append(f"{name} {getattr(made, name)!r}")
        if not len(made.conv_dim) == len(made.conv_stride) == len(made.conv_kernel):
            problems.append("conv_dim, conv_stride and conv_kernel of different lengths")
        if made.hidden_size % made.num_attention_heads:
            problems.append("hidden_size not a multiple of num_attention_heads")
        if problems:
            raise ModelDirError(f"{where}: a HuBERT model this myna cannot run ({'; '.join(problems)})")
        return made


class FeatureConv(nn.Module):
    """One layer of the waveform feature encoder: conv, optional norm, activation."""

    def __init__(self, config: HubertConfig, index: int) -> None:
        super().__init__()
        in_dim = config.conv_dim[index - 1] if index else 1
        out_dim = config.conv_dim[index]
        self.conv = nn.Conv1d(in_dim, out_dim, config.conv_kernel[index], config.conv_stride[index],
                              bias=config.conv_bias)
        self.norm = config.feat_extract_norm if (index == 0 or config.feat_extract_norm == "layer") else None
        if self.norm == "group":
            self.layer_norm = nn.GroupNorm(out_dim, out_dim)
        elif self.norm == "layer":
            self.layer_norm = nn.LayerNorm(out_dim)  # the module default eps, as transformers builds it
        self.activation = _ACTIVATIONS[config.feat_extract_activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T) -> (B, C_out, T')."""
        x = self.conv(x)
        if self.norm == "group":
            x = self.layer_norm(x)
        elif self.norm == "layer":
            x = self.layer_norm(x.transpose(-2, -1)).transpose(-2, -1)
        return self.activation(x)


class FeatureEncoder(nn.Module):
    """Raw waveform -> 50 frames/s of conv features."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(FeatureConv(config, i) for i in range(len(config.conv_dim)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, conv_dim[-1], frames)."""
        x = wave[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class FeatureProjection(nn.Module):
    """Conv features -> model width."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps) if config.feat_proj_layer_norm else None
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, conv_dim[-1]) -> (B, T, hidden)."""
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.projection(x)


class PositionalConv(nn.Module):
    """The convolutional relative position embedding (its weight-normed kernel computed once, at load)."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel, padding=kernel // 2,
                              groups=config.num_conv_pos_embedding_groups)
        self.trim = 1 if kernel % 2 == 0 else 0  # an even kernel with padding k/2 yields one frame too many
        self.activation = _ACTIVATIONS[config.feat_extract_activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        x = self.conv(x.transpose(1, 2))
        if self.trim:
            x = x[:, :, : -self.trim]
        return self.activation(x).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention through torch's scaled_dot_product_attention."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.head_dim = width // config.num_attention_heads
        self.k_proj, self.v_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.q_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        shape = (*x.shape[:-1], -1, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, scale=self.head_dim**-0.5, is_causal=False)
        out = out.transpose(1, 2).contiguous().reshape(*x.shape[:-1], -1).contiguous()
        return self.out_proj(out)


class FeedForward(nn.Module):
    """Position-wise MLP."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        return self.output_dense(self.activation(self.intermediate_dense(x)))


class EncoderLayer(nn.Module):
    """One transformer layer, post-norm (HuBERT base) or pre-norm (`do_stable_layer_norm`, HuBERT large)."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pre_norm = config.do_stable_layer_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        if self.pre_norm:
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(x + self.feed_forward(x))


class Encoder(nn.Module):
    """Position embedding, norm and the transformer layers."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.pos_conv_embed = PositionalConv(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.pre_norm = config.do_stable_layer_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        x = x + self.pos_conv_embed(x)
        if not self.pre_norm:
            x = self.layer_norm(x)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x) if self.pre_norm else x


class Hubert(nn.Module):
    """HuBERT's encoder: 16 kHz waveform (B, samples) -> last hidden state (B, frames, hidden)."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_extractor = FeatureEncoder(config)
        self.feature_projection = FeatureProjection(config)
        self.encoder = Encoder(config)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) float32 -> (B, frames, hidden)."""
        features = self.feature_extractor(wave).transpose(1, 2)
        return self.encoder(self.feature_projection(features))


# Weight-norm halves of the position conv, as old (weight_g/v) and new (parametrizations) files name them.
_POS_CONV = "encoder.pos_conv_embed.conv."
_WEIGHT_NORM = {"weight_g": "g", "weight_v": "v", "parametrizations.weight.original0": "g",
                "parametrizations.weight.original1": "v"}


def load_hubert(model_dir: str | Path, device: str | torch.device = "cpu") -> Hubert:
    """The HuBERT of a transformers model directory (config.json + safetensors or pytorch_model.bin), in eval mode."""
    model_dir = Path(model_dir)
    config = HubertConfig.from_dict(read_config(model_dir, "HuBERT model"), str(model_dir / "config.json"))
    with torch.device("meta"):  # no random init of weights that are about to be replaced
        model = Hubert(config)
    expected = set(model.state_dict())

    def keep(key: str) -> str | None:
        key = key.removeprefix("hubert.")  # saved from a model with a head (e.g. HubertForCTC)
        if key.startswith(_POS_CONV) and key[len(_POS_CONV):] in _WEIGHT_NORM:
            return key
        return key if key in expected else None  # as transformers, ignore the rest (masked_spec_embed, heads)

    state = read_weights(model_dir, "HuBERT", keep)
    halves = {_WEIGHT_NORM[k[len(_POS_CONV):]]: state.pop(k) for k in list(state)
              if k.startswith(_POS_CONV) and k[len(_POS_CONV):] in _WEIGHT_NORM}
    if set(halves) == {"g", "v"}:
        # the weight transformers' weight-norm parametrization computes at every call (torch._weight_norm, dim 2)
        state[_POS_CONV + "weight"] = torch._weight_norm(halves["v"].float(), halves["g"].float(), 2)
    assign_weights(model, state, model_dir, "HuBERT")
    return model.eval().to(device)

