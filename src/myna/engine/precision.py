"""Precision modes for the T2S GPT, applied to a loaded fp32 model in place.

    fp32  exact: the loaded weights as they are (numerically upstream's tokens)
    bf16  CPU: every projection's weight in bfloat16 (oneDNN-packed, AVX-512 BF16) and its input
          rounded to bf16; norms, attention, KV cache and logits stay fp32 (bf16 attention is slower there).
          On CPUs without native bf16 (``native_bf16``) the products run unpacked and slower than fp32.
          CUDA: weights, activations and KV cache in bfloat16; logits come back in fp32
    int8  every transformer and logit projection as an int8 per-channel weight with dynamic
          (per-call) int8 activations (x86/fbgemm kernels; 7-bit weights on CPUs without AVX-512
          VNNI, see ``int8_weight_levels``); the rest, KV cache included, stays fp32
    fp16  weights, activations and KV cache in float16 (CUDA only)
    auto  the default fast mode for the device: see ``resolve_precision``

The decoding loop never needs to know: projections are swapped for modules with the same call
signature, the text features are cast on the way in and logits cast back to fp32 on the way out.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from myna.config import PRECISIONS
from myna.engine.int8_linear import Int8Linear, int8_weight_levels  # noqa: F401 - int8_weight_levels re-exported
from myna.errors import InputError
from myna.models.t2s import T2SModel

CPU_AUTO = "int8"  # measured with benchmarks/engine.py --quality: see resolve_precision
CUDA_AUTO = "bf16"


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 matrix products run natively on `device`.

    CPU: oneDNN's bf16 kernels need AVX-512 BF16 or AMX; on other CPUs bf16 is emulated and far
    slower than fp32 (a SoVITS training step of the small preset: 38 s against 5.1 s on a 2-core AVX2
    CPU). CUDA: the GPU's own report.
    """
    kind = torch.device(device).type
    if kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return True


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """The concrete mode for ``precision`` on ``device`` ("auto": int8 on CPU, bf16 on CUDA)."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "auto":
        return CUDA_AUTO if kind == "cuda" else CPU_AUTO
    if precision == "fp16" and kind != "cuda":
        raise InputError("precision fp16 needs a CUDA device; on CPU use bf16 or int8")
    if precision == "int8" and kind != "cpu":
        raise InputError("precision int8 runs on CPU only; on a GPU use bf16 or fp16")
    return precision


class CastIn(nn.Module):
    """Wraps a projection: casts its input to the projection's dtype (fp32 features into a bf16 model)."""

    def __init__(self, inner: nn.Linear) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` in the inner layer's dtype."""
        return self.inner(x.to(self.inner.weight.dtype))


class FloatOut(nn.Module):
    """Wraps a projection: returns fp32 whatever the dtype it computes in (logits for sampling)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x``; the result as float32."""
        return self.inner(x).float()


class Bf16Linear(nn.Module):
    """fp32 in, fp32 out, the product in bf16: weight stored bf16 (oneDNN-packed once where available)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        weight = weight.detach().to(torch.bfloat16)
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.bfloat16), persistent=False)
        # oneDNN's packed bf16 kernels refuse CPUs without AVX-512 (BW/VL/DQ) or AVX-NE-CONVERT
        self.packed = (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
                       and native_bf16("cpu"))
        self.register_buffer("weight", torch.ops.mkldnn._reorder_linear_weight(weight, 1) if self.packed else weight,
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out) float32."""
        x = x.to(torch.bfloat16)
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "").float()
        return F.linear(x, self.weight, self.bias).float()

    def extra_repr(self) -> str:
        """Shape, like nn.Linear's."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bf16"


def int8_layers(model: nn.Module) -> list[Int8Linear]:
    """The int8 projections of a model prepared with precision int8 (empty for other modes)."""
    return [module for module in model.modules() if isinstance(module, Int8Linear)]


def _swap_projections(model: T2SModel, linear) -> None:
    """Replace every projection the decoding runs (attention, feed-forward, logits) by ``linear(name, weight, bias)``.

    `name` is the new module's name in the model, e.g. ``h.layers.0.self_attn.in_proj``.
    """
    for i, layer in enumerate(model.h.layers):
        attn, at = layer.self_attn, f"h.layers.{i}."
        attn.in_proj = linear(at + "self_attn.in_proj", attn.in_proj_weight, attn.in_proj_bias)
        attn.out_proj = linear(at + "self_attn.out_proj", attn.out_proj.weight, attn.out_proj.bias)
        layer.linear1 = linear(at + "linear1", layer.linear1.weight, layer.linear1.bias)
        layer.linear2 = linear(at + "linear2", layer.linear2.weight, layer.linear2.bias)
        del attn.in_proj_weight, attn.in_proj_bias  # the fp32 copies are dead weight now
        attn.in_proj_weight = attn.in_proj_bias = None
    model.ar_predict_layer = linear("ar_predict_layer", model.ar_predict_layer.weight, None)


def _to_int8(model: T2SModel, quantized: Mapping[str, tuple] | None) -> None:
    if "x86" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "x86"
    elif "fbgemm" not in torch.backends.quantized.supported_engines:
        raise InputError("precision int8 needs torch's x86/fbgemm quantized kernels, missing from this build")
    if quantized is None:
        _swap_projections(model, lambda name, weight, bias: Int8Linear(weight, bias))
        return

    def stored(name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> Int8Linear:
        values, scales, stored_bias = quantized[name]
        if tuple(values.shape) != tuple(weight.shape) or (bias is None) != (stored_bias is None):
            raise ValueError(f"stored int8 weights of {name} do not fit its weight {tuple(weight.shape)}")
        return Int8Linear.from_quantized(values, scales, stored_bias)

    _swap_projections(model, stored)


def _to_half(model: T2SModel, dtype: torch.dtype) -> None:
    model.to(dtype)
    model.bert_proj = CastIn(model.bert_proj)
    model.ar_predict_layer = FloatOut(model.ar_predict_layer)


def precision_of(model: T2SModel) -> str:
    """The mode ``prepare_gpt`` left ``model`` in ("fp32" for an untouched model)."""
    return getattr(model, "precision", "fp32")


def prepare_gpt(model: T2SModel, precision: str = "fp32", device: torch.device | str | None = None,
                int8_weights: Mapping[str, tuple] | None = None) -> T2SModel:
    """Put a loaded fp32 GPT (eval mode) into ``precision`` in place and return it; drops its KV cache.

    ``int8_weights``: for int8, every projection's ``Int8Linear.quantized()`` by module name, from an
    earlier preparation of the same weights (myna.engine.int8_cache); its projections' own weights
    are then not read.
    """
    if device is None:
        device = model.ar_audio_embedding.word_embeddings.weight.device
    mode = resolve_precision(precision, device)
    current = precision_of(model)
    if current == mode:
        return model
    if current != "fp32":
        raise InputError(f"the GPT is already in {current}; load it again to switch to {mode}")
    model.eval()
    model.kv_dtype = None  # the decode step in use decides it again (FlatDecodeStep: half floats for the int8 C step)
    for layer in model.h.layers:
        layer.self_attn.kv_cache = None  # re-allocated in the new dtype by the next decode
    if mode == "int8":
        _to_int8(model, int8_weights)
    elif mode == "bf16" and torch.device(device).type == "cpu":
        # bf16 attention and norms are slower than fp32 on CPU
        _swap_projections(model, lambda name, weight, bias: Bf16Linear(weight, bias))
    elif mode == "bf16":
        _to_half(model, torch.bfloat16)
    elif mode == "fp16":
        _to_half(model, torch.float16)
    model.precision = mode
    return model


def compile_decode_step(model: T2SModel, mode: str | None = None) -> T2SModel:
    """Route ``model.decode_step`` through torch.compile (inductor) over the fixed-shape masked path.

    Optional: on the 2-core CPU it compiled in ~80 s and won only ~6% in fp32, so nothing enables it
    by default. Batched calls (a list ``attend_len``) stay eager.
    """
    eager = type(model).decode_step.__get__(model)
    compiled = torch.compile(lambda tokens, cache_pos, audio_pos: eager(tokens, cache_pos, audio_pos, None),
                             mode=mode, dynamic=None)

    def decode_step(tokens, cache_pos, audio_pos, attend_len=None):
        if isinstance(attend_len, list):
            return eager(tokens, cache_pos, audio_pos, attend_len)
        return compiled(tokens, cache_pos, audio_pos)

    model.decode_step = decode_step
    return model


def _projection(module: nn.Module, relu: bool = False):
    """A projection module as a bare callable: an Int8Linear's kernel (ReLU fused), else the module (+ ReLU)."""
    if isinstance(module, Int8Linear):
        return module.function(relu)
    if isinstance(module, nn.Linear):
        module = functools.partial(_linear, module)  # nn.Linear.__call__ costs more than the product at one row
    return (lambda x: F.relu(module(x))) if relu else module


def _linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, module.weight, module.bias)


def _packed_qkv(attn: nn.Module):
    """The q/k/v projection of an attention block: its swapped-in module, else its fp32 packed weight."""
    if attn.in_proj is not None:
        return _projection(attn.in_proj)
    return lambda x: F.linear(x, attn.in_proj_weight, attn.in_proj_bias)


class FlatDecodeStep:
    """``decode_step`` for one sequence on CPU, with the module tree flattened into one loop of tensor ops.

    Same kernels on the same values as ``T2SModel.decode_step`` with an int ``attend_len`` (so the
    same logits, bit for bit, in every precision), minus the per-module Python calls, shape checks
    and index tensors: on the full-size v2 GPT that overhead was about a sixth of an int8 step.
    Int8 feed-forwards use the fused linear+ReLU kernel. Weights and norms are read from the modules
    at every call (new weights or a move need no rebuild). Other calls (batched rows, the masked
    fixed-shape path, grad mode, training) run the module path.

    With ``fused_attention`` (the default) the fast precisions (bf16, int8) attend with the C kernel
    of ``myna.engine.cpu_kernels`` where it builds: it also writes the step's key and value into the
    cache, and sums in another order than torch's attention (logits ~1e-5 apart, see the tests).
    fp32 keeps torch's kernels, so its tokens stay upstream's. With it, an int8 GPT runs its whole
    step, one row or a batch of rows, in one C call instead (``myna.engine.quant_step``).
    """

    def __init__(self, model: T2SModel, fused_attention: bool = True,
                 int8_weights: Mapping[str, tuple] | None = None) -> None:
        self.model = model
        self.eager = type(model).decode_step.__get__(model)
        self.built_for: str | None = None
        self.fused_attention = fused_attention
        self._int8_weights = int8_weights  # handed to the int8 C step when it is built, then dropped
        self.kernels = None
        self.quantized = None  # the C step of an int8 GPT (see _build)
        self._bound: tuple[tuple, list] | None = None  # (the caches' identity, each layer's bound kernel)

    def _build(self) -> None:
        """Bind each layer's projections (rebuilt when the precision changes: prepare_gpt swaps them)."""
        model = self.model
        self.layers = [(_packed_qkv(layer.self_attn), layer.self_attn, _projection(layer.self_attn.out_proj),
                        _projection(layer.linear1, relu=True), _projection(layer.linear2), layer.norm1, layer.norm2)
                       for layer in model.h.layers]
        self.logits = _projection(model.ar_predict_layer)
        self.dim, self.heads = model.config.hidden_dim, model.config.head
        self.built_for = precision_of(model)
        self._bound = None
        self.quantized = None
        if self.fused_attention and self.built_for == "int8":
            from myna.engine.quant_step import QuantDecodeStep, kernels

            lib = kernels()
            step = QuantDecodeStep(model, self.eager, lib, self._int8_weights) if lib is not None else None
            self.quantized = step if step is not None and step.usable() else None
        # the C step's attention reads half-float caches where the kernels have them: half the bytes per step
        model.kv_dtype = torch.float16 if self.quantized is not None and self.quantized.half_cache else None
        self._int8_weights = None
        if self.fused_attention and self.built_for != "fp32":  # fp32 stays on torch's kernels: upstream's numbers
            from myna.engine.cpu_kernels import MAX_HEAD_DIM, load_kernels

            self.kernels = load_kernels() if self.dim // self.heads <= MAX_HEAD_DIM else None
        else:
            self.kernels = None

    def prepare(self) -> None:
        """Build for the model's current precision now (packing int8 weights for the C step), not on the first call."""
        if self.built_for != precision_of(self.model):
            self._build()

    def _bound_kernels(self) -> list:
        """Each layer's kernel bound to its cache (checked once), kept while the caches stay the same tensors."""
        caches = [layer.self_attn.kv_cache for layer in self.model.h.layers]
        key = tuple((c.k_cache.data_ptr(), c.v_cache.data_ptr(), c.k_cache.shape) for c in caches)
        if self._bound is None or self._bound[0] != key:
            _, heads, max_len, head_dim = caches[0].k_cache.shape
            row = torch.empty(heads * head_dim, dtype=torch.float32)  # shared: each layer uses it up before the next
            scratch = torch.empty(heads * max_len, dtype=torch.float32)
            self._bound = (key, [self.kernels.bind_attention(c.k_cache, c.v_cache, row, scratch) for c in caches])
        return self._bound[1]

    def __call__(self, tokens: torch.Tensor, cache_pos: torch.Tensor, audio_pos: torch.Tensor,
                 attend_len: int | list[int] | None = None) -> torch.Tensor:
        """Same contract as ``T2SModel.decode_step``."""
        model = self.model
        if self.built_for != precision_of(model):
            self._build()
        if self.quantized is not None:
            return self.quantized(tokens, cache_pos, audio_pos, attend_len)
        cache = model.h.layers[0].self_attn.kv_cache if model.h.layers else None
        if (not isinstance(attend_len, int) or tokens.shape[0] != 1 or tokens.device.type != "cpu" or cache is None
                or cache.k_cache.shape[0] != 1 or model.training or torch.is_grad_enabled()):
            return self.eager(tokens, cache_pos, audio_pos, attend_len)
        dim, heads = self.dim, self.heads
        slot = int(cache_pos)
        x = model.ar_audio_position.at(model.ar_audio_embedding(tokens), audio_pos).view(1, dim)
        fused = (self.kernels is not None and attend_len == slot + 1 and cache.k_cache.dtype == torch.float32)
        bound = self._bound_kernels() if fused else [None] * len(self.layers)
        for (qkv_proj, attn, out_proj, ffn_in, ffn_out, norm1, norm2), attend in zip(self.layers, bound, strict=True):
            if attend is not None:
                out = attend(qkv_proj(x), slot)
            else:
                q, k, v = qkv_proj(x).view(3, heads, 1, dim // heads)
                keys, values = attn.kv_cache.k_cache, attn.kv_cache.v_cache
                keys[0, :, slot : slot + 1].copy_(k)
                values[0, :, slot : slot + 1].copy_(v)
                out = F.scaled_dot_product_attention(q.unsqueeze(0), keys[:, :, :attend_len], values[:, :, :attend_len])
            x = F.layer_norm(x + out_proj(out.view(1, dim)), (dim,), norm1.weight, norm1.bias, norm1.eps)
            x = F.layer_norm(x + ffn_out(ffn_in(x)), (dim,), norm2.weight, norm2.bias, norm2.eps)
        return self.logits(x)


def use_flat_decode(model: T2SModel, fused_attention: bool = True,
                    int8_weights: Mapping[str, tuple] | None = None) -> T2SModel:
    """Run ``model``'s single-sequence CPU decode steps through ``FlatDecodeStep`` (other calls unchanged).

    ``fused_attention``: in the fast precisions, attend with ``myna.engine.cpu_kernels`` where it builds (int8:
    the whole step in C, ``myna.engine.quant_step``, from ``int8_weights`` when given, see ``prepare_gpt``).
    """
    model.decode_step = FlatDecodeStep(model, fused_attention, int8_weights)
    model.decode_step.prepare()  # now: an int8 GPT's C step decides the KV cache's dtype before the first request
    return model


class GraphedDecodeStep:
    """``decode_step`` replayed from a CUDA graph of the masked fixed-shape step (one token per row).

    Captured on first use and again whenever the KV cache is re-allocated; other calls run eagerly.
    """

    def __init__(self, model: T2SModel) -> None:
        self.model = model
        self.eager = type(model).decode_step.__get__(model)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: tuple | None = None

    def __call__(self, tokens: torch.Tensor, cache_pos: torch.Tensor, audio_pos: torch.Tensor,
                 attend_len: int | list[int] | None = None) -> torch.Tensor:
        """Same contract as ``T2SModel.decode_step``."""
        cache = self.model.h.layers[0].self_attn.kv_cache
        if isinstance(attend_len, list) or tokens.device.type != "cuda" or cache is None or cache_pos.dim() != 1:
            return self.eager(tokens, cache_pos, audio_pos, attend_len)
        key = (cache.k_cache.data_ptr(), tuple(cache.k_cache.shape), tuple(tokens.shape))
        if self.graph is None or key != self.key:
            self._capture(tokens, cache_pos, audio_pos)
            self.key = key
        self.tokens.copy_(tokens)
        self.cache_pos.copy_(cache_pos)
        self.audio_pos.copy_(audio_pos)
        self.graph.replay()
        return self.logits.clone()

    def _capture(self, tokens: torch.Tensor, cache_pos: torch.Tensor, audio_pos: torch.Tensor) -> None:
        self.tokens, self.cache_pos, self.audio_pos = tokens.clone(), cache_pos.clone(), audio_pos.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: rewrites this step's own cache slot with the same values
            for _ in range(2):
                self.eager(self.tokens, self.cache_pos, self.audio_pos, None)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self.eager(self.tokens, self.cache_pos, self.audio_pos, None)


def use_cuda_graphs(model: T2SModel) -> T2SModel:
    """Replay ``model``'s single-sequence decode steps from CUDA graphs (a no-op off CUDA)."""
    if model.ar_audio_embedding.word_embeddings.weight.device.type == "cuda":
        model.decode_step = GraphedDecodeStep(model)
    return model
