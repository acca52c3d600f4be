"""A BERT encoder (chinese-roberta-wwm-ext-large) as a small torch module, read from a transformers directory.

Same state-dict keys (without the `bert.` prefix of a masked-LM file) and the same torch operations
in the same order as transformers' `BertModel` in inference on one unpadded sentence, so each
layer's output equals transformers' bit for bit (tests/features/test_bert.py checks it) without
importing transformers. Only the layers up to the one whose output the features are (upstream takes
`hidden_states[-3]`) are built and read: the last two layers, the pooler and the language-model head
never run (on chinese-roberta-wwm-ext-large, 32 characters: 281 -> 221 ms at 2 threads, 100 MB less).
Weights are read in float32 whatever the file holds (as transformers 4 read them).
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
FEATURE_LAYER = -3  # upstream GPT-SoVITS's features: hidden_states[-3]


@dataclass(frozen=True)
class BertConfig:
    """The config.json fields the encoder uses; names and defaults are transformers' BertConfig's."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    model_type: str = "bert"
    position_embedding_type: str = "absolute"

    @classmethod
    def from_dict(cls, config: dict[str, Any], where: str = "config.json") -> BertConfig:
        """The fields of a config.json dict (others ignored), checked for what this module implements."""
        made = cls(**{f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config})
        problems = []
        if made.model_type != "bert":
            problems.append(f"model_type {made.model_type!r} (a BERT is expected, e.g. chinese-roberta-wwm-ext-large)")
        if made.position_embedding_type != "absolute":
            problems.append(f"position_embedding_type {made.position_embedding_type!r}")
        if made.hidden_act not in _ACTIVATIONS:
            problems.append(f"hidden_act {made.hidden_act!r}")
        if made.hidden_size % made.num_attention_heads:
            problems.append("hidden_size not a multiple of num_attention_heads")
        if made.num_hidden_layers < -FEATURE_LAYER - 1:
            problems.append(f"{made.num_hidden_layers} layers (the features are hidden_states[{FEATURE_LAYER}])")
        if problems:
            raise ModelDirError(f"{where}: a BERT this myna cannot run ({'; '.join(problems)})")
        return made

    @property
    def feature_layers(self) -> int:
        """Layers to run for hidden_states[FEATURE_LAYER] (hidden_states[0] is the embeddings' output)."""
        return self.num_hidden_layers + 1 + FEATURE_LAYER


class Embeddings(nn.Module):
    """Word + token-type + absolute position embeddings, then LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, hidden); the sums in transformers' order (float addition does not associate)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(positions))


class SelfAttention(nn.Module):
    """Multi-head self-attention through torch's scaled_dot_product_attention (no mask: one unpadded sentence)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.head_size = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden), before the output projection."""
        shape = (*x.shape[:-1], -1, self.head_size)
        q = self.query(x).view(shape).transpose(1, 2)
        k = self.key(x).view(shape).transpose(1, 2)
        v = self.value(x).view(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, scale=self.head_size**-0.5, is_causal=False)
        return out.transpose(1, 2).contiguous().reshape(*x.shape[:-1], -1).contiguous()


class DenseNorm(nn.Module):
    """Projection, residual sum, LayerNorm (the output half of attention and of the MLP)."""

    def __init__(self, config: BertConfig, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """LayerNorm(dense(x) + residual)."""
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    """Self-attention and its output block (keys `attention.self.*`, `attention.output.*`)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = SelfAttention(config)
        self.output = DenseNorm(config, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        return self.output(self.self(x), x)


class Intermediate(nn.Module):
    """The MLP's widening projection and activation."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, intermediate)."""
        return self.activation(self.dense(x))


class Layer(nn.Module):
    """One post-norm transformer layer."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = DenseNorm(config, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        x = self.attention(x)
        return self.output(self.intermediate(x), x)


class LayerStack(nn.Module):
    """The transformer layers (keys `encoder.layer.N.*`)."""

    def __init__(self, config: BertConfig, layers: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(layers))


class BertEncoder(nn.Module):
    """Embeddings and the first `layers` transformer layers of a BERT: ids -> that layer's hidden states."""

    def __init__(self, config: BertConfig, layers: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = LayerStack(config, config.feature_layers if layers is None else layers)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, hidden) output of the last built layer."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.encoder.layer:
            x = layer(x)
        return x


def load_bert_encoder(model_dir: str | Path, device: str | torch.device = "cpu") -> BertEncoder:
    """The feature layers of the BERT in a transformers directory (config.json + safetensors or pytorch_model.bin)."""
    model_dir = Path(model_dir)
    config = BertConfig.from_dict(read_config(model_dir, "BERT model"), str(model_dir / "config.json"))
    with torch.device("meta"):  # no random init of weights that are about to be replaced
        model = BertEncoder(config)
    expected = set(model.state_dict())

    def keep(key: str) -> str | None:
        key = key.removeprefix("bert.")  # a masked-LM file (BertForMaskedLM) nests the encoder under bert.
        return key if key in expected else None  # the rest: later layers, pooler, heads, position_ids

    assign_weights(model, read_weights(model_dir, "BERT", keep), model_dir, "BERT")
    return model.eval().to(device)
