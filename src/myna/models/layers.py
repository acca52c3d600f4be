"""Small building blocks shared by the SoVITS modules: weight-normalised convolutions, masks, norms.

Weight norm is stored the way upstream checkpoints store it (`weight_g` magnitude + `weight_v`
direction, normalised over every dimension but the first), so upstream state dicts load unchanged.
`fold_weight_norm` turns every such layer into a plain convolution for inference.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean (batch, time) mask that is True inside each sequence's length."""
    if max_length is None:
        max_length = int(lengths.max())
    steps = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def time_mask(lengths: torch.Tensor, max_length: int, dtype: torch.dtype) -> torch.Tensor:
    """Float (batch, 1, time) mask of ones inside each length, zeros after it."""
    return sequence_mask(lengths, max_length).unsqueeze(1).to(dtype)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis of a (batch, channels, time) tensor."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each time step across channels."""
        y = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


class _WeightNormConvBase(nn.Module):
    """A 1-d convolution whose kernel is `weight_g * weight_v / ||weight_v||` until folded."""

    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        shape = (
            (in_channels, out_channels, kernel_size)
            if self.transposed
            else (out_channels, in_channels, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(shape[1] if self.transposed else shape[0])) if bias else None
        direction = torch.empty(shape)
        nn.init.kaiming_uniform_(direction, a=5**0.5)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(direction, dim=(1, 2), keepdim=True))
        self.weight_v = nn.Parameter(direction)
        self.folded = False

    def kernel(self) -> torch.Tensor:
        """The effective convolution kernel."""
        if self.folded:
            return self.weight
        # the same fused op upstream's weight_norm hook calls, so the kernel is bit-identical
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def fold(self) -> None:
        """Replace `weight_g`/`weight_v` by one fixed `weight` (inference only)."""
        if self.folded:
            return
        with torch.no_grad():
            weight = self.kernel().detach().clone()
        del self.weight_g
        del self.weight_v
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.folded = True


class WeightNormConv1d(_WeightNormConvBase):
    """Conv1d with upstream-compatible weight norm (`weight_g`, `weight_v`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve `x` (batch, channels, time)."""
        return F.conv1d(x, self.kernel(), self.bias, self.stride, self.padding, self.dilation)


class WeightNormConvTranspose1d(_WeightNormConvBase):
    """ConvTranspose1d with upstream-compatible weight norm (norm over the input-channel axis)."""

    transposed = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample `x` (batch, channels, time) by the stride."""
        return F.conv_transpose1d(x, self.kernel(), self.bias, self.stride, self.padding, 0, 1, self.dilation)


def fold_weight_norm(module: nn.Module) -> None:
    """Fold every weight-normalised convolution under `module` into a plain kernel."""
    for child in module.modules():
        if isinstance(child, _WeightNormConvBase):
            child.fold()


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of an odd-kernel, stride-1 convolution."""
    return (kernel_size * dilation - dilation) // 2
