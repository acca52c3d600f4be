"""Normalising flow between the prior and the decoder latent, its WaveNet-style coupling network,
and the posterior encoder (`enc_q`, training only)."""

from __future__ import annotations

import torch
from torch import nn

from myna.models.layers import WeightNormConv1d, same_padding, time_mask


class WaveNet(nn.Module):
    """Non-causal gated dilated convolutions with global conditioning and skip sums."""

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            self.cond_layer = WeightNormConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                WeightNormConv1d(
                    hidden_channels,
                    2 * hidden_channels,
                    kernel_size,
                    dilation=dilation,
                    padding=same_padding(kernel_size, dilation),
                )
            )
            # the last layer only feeds the skip sum
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WeightNormConv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, H, T), mask (B, 1, T), g (B, gin, 1) -> skip sum (B, H, T)."""
        h = self.hidden_channels
        cond = self.cond_layer(g) if g is not None else None
        skip = torch.zeros_like(x)
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            pre = in_layer(x)
            if cond is not None:
                pre = pre + cond[:, 2 * h * i : 2 * h * (i + 1), :]
            acts = self.drop(torch.tanh(pre[:, :h, :]) * torch.sigmoid(pre[:, h:, :]))
            out = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + out[:, :h, :]) * mask
                skip = skip + out[:, h:, :]
            else:
                skip = skip + out
        return skip * mask


class Flip(nn.Module):
    """Reverse the channel order (no parameters; keeps upstream's module indices)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flip channels of (B, C, T)."""
        return torch.flip(x, [1])


class CouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half is shifted by a function of the first half."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling channels must be even, got {channels}")
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half, 1)
        nn.init.zeros_(self.post.weight)  # starts as the identity map
        nn.init.zeros_(self.post.bias)

    def _shift(self, x0: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        h = self.enc(self.pre(x0) * mask, mask, g=g)
        return self.post(h) * mask

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False
    ) -> torch.Tensor:
        """Apply (or, with `reverse`, undo) the coupling; the log-determinant is zero."""
        x0, x1 = torch.split(x, [self.half, self.half], 1)
        shift = self._shift(x0, mask, g)
        x1 = (x1 - shift) * mask if reverse else shift + x1 * mask
        return torch.cat([x0, x1], 1)


class ResidualCouplingBlock(nn.Module):
    """`n_flows` coupling layers, each followed by a channel flip."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                CouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
            )
            self.flows.append(Flip())

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False
    ) -> torch.Tensor:
        """Map latent -> prior space, or prior -> latent with `reverse`."""
        for flow in reversed(self.flows) if reverse else self.flows:
            x = flow(x) if isinstance(flow, Flip) else flow(x, mask, g=g, reverse=reverse)
        return x


class PosteriorEncoder(nn.Module):
    """Linear spectrogram -> latent sample (training only; upstream strips it from inference files)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self,
        spec: torch.Tensor,
        lengths: torch.Tensor,
        g: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """spec (B, bins, T) -> (z, mean, log_std, mask)."""
        if g is not None:
            g = g.detach()
        mask = time_mask(lengths, spec.shape[2], spec.dtype)
        h = self.enc(self.pre(spec) * mask, mask, g=g)
        mean, log_std = torch.split(self.proj(h) * mask, self.out_channels, dim=1)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        z = (mean + noise * torch.exp(log_std)) * mask
        return z, mean, log_std, mask
