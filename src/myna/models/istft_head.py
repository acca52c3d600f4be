"""Frame-rate decoder with an inverse-STFT head (Vocos style): latent (B, C, T) -> waveform (B, 1, T * hop).

A myna alternative to the HiFi-GAN `Generator` for small from-scratch models (SoVITSConfig `decoder`
"istft"). ConvNeXt blocks run at the latent's frame rate and a linear layer predicts each frame's
log-magnitude and phase; `torch.istft` makes the waveform. Nothing runs at the sample rate but the
inverse FFT, so a step and a decode cost a small fraction of the upsampling vocoder's. Same call
as `Generator`: `dec(z, g=ge)`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_MAX_LOG_MAGNITUDE = 10.0  # exp(10) ~ 2e4: far above any real frame; keeps an untrained head finite


class ConvNeXtBlock(nn.Module):
    """Depthwise conv, layer norm, pointwise MLP, scaled residual (ConvNeXt / Vocos)."""

    def __init__(self, channels: int, hidden: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, hidden)
        self.pwconv2 = nn.Linear(hidden, channels)
        self.gamma = nn.Parameter(torch.full((channels,), 1.0 / 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> same shape."""
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class ISTFTHead(nn.Module):
    """ConvNeXt trunk at frame rate, then per-frame log-magnitude and phase, then the inverse STFT."""

    def __init__(self, initial_channel: int, channels: int, layers: int, n_fft: int, hop_length: int,
                 win_length: int, gin_channels: int = 0) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.conv_pre = nn.Conv1d(initial_channel, channels, 7, 1, padding=3)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, channels, 1)
        self.norm_pre = nn.LayerNorm(channels, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(channels, 3 * channels) for _ in range(layers))
        self.norm_post = nn.LayerNorm(channels, eps=1e-6)
        self.out = nn.Linear(channels, n_fft + 2)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """Latent (B, C, T) and timbre g (B, gin, 1) -> waveform (B, 1, T * hop_length).

        The trunk runs in its weights' dtype (see `half_head`); the output layer and the inverse STFT
        always run in fp32, under autocast too (16-bit phases and magnitudes would add a noise floor)."""
        dtype = self.conv_pre.weight.dtype
        h = self.conv_pre(x.to(dtype))
        if g is not None:
            h = h + self.cond(g.to(dtype))
        h = self.norm_pre(h.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        with torch.autocast(h.device.type, enabled=False):
            h = self.norm_post(h.transpose(1, 2).float())
            h = torch.cat([h, h[:, -1:]], dim=1)  # T + 1 centred frames span exactly T hops
            log_mag, phase = self.out(h).transpose(1, 2).chunk(2, dim=1)
            spec = torch.polar(log_mag.clamp(max=_MAX_LOG_MAGNITUDE).exp(), phase)
            audio = torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window.float(),
                                center=True, length=x.shape[-1] * self.hop_length)
        audio = audio.unsqueeze(1)
        return audio if self.training else audio.clamp(-1.0, 1.0)  # training keeps the gradient of loud samples

    def half_head(self, dtype: torch.dtype) -> ISTFTHead:
        """Hold the trunk in `dtype`; the output layer and inverse STFT stay fp32."""
        for module in (self.conv_pre, self.norm_pre, self.blocks, getattr(self, "cond", None)):
            if module is not None:
                module.to(dtype)
        return self
