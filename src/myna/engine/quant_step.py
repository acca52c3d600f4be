"""The int8 GPT's decode step on CPU as one C call (kernels/quant_decode.c, built by myna.engine.cpu_kernels).

A decode step of the full-size v2 GPT reads its int8 weights once (76 MB) and runs ~240 small
operations; through torch each costs a dispatch, and on a 2-core CPU those added up to a quarter of
an int8 step. `QuantDecodeStep` runs the whole step (projections, the attention kernel of
myna.engine.cpu_kernels, residuals, layer norms, logits) in one call, for one sequence or a batch of
rows at their own cache slots: 9.6 against 12.8 ms of CPU per step (one thread, 300 positions).

The projections are the model's ``Int8Linear`` layers, their int8 values and per-row scales packed
once into the kernel's layout. Activations are quantized per row the way fbgemm's dynamic
quantization does it (unsigned bytes with a zero point), so the logits stay within ~1e-6 of the
module path's; as rows are quantized one by one, a row's logits are the same alone or in any batch,
and a batch reads the weights once for all its rows. With AVX-512 VNNI one load of packed weights
feeds 64 multiply-adds into 16 output rows; elsewhere a portable loop computes the same floats.

Where the compiler has `_Float16`, the step keeps the KV cache in half floats (the model allocates it so:
``T2SModel.kv_dtype``, set by ``FlatDecodeStep``): attention over a long context reads the cache once a
step at memory speed, and half the bytes took a step at 590 positions from 4.4 to 3.5 ms on 2 cores.
Keys and values are rounded as torch rounds them; products and sums stay in fp32. On full-size random
weights int8's teacher-forced agreement with fp32 stayed where it was (98.5% over 800 tokens, against
98.1% with a float32 cache).
"""

from __future__ import annotations

import ctypes
import functools
import weakref
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from myna.engine.cpu_kernels import MAX_HEAD_DIM, CpuKernels, load_kernels
from myna.engine.int8_linear import Int8Linear

LANES = 16  # output rows per packed block (the C layout)
_P = ctypes.c_void_p


class QProj(ctypes.Structure):
    """myna_qproj: one packed projection."""

    _fields_ = [("weight", _P), ("scales", _P), ("bias", _P), ("rowsums", _P), ("in_features", ctypes.c_int),
                ("out_features", ctypes.c_int)]


class QLayer(ctypes.Structure):
    """myna_qlayer: one transformer block's projections, norms and KV cache."""

    _fields_ = [("qkv", QProj), ("out", QProj), ("ffn_in", QProj), ("ffn_out", QProj),
                ("norm1_weight", _P), ("norm1_bias", _P), ("norm2_weight", _P), ("norm2_bias", _P),
                ("k_cache", _P), ("v_cache", _P)]


class QModel(ctypes.Structure):
    """myna_qmodel: the whole stack plus scratch buffers."""

    _fields_ = [("layers", ctypes.c_int), ("dim", ctypes.c_int), ("heads", ctypes.c_int), ("head_dim", ctypes.c_int),
                ("ffn", ctypes.c_int), ("max_len", ctypes.c_int), ("max_rows", ctypes.c_int), ("kv_half", ctypes.c_int),
                ("eps", ctypes.c_float),
                ("layer", ctypes.POINTER(QLayer)), ("logits", QProj), ("wide", _P), ("att", _P), ("hidden", _P),
                ("scores", _P)]


@functools.cache
def _functions(library: ctypes.CDLL) -> tuple:
    linear = library.myna_quant_linear
    linear.restype = None
    linear.argtypes = [ctypes.POINTER(QProj), _P, _P, ctypes.c_int, ctypes.c_int, _P, _P, _P, ctypes.c_int]
    step = library.myna_quant_step
    step.restype = ctypes.c_int
    step.argtypes = [ctypes.POINTER(QModel), _P, _P, ctypes.c_int, _P, ctypes.c_int]
    library.myna_quant_simd.restype = ctypes.c_int
    library.myna_half_cache.restype = ctypes.c_int
    library.myna_quant_force_portable.argtypes = [ctypes.c_int]
    return linear, step


def kernels() -> CpuKernels | None:
    """The compiled kernels when they hold the int8 step (None without a C compiler)."""
    loaded = load_kernels()
    if loaded is None or not hasattr(loaded.library, "myna_quant_step"):
        return None
    return loaded


