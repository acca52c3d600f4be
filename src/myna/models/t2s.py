"""Text-to-semantic GPT: phonemes + BERT features + prompt tokens -> semantic-token logits.

Architecture of upstream GPT-SoVITS's AR model (s1, ``Text2SemanticDecoder``): a post-norm
transformer encoder run as a decoder. Text positions attend to all text positions (never to
audio); audio positions attend to all text and causally to audio. Both streams use sine positions
scaled by a learned ``alpha`` and counted from zero each.

State-dict keys equal upstream's ``Text2SemanticDecoder`` keys. Upstream ``.ckpt`` files store
the Lightning module, so every key there has a leading ``model.`` which the checkpoint loader
strips (``model.h.layers.0.linear1.weight`` -> ``h.layers.0.linear1.weight``). The KV cache and
the sine tables are non-persistent buffers and never appear in a state dict.

Inference follows gpt-fast: ``setup_cache`` allocates (B, H, max_len, D) key/value buffers once,
``prefill`` runs the prompt and fills the cache, ``decode_step`` feeds one token and writes one
cache slot in place. ``forward`` is the cache-free full-sequence pass (training, tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from myna.errors import InputError

BERT_DIM = 1024  # width of the Chinese BERT features upstream projects in (hard-wired there too)
MAX_POSITIONS = 4000  # rows of upstream's sine tables; longer streams cannot be positioned
LAYER_NORM_EPS = 1e-5


@dataclass
class T2SConfig:
    """Model section of upstream's s1 config (``s1longer-v2.yaml``) plus ``data.max_sec``."""

    vocab_size: int = 1025
    phoneme_vocab_size: int = 732
    embedding_dim: int = 512
    hidden_dim: int = 512
    head: int = 16
    linear_units: int = 2048  # kept for round trips; upstream ignores it (FFN width is 4 * hidden_dim)
    n_layer: int = 24
    dropout: float = 0.0
    EOS: int = 1024  # upstream's config key (upper case)
    random_bert: int = 0
    max_sec: int = 54  # from the config's ``data`` section: generation stops after 50 * max_sec tokens

    def __post_init__(self) -> None:
        if self.EOS != self.vocab_size - 1:
            raise InputError(f"T2S config: EOS ({self.EOS}) must be vocab_size - 1 ({self.vocab_size - 1}).")
        if self.embedding_dim != self.hidden_dim:
            raise InputError(
                f"T2S config: embedding_dim ({self.embedding_dim}) must equal hidden_dim ({self.hidden_dim})."
            )
        if self.hidden_dim % self.head:
            raise InputError(f"T2S config: hidden_dim ({self.hidden_dim}) is not divisible by head ({self.head}).")

    @property
    def ffn_dim(self) -> int:
        """Feed-forward width actually built (upstream uses 4 * hidden_dim, not linear_units)."""
        return 4 * self.hidden_dim

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> T2SConfig:
        """Build from an upstream config dict: the whole file ({'model', 'data', ...}) or its model section."""
        model = config.get("model", config)
        if not isinstance(model, Mapping):
            raise InputError("T2S config: 'model' must be a mapping of model settings.")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in model.items() if k in names and k != "max_sec"}
        data = config.get("data")
        if isinstance(data, Mapping) and "max_sec" in data:
            values["max_sec"] = data["max_sec"]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Upstream layout: {'model': {...}, 'data': {'max_sec': ...}}."""
        model = asdict(self)
        max_sec = model.pop("max_sec")
        return {"model": model, "data": {"max_sec": max_sec}}


class TokenEmbedding(nn.Module):
    """Embedding table under upstream's ``word_embeddings`` key."""

    def __init__(self, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(num_tokens, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, dim)."""
        return self.word_embeddings(tokens)


def sine_table(num_positions: int, dim: int) -> torch.Tensor:
    """(positions, dim) table: sin on even channels, cos on odd ones, float32 like upstream."""
    position = torch.arange(0, num_positions, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)
    return table


class SinePositions(nn.Module):
    """Adds ``alpha * sine_table[start : start + T]`` to its input; ``alpha`` is learned."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))
        self.register_buffer("table", sine_table(MAX_POSITIONS, dim), persistent=False)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """(B, T, dim) -> same, positioned from ``start``."""
        end = start + x.shape[1]
        if end > MAX_POSITIONS:
            raise InputError(f"T2S input too long: position {end} exceeds the model's {MAX_POSITIONS}.")
        return x + self.alpha * self.table[start:end].to(x.dtype)

    def at(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """(B, 1, dim) -> same, positioned at the (1,)-shaped index tensor ``position``."""
        return x + self.alpha * self.table[position].to(x.dtype)


class KVCache(nn.Module):
    """Static per-layer key/value buffers of shape (B, H, max_len, head_dim), written in place."""

    def __init__(self, batch: int, heads: int, max_len: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        super().__init__()
        shape = (batch, heads, max_len, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write (B, H, T, D) ``k``/``v`` at cache slots ``positions`` (T,); return the full buffers.

        ``positions`` shaped (B, 1) writes each row's single step at that row's own slot. ``k``/``v`` are
        rounded to the cache's dtype where it is narrower.
        """
        k, v = k.to(self.k_cache.dtype), v.to(self.v_cache.dtype)
        if positions.dim() == 2:
            index = positions.view(-1, 1, 1, 1).expand(-1, k.shape[1], 1, k.shape[3])
            self.k_cache.scatter_(2, index, k)
            self.v_cache.scatter_(2, index, v)
            return self.k_cache, self.v_cache
        self.k_cache.index_copy_(2, positions, k)
        self.v_cache.index_copy_(2, positions, v)
        return self.k_cache, self.v_cache


class SelfAttention(nn.Module):
    """Multi-head self-attention with a packed q/k/v projection (``in_proj_*``) like nn.MultiheadAttention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.kv_cache: KVCache | None = None
        self.in_proj: nn.Module | None = None  # set by engine.precision (e.g. int8) in place of in_proj_weight
        self.dropout = 0.0  # training only (see T2SModel.set_train_dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache_pos: torch.Tensor | None = None,
                attend_len: int | list[int] | None = None) -> torch.Tensor:
        """Attend ``x`` (B, T, dim); with ``cache_pos`` also store k/v and attend over the cache.

        ``mask`` is boolean, True where attention is allowed. A prefill passes ``cache_pos`` =
        arange(T) and attends over its own keys; a decode step (T = 1) attends over the cache,
        either its first ``attend_len`` slots (no mask needed) or all slots under ``mask``. A list
        ``attend_len`` gives each row its own length (rows at different positions, batched decoding).
        """
        batch, length, dim = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias) if self.in_proj is None else self.in_proj(x)
        q, k, v = qkv.chunk(3, dim=-1)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        if cache_pos is not None:
            if self.kv_cache is None:
                raise RuntimeError("T2S KV cache missing: call setup_cache(batch, max_len) first")
            k_all, v_all = self.kv_cache.update(cache_pos, k, v)
            if length == 1:
                k, v = k_all, v_all
                if isinstance(attend_len, list):  # row by row: each row computes exactly what it would alone
                    out = torch.cat([F.scaled_dot_product_attention(q[i : i + 1], k[i : i + 1, :, :n].to(q.dtype),
                                                                    v[i : i + 1, :, :n].to(q.dtype))
                                     for i, n in enumerate(attend_len)])
                    return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))
                if attend_len is not None:
                    k, v = k[:, :, :attend_len], v[:, :, :attend_len]
                k, v = k.to(q.dtype), v.to(q.dtype)  # a no-op unless the cache is narrower (kv_dtype)
        if self.dropout and self.training:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class TransformerLayer(nn.Module):
    """Post-norm block: x = norm1(x + attn(x)); x = norm2(x + linear2(relu(linear1(x))))."""

    def __init__(self, dim: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache_pos: torch.Tensor | None = None,
                attend_len: int | list[int] | None = None) -> torch.Tensor:
        """(B, T, dim) -> (B, T, dim)."""
        p = self.self_attn.dropout if self.training else 0.0
        if p:  # training: dropout where upstream's layers have it (attention weights, both residual branches, FFN)
            x = self.norm1(x + F.dropout(self.self_attn(x, mask), p, True))
            return self.norm2(x + F.dropout(self.linear2(F.dropout(F.relu(self.linear1(x)), p, True)), p, True))
        x = self.norm1(x + self.self_attn(x, mask, cache_pos, attend_len))
        # a swapped-in projection (myna.engine.int8_linear.Int8Linear) may fuse the ReLU into its kernel
        fused = getattr(self.linear1, "forward_relu", None)
        hidden = fused(x) if fused is not None else F.relu(self.linear1(x))
        return self.norm2(x + self.linear2(hidden))


