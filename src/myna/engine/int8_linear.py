"""The int8 projection of precision int8: an int8 per-channel weight, int8 activations quantized per call.

Apart from myna.engine.precision so that the C decode step (myna.engine.quant_step), which precision
installs, can recognise these layers without importing precision back.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def int8_weight_levels() -> int:
    """The largest int8 weight magnitude to use on this CPU: 127, or 63 without AVX-512 VNNI.

    Without VNNI, fbgemm multiplies uint8 activations by int8 weights in pairs that it sums into
    int16 (vpmaddubsw), which saturates once two products near 255 x 127 meet: on a 2-core AVX2 CPU
    the full-size v2 GPT matched fp32's teacher-forced top-1 token at 7% of 60 steps. Weights within
    +-63 keep every pair sum under 2^15 (255 x 63 x 2 = 32,130) and keep 8-bit activations: 100%
    there (7-bit activations instead, torch's usual `reduce_range`: 97%). VNNI sums into int32.
    """
    return 127 if torch.cpu._is_vnni_supported() else 63


class Int8Linear(nn.Module):
    """y = x W^T + b with W stored as int8 per output channel and x quantized per call (fbgemm/x86).

    The activation scale is one per call, so rows of one call depend on each other. Batched decoding
    of unrelated requests sets `per_row`: each row then goes through its own call and gets exactly
    the result it would get alone. Weights use `int8_weight_levels()` levels per side.
    """

    per_row = False

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        weight = weight.detach().float()
        scale = (weight.abs().amax(dim=1) / int8_weight_levels()).clamp_min(1e-12)
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are marked deprecated but the kernels are current
            warnings.simplefilter("ignore")
            self._pack(torch.quantize_per_channel(weight, scale.double(), zero, 0, torch.qint8), bias)

    @classmethod
    def from_quantized(cls, values: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> Int8Linear:
        """The layer whose `quantized()` gave these: int8 `values` (out, in), float64 `scales` (out,), bias."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        zero = torch.zeros(values.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer._pack(torch._make_per_channel_quantized_tensor(values, scales.double(), zero, 0), bias)
        return layer

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The int8 weight values (out, in), their per-channel float64 scales and the fp32 bias (or None)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qweight, bias = torch.ops.quantized.linear_unpack(self._packed)
            return qweight.int_repr(), qweight.q_per_channel_scales(), bias

    def _pack(self, qweight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.out_features, self.in_features = qweight.shape
        self._packed = torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.detach().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) fp32 -> (..., out) fp32; with `per_row` set, each row quantized on its own."""
        return self._run(x, torch.ops.quantized.linear_dynamic)

    def forward_relu(self, x: torch.Tensor) -> torch.Tensor:
        """relu(forward(x)) in one kernel: the same values without a pass over the output."""
        return self._run(x, torch.ops.quantized.linear_relu_dynamic)

    def _run(self, x: torch.Tensor, op) -> torch.Tensor:
        x = x.float().contiguous()
        if self.per_row and x.numel() > self.in_features:
            rows = x.reshape(-1, self.in_features)
            out = torch.cat([op(rows[i : i + 1], self._packed, False) for i in range(rows.shape[0])])
            return out.reshape(*x.shape[:-1], self.out_features)
        return op(x, self._packed, False)

    def function(self, relu: bool = False):
        """This projection as a bare callable on 2-D fp32 input (``relu``: fused ReLU after it); no per-row mode."""
        op = torch.ops.quantized.linear_relu_dynamic if relu else torch.ops.quantized.linear_dynamic
        packed = self._packed
        return lambda x: op(x, packed, False)

    def extra_repr(self) -> str:
        """Shape, like nn.Linear's."""
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"