class Packed:
    """One int8 projection in the kernel's layout: the tensors and the `QProj` that points into them."""

    def __init__(self, values: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> None:
        out_features, in_features = values.shape
        if in_features % 4:
            raise ValueError(f"the int8 kernel takes inputs in whole groups of 4 (got {in_features})")
        pad = (-out_features) % LANES
        padded = F.pad(values.to(torch.int8), (0, 0, 0, pad))
        blocks = padded.view(-1, LANES, in_features // 4, 4).permute(0, 2, 1, 3)  # block, k4, lane, j
        self.weight = blocks.reshape(-1, in_features // 4, 4 * LANES).contiguous().view(torch.uint8)
        self.scales = F.pad(scales.float(), (0, pad)).contiguous()
        self.rowsums = padded.sum(dim=1, dtype=torch.int32).contiguous()
        self.bias = None if bias is None else F.pad(bias.detach().float(), (0, pad)).contiguous()
        self.in_features, self.out_features = in_features, out_features
        self.proj = QProj(self.weight.data_ptr(), self.scales.data_ptr(),
                          None if self.bias is None else self.bias.data_ptr(), self.rowsums.data_ptr(), in_features,
                          out_features)

    @classmethod
    def of(cls, layer: nn.Module) -> Packed:
        """The kernel layout of an ``Int8Linear``'s weights."""
        return cls(*layer.quantized())

    def __call__(self, x: torch.Tensor, relu: bool = False, lib: CpuKernels | None = None) -> torch.Tensor:
        """(..., in) float32 -> (..., out) through the kernel, each row quantized on its own."""
        lib = lib or kernels()
        if lib is None:
            raise RuntimeError("the CPU kernels are not built here (no C compiler)")
        if x.dtype != torch.float32 or x.device.type != "cpu":
            raise TypeError("packed int8 projections take float32 CPU input")
        rows = x.reshape(-1, self.in_features).contiguous()
        count = rows.shape[0]
        out = torch.empty(count, self.out_features)
        if count:
            xq, xs, zero = (torch.empty(count, self.in_features, dtype=torch.uint8), torch.empty(count),
                            torch.empty(count, dtype=torch.int32))
            _functions(lib.library)[0](ctypes.byref(self.proj), rows.data_ptr(), out.data_ptr(), count, int(relu),
                                       xq.data_ptr(), xs.data_ptr(), zero.data_ptr(), torch.get_num_threads())
        return out.view(*x.shape[:-1], self.out_features)


class QuantDecodeStep:
    """``decode_step`` of an int8 GPT on CPU as one C call (myna_quant_step), one row or a batch of rows.

    Rows never interact, so a row's logits do not depend on the batch it is in. Calls it cannot take
    (grad mode, training, the masked fixed-shape path, attention short of the slot, slots outside the
    cache) go to `fallback`.
    """

    def __init__(self, model: nn.Module, fallback, lib: CpuKernels,
                 int8_weights: Mapping[str, tuple] | None = None) -> None:
        """``int8_weights``: every projection's ``Int8Linear.quantized()`` by module name where the caller has
        them (myna.engine.int8_cache), else they are read back from the layers (~0.2 s more for the full GPT)."""
        self.model, self.fallback = model, fallback
        _, self._step = _functions(lib.library)
        layers = model.h.layers
        names = [f"h.layers.{i}.{part}" for i in range(len(layers))
                 for part in ("self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2")] + ["ar_predict_layer"]
        modules = [model.get_submodule(name) for name in names]
        fits = (bool(layers) and all(isinstance(m, Int8Linear) and m.in_features % 4 == 0 for m in modules)
                and model.config.hidden_dim // model.config.head <= MAX_HEAD_DIM)
        weights = int8_weights or {}
        self.packed = ([Packed(*weights[name]) if name in weights else Packed.of(module)
                        for name, module in zip(names, modules, strict=True)] if fits else None)
        self._bound: dict[tuple, tuple] = {}  # the caches' identity -> (QModel, what it points into)
        # the last binding, checked first and cheaply: weak references to its caches, its first key buffer, the QModel
        self._last: tuple[list, tuple, QModel] | None = None
        self._attns = [layer.self_attn for layer in layers]
        # whether the step reads float16 caches (the model then allocates them, see T2SModel.kv_dtype)
        self.half_cache = bool(lib.library.myna_half_cache())
        self._cache_dtypes = (torch.float32, torch.float16) if self.half_cache else (torch.float32,)

    def usable(self) -> bool:
        """Whether every projection is int8 and the heads fit the attention kernel."""
        return self.packed is not None

    def _bind(self, caches: list) -> QModel:
        first = caches[0].k_cache
        last = self._last
        if (last is not None and last[1] == (first.data_ptr(), first.shape) and len(last[0]) == len(caches)
                and all(ref() is cache for ref, cache in zip(last[0], caches, strict=True))):
            return last[2]  # the same cache modules, their buffers not moved (a move replaces them all)
        key = tuple((c.k_cache.data_ptr(), c.v_cache.data_ptr(), tuple(c.k_cache.shape), c.k_cache.dtype)
                    for c in caches)
        if key not in self._bound:
            if len(self._bound) >= 8:  # batched decoding binds one view per batch size; older caches are gone
                self._bound.clear()
            self._bound[key] = self._binding(caches)
        self._last = ([weakref.ref(cache) for cache in caches], (first.data_ptr(), first.shape), self._bound[key][0])
        return self._last[2]

    def _binding(self, caches: list) -> tuple:
        """(QModel, the buffers it points into, its layer array) for these caches."""
        model, packed = self.model, self.packed
        layers = model.h.layers
        rows, heads, max_len, head_dim = caches[0].k_cache.shape
        dim, ffn = model.config.hidden_dim, packed[2].out_features
        keep: list[torch.Tensor] = []

        def buffer(*shape: int) -> int:
            keep.append(torch.zeros(*shape))
            return keep[-1].data_ptr()

        def vector(tensor: torch.Tensor) -> int:
            keep.append(tensor.detach().float().contiguous())
            return keep[-1].data_ptr()

        array = (QLayer * len(layers))()
        for i, (entry, layer, cache) in enumerate(zip(array, layers, caches, strict=True)):
            entry.qkv, entry.out, entry.ffn_in, entry.ffn_out = (p.proj for p in packed[4 * i : 4 * i + 4])
            entry.norm1_weight, entry.norm1_bias = vector(layer.norm1.weight), vector(layer.norm1.bias)
            entry.norm2_weight, entry.norm2_bias = vector(layer.norm2.weight), vector(layer.norm2.bias)
            entry.k_cache, entry.v_cache = cache.k_cache.data_ptr(), cache.v_cache.data_ptr()
        half = caches[0].k_cache.dtype == torch.float16
        struct = QModel(len(layers), dim, heads, head_dim, ffn, max_len, rows, int(half), layers[0].norm1.eps, array,
                        packed[-1].proj, buffer(rows, 5 * dim), buffer(rows, dim), buffer(rows, ffn),
                        buffer(rows, heads, max_len))
        # the caches are not kept alive here: a binding is only used while they are the model's
        return struct, keep, array

    def __call__(self, tokens: torch.Tensor, cache_pos: torch.Tensor, audio_pos: torch.Tensor,
                 attend_len: int | list[int] | None = None) -> torch.Tensor:
        """Same contract as ``T2SModel.decode_step``."""
        model = self.model
        caches = [attn._modules.get("kv_cache") for attn in self._attns]  # a registered submodule, or None
        rows = tokens.shape[0]
        if (self.packed is None or attend_len is None or any(c is None for c in caches) or tokens.device.type != "cpu"
                or model.training or torch.is_grad_enabled() or caches[0].k_cache.dtype not in self._cache_dtypes
                or not caches[0].k_cache.is_contiguous() or caches[0].k_cache.shape[0] < rows or tokens.dim() != 2
                or tokens.shape[1] != 1):
            return self.fallback(tokens, cache_pos, audio_pos, attend_len)
        slots = cache_pos.reshape(-1).tolist()
        lengths = attend_len if isinstance(attend_len, list) else [attend_len]
        max_len = caches[0].k_cache.shape[2]
        if len(slots) != rows or lengths != [s + 1 for s in slots] or not all(0 <= s < max_len for s in slots):
            return self.fallback(tokens, cache_pos, audio_pos, attend_len)
        struct = self._bind(caches)
        x = model.ar_audio_position.at(model.ar_audio_embedding(tokens), audio_pos.view(-1, 1)).float().contiguous()
        logits = torch.empty(rows, self.packed[-1].out_features)
        positions = torch.tensor(slots, dtype=torch.int32)
        if self._step(ctypes.byref(struct), x.data_ptr(), positions.data_ptr(), rows, logits.data_ptr(),
                      torch.get_num_threads()):
            raise MemoryError("the int8 decode step could not allocate its per-thread scratch")
        return logits