class LayerStack(nn.Module):
    """Holds the blocks under ``layers`` so keys read ``h.layers.N...`` as upstream's."""

    def __init__(self, layers: list[TransformerLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache_pos: torch.Tensor | None = None,
                attend_len: int | list[int] | None = None) -> torch.Tensor:
        """Run every block in order."""
        for layer in self.layers:
            x = layer(x, mask, cache_pos, attend_len)
        return x


def prefix_causal_mask(text_len: int, audio_len: int, device: torch.device | None = None) -> torch.Tensor:
    """(S, S) boolean mask, True = may attend: text sees text; audio sees text and earlier audio."""
    total = text_len + audio_len
    allowed = torch.ones(total, total, dtype=torch.bool, device=device).tril()
    allowed[:, :text_len] = True
    allowed[:text_len, text_len:] = False
    return allowed


class T2SModel(nn.Module):
    """The text-to-semantic GPT (upstream ``Text2SemanticDecoder``, inference and full-sequence parts)."""

    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_dim
        self.bert_proj = nn.Linear(BERT_DIM, dim)
        self.ar_text_embedding = TokenEmbedding(config.phoneme_vocab_size, dim)
        self.ar_text_position = SinePositions(dim)
        self.ar_audio_embedding = TokenEmbedding(config.vocab_size, dim)
        self.ar_audio_position = SinePositions(dim)
        self.h = LayerStack([TransformerLayer(dim, config.head, config.ffn_dim) for _ in range(config.n_layer)])
        self.ar_predict_layer = nn.Linear(dim, config.vocab_size, bias=False)
        # the KV cache's dtype where it differs from the activations' (None: the same); myna.engine.precision sets
        # float16 for the int8 C decode step, whose attention then reads half the bytes
        self.kv_dtype: torch.dtype | None = None

    def set_train_dropout(self, p: float) -> T2SModel:
        """Dropout used in train mode only (upstream trains with 0.1 whatever its config says; eval ignores it)."""
        for layer in self.h.layers:
            layer.self_attn.dropout = p
        return self

    # -- embeddings -----------------------------------------------------------------------------

    def embed_text(self, phones: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """(B, Tx) phoneme ids + (B, 1024, Tx) BERT features -> (B, Tx, dim) positioned text."""
        if bert.shape[-1] != phones.shape[-1] or bert.shape[1] != BERT_DIM:
            raise InputError(
                f"T2S input: BERT features {tuple(bert.shape)} do not match phonemes {tuple(phones.shape)} "
                f"(expected (batch, {BERT_DIM}, {phones.shape[-1]}))."
            )
        x = self.ar_text_embedding(phones) + self.bert_proj(bert.transpose(1, 2))
        return self.ar_text_position(x)

    def embed_audio(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """(B, Ty) semantic ids -> (B, Ty, dim), positioned from audio position ``start``."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), start)

    def _inputs(self, phones: torch.Tensor, bert: torch.Tensor,
                semantic: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        text = self.embed_text(phones, bert)
        if semantic is None or semantic.shape[-1] == 0:
            stream = text
            audio_len = 0
        else:
            stream = torch.cat([text, self.embed_audio(semantic)], dim=1)
            audio_len = semantic.shape[-1]
        return stream, prefix_causal_mask(text.shape[1], audio_len, device=text.device)

    # -- full sequence (no cache) ---------------------------------------------------------------

    def forward(self, phones: torch.Tensor, bert: torch.Tensor, semantic: torch.Tensor | None) -> torch.Tensor:
        """Logits (B, Ty + 1, vocab) predicting audio tokens 0..Ty from the last text position on."""
        stream, mask = self._inputs(phones, bert, semantic)
        hidden = self.h(stream, mask)
        return self.ar_predict_layer(hidden[:, phones.shape[-1] - 1 :])

    def forward_train(self, phones: torch.Tensor, phone_lengths: torch.Tensor, bert: torch.Tensor,
                      semantic: torch.Tensor, semantic_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced training pass on a right-padded batch: (logits (B, Ty + 1, vocab), targets (B, Ty + 1)).

        Targets are the semantic tokens, then EOS at each item's length, then -100 (ignored) over the
        padding. Padded text and audio positions are masked as attention keys, so a padded item sees
        exactly what it would see alone; otherwise the masks are `forward`'s (upstream's training masks).
        """
        batch, audio_len = semantic.shape
        steps = torch.arange(audio_len + 1, device=semantic.device).unsqueeze(0)
        valid_audio = steps[:, :audio_len] < semantic_lengths.unsqueeze(1)
        tokens = torch.where(valid_audio, semantic, torch.full_like(semantic, self.config.EOS))
        targets = torch.cat([tokens, torch.full_like(tokens[:, :1], self.config.EOS)], dim=1)
        targets = torch.where(steps < semantic_lengths.unsqueeze(1), targets, torch.full_like(targets, -100))
        targets = torch.where(steps == semantic_lengths.unsqueeze(1), torch.full_like(targets, self.config.EOS), targets)
        stream, mask = self._inputs(phones, bert, tokens)
        text_steps = torch.arange(phones.shape[1], device=phones.device).unsqueeze(0)
        valid_keys = torch.cat([text_steps < phone_lengths.unsqueeze(1), valid_audio], dim=1)
        hidden = self.h(stream, mask.unsqueeze(0) & valid_keys.view(batch, 1, 1, -1))
        # the first token is predicted at each item's own last phoneme, not at the batch's last (padded) text step
        last_phone = hidden[torch.arange(batch, device=hidden.device), phone_lengths.to(hidden.device) - 1]
        return self.ar_predict_layer(torch.cat([last_phone.unsqueeze(1), hidden[:, phones.shape[-1] :]], dim=1)), targets

    # -- cached inference -----------------------------------------------------------------------

    def setup_cache(self, batch: int, max_len: int, device: torch.device | None = None,
                    dtype: torch.dtype | None = None) -> None:
        """Allocate static (batch, heads, max_len, head_dim) key/value buffers in every layer."""
        device = self.ar_audio_embedding.word_embeddings.weight.device if device is None else device
        dtype = dtype or self.cache_dtype()
        head_dim = self.config.hidden_dim // self.config.head
        for layer in self.h.layers:
            layer.self_attn.kv_cache = KVCache(batch, self.config.head, max_len, head_dim, dtype, device)

    def cache_dtype(self) -> torch.dtype:
        """The dtype `setup_cache` allocates: ``kv_dtype``, else the embeddings' (a float tensor in every precision)."""
        return self.kv_dtype or self.ar_audio_embedding.word_embeddings.weight.dtype

    def cache_shape(self) -> tuple[int, int] | None:
        """(batch, max_len) of the allocated cache, or None before ``setup_cache`` or when the cache is not in the
        dtype a new one would have (``kv_dtype`` changed since)."""
        cache = self.h.layers[0].self_attn.kv_cache if len(self.h.layers) else None
        if cache is None or cache.k_cache.dtype != self.cache_dtype():
            return None
        return cache.k_cache.shape[0], cache.k_cache.shape[2]

    def prefill(self, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        """Run text (+ prompt tokens, None = ref-free) into cache slots 0..S-1; logits (B, vocab) of the next token."""
        stream, mask = self._inputs(phones, bert, prompt)
        shape = self.cache_shape()
        if shape is None or shape[1] < stream.shape[1] or shape[0] != stream.shape[0]:
            raise RuntimeError(f"T2S KV cache {shape} cannot hold a prompt of shape {tuple(stream.shape[:2])}")
        positions = torch.arange(stream.shape[1], device=stream.device)
        hidden = self.h(stream, mask, positions)
        return self.ar_predict_layer(hidden[:, -1])

    def decode_step(self, tokens: torch.Tensor, cache_pos: torch.Tensor, audio_pos: torch.Tensor,
                    attend_len: int | list[int] | None = None) -> torch.Tensor:
        """Feed (B, 1) tokens at cache slot / audio position (both (1,) long tensors); logits (B, vocab).

        With ``attend_len`` (= cache_pos + 1) attention reads only the filled slots: the fastest
        eager path, numerically upstream's. Without it, attention spans the whole static cache under
        a mask, so every step has the same shapes (for torch.compile / CUDA graphs).
        Rows at different positions (batched decoding): (B,) ``cache_pos`` / ``audio_pos`` and a list
        of B ``attend_len`` (each row's cache_pos + 1).
        """
        if isinstance(attend_len, list):
            x = self.ar_audio_position.at(self.ar_audio_embedding(tokens), audio_pos.view(-1, 1))
            return self.ar_predict_layer(self.h(x, None, cache_pos.view(-1, 1), attend_len)[:, -1])
        x = self.ar_audio_position.at(self.ar_audio_embedding(tokens), audio_pos)
        mask = None
        if attend_len is None:
            cache = self.h.layers[0].self_attn.kv_cache
            if cache is None:
                raise RuntimeError("T2S KV cache missing: call setup_cache(batch, max_len) first")
            slots = torch.arange(cache.k_cache.shape[2], device=x.device)
            mask = (slots <= cache_pos).view(1, 1, 1, -1)
        hidden = self.h(x, mask, cache_pos, attend_len)
        return self.ar_predict_layer(hidden[:, -1])
