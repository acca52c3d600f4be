"""HiFi-GAN generator (`dec`): decoder latent (B, inter_channels, T) -> waveform (B, 1, T * hop)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from myna.models.layers import WeightNormConv1d, WeightNormConvTranspose1d, same_padding

LEAKY_SLOPE = 0.1


def _init_normal(module: nn.Module, std: float = 0.01) -> None:
    """HiFi-GAN's initial kernels: N(0, std) directions (weight_g follows the direction's norm)."""
    if isinstance(module, (WeightNormConv1d, WeightNormConvTranspose1d)):
        with torch.no_grad():
            module.weight_v.normal_(0.0, std)
            module.weight_g.copy_(torch.linalg.vector_norm(module.weight_v, dim=(1, 2), keepdim=True))


class ResBlock1(nn.Module):
    """Pairs of (dilated conv, plain conv) with leaky ReLUs and a residual around each pair."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WeightNormConv1d(
                channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d)
            )
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, padding=same_padding(kernel_size))
            for _ in dilation
        )
        self.apply(_init_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> same shape."""
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            h = dilated(F.leaky_relu(x, LEAKY_SLOPE))
            x = plain(F.leaky_relu(h, LEAKY_SLOPE)) + x
        return x


class ResBlock2(nn.Module):
    """Dilated convs with leaky ReLUs, a residual around each."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WeightNormConv1d(
                channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d)
            )
            for d in dilation
        )
        self.apply(_init_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> same shape."""
        for conv in self.convs:
            x = conv(F.leaky_relu(x, LEAKY_SLOPE)) + x
        return x


class Generator(nn.Module):
    """Transposed-conv upsampling stages, each followed by the mean of multi-receptive-field resblocks."""

    def __init__(
        self,
        initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.n_kernels = len(resblock_kernel_sizes)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            channels = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(
                WeightNormConvTranspose1d(
                    upsample_initial_channel // (2**i),
                    channels,
                    kernel,
                    stride=rate,
                    padding=(kernel - rate) // 2,
                )
            )
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(channels, k, d))
        self.ups.apply(_init_normal)
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """Latent (B, C, T) and timbre g (B, gin, 1) -> waveform (B, 1, T * prod(upsample_rates)).

        Inputs are cast to the first layer's dtype (see `half_head`). The last stage and the output
        layer always run in their own dtype, fp32 unless the whole model was cast, even under
        autocast: rounding those activations to 16 bits leaves a noise floor about 47 dB down that
        a log-mel loss (and a quiet passage) sees.
        """
        dtype = self.conv_pre.weight.dtype
        x = self.conv_pre(x.to(dtype))
        if g is not None:
            x = x + self.cond(g.to(dtype))
        last = len(self.ups) - 1
        for i in range(last):
            x = self._stage(i, x)
        with torch.autocast(x.device.type, enabled=False):
            x = self._stage(last, x.to(self.conv_post.weight.dtype))
            # the last activation uses PyTorch's default slope (0.01), as upstream's does
            x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)

    def _stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Upsampling stage `i`: transposed conv, then the mean of its resblocks."""
        x = self.ups[i](F.leaky_relu(x, LEAKY_SLOPE))
        blocks = self.resblocks[i * self.n_kernels : (i + 1) * self.n_kernels]
        total = blocks[0](x)
        for block in blocks[1:]:
            total += block(x)  # in place: these are the largest tensors of the whole model
        return total / self.n_kernels

    def half_head(self, dtype: torch.dtype) -> Generator:
        """Hold every stage but the last (and the output layer) in `dtype`; float32 audio still comes out."""
        last = len(self.ups) - 1
        head = [self.conv_pre, *self.ups[:last], *self.resblocks[: last * self.n_kernels]]
        if hasattr(self, "cond"):
            head.append(self.cond)
        for module in head:
            module.to(dtype)
        return self
