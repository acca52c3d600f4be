"""Faster SoVITS decoding for inference: pick a mode, `prepare_sovits(model, mode)` changes the model in place.

The HiFi-GAN vocoder (`dec`) costs ~80% of a decode, so every mode but "exact" works on it:

* "exact": untouched, bit-for-bit the reference maths (and upstream's);
* "fp32": weight norm folded into plain kernels (same output, no per-call kernel rebuild);
* "nwc": "fp32" with the vocoder's convolutions run on channels-last (N, W, C) activations, where
  oneDNN's fp32 kernels are faster on CPUs without native bf16 (a 2-core AVX2 EPYC: SoVITS decode of
  6 s of audio 8.85 s -> 6.35 s; only the summation order differs from "exact", ~1e-11 there);
* "bf16": "fp32" plus the flow and the vocoder held in bfloat16, all but the vocoder's last stage
  and output layer (fast on CPUs with AVX512-BF16/AMX; ~40 dB SNR against "exact" on random weights;
  a 16-bit last stage would add a noise floor that a trained model's quiet bands show), with every
  vocoder convolution channels-last as in "nwc" (2-core AVX-512 BF16 EPYC, full-size v2, 6 s of
  audio: 0.96-1.01 s -> 0.77-0.80 s; the fp32 last stage alone 0.23 s -> 0.11 s; same SNR);
* "compile": "bf16" with the vocoder run through `torch.compile` (first calls per length compile);
* "onnx": "fp32" with the vocoder exported (in memory) to ONNX Runtime's CPU provider.

A frame-rate decoder (SoVITSConfig `decoder` "istft") takes "bf16" and "compile" as they are; for it
"nwc" and "onnx" are "fp32" (nothing of it runs at the sample rate, and ONNX has no inverse STFT).

The modes change `model.dec` in place or replace it (and for "bf16" wrap the flow); either way it
still takes and returns float32, so `SoVITS.decode` and the streaming window decoder use them
unchanged. A prepared model is for inference only: its state-dict keys are no longer upstream's.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from myna.errors import InputError
from myna.models.layers import WeightNormConv1d, WeightNormConvTranspose1d
from myna.models.sovits import SoVITS
from myna.models.vocoder import Generator

MODES = ("exact", "fp32", "nwc", "bf16", "compile", "onnx")
DEFAULT_MODE = "bf16"


class CastModule(nn.Module):
    """Runs `inner` in `dtype`: floating inputs are cast in, the output is cast back to float32."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.inner = inner.to(dtype)
        self.dtype = dtype

    def forward(self, *args, **kwargs):
        """Call the wrapped module in its dtype; float32 out."""
        args = [_cast(a, self.dtype) for a in args]
        kwargs = {k: _cast(v, self.dtype) for k, v in kwargs.items()}
        return self.inner(*args, **kwargs).float()


class FlowCast(CastModule):
    """The flow in `dtype` (its reverse pass takes a mask and a `reverse` flag)."""


class NwcConv1d(nn.Module):
    """A (transposed) 1-d convolution computed as a 2-d one on channels-last activations.

    Takes (B, C, T) in any layout and returns (B, C', T') whose memory is (B, T', C') ordered: the
    next convolution then needs no copy, and elementwise ops in between keep that order.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        weight = conv.weight.detach()
        self.transposed = isinstance(conv, nn.ConvTranspose1d) or getattr(conv, "transposed", False)
        self.register_buffer("weight", weight.unsqueeze(2).contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        self.stride, self.padding, self.dilation = (_first(getattr(conv, name)) for name in ("stride", "padding", "dilation"))
        self.groups = getattr(conv, "groups", 1)
        self.in_channels = weight.shape[0] if self.transposed else weight.shape[1]
        if isinstance(self.padding, str) or getattr(conv, "padding_mode", "zeros") != "zeros":
            raise InputError("NwcConv1d takes zero padding given as a number")
        if self.transposed and (_first(getattr(conv, "output_padding", 0)) or self.groups != 1):
            raise InputError("NwcConv1d takes transposed convolutions without output padding or groups")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C', T'), the result stored channels-last."""
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        stride, padding, dilation = (1, self.stride), (0, self.padding), (1, self.dilation)
        if self.transposed:
            out = F.conv_transpose2d(x, self.weight, self.bias, stride, padding, 0, 1, dilation)
        else:
            out = F.conv2d(x, self.weight, self.bias, stride, padding, dilation, self.groups)
        return out.squeeze(2)


def channels_last_convolutions(module: nn.Module) -> nn.Module:
    """Replace every 1-d convolution under `module` (weight norm folded) by an `NwcConv1d`, in place."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Conv1d, nn.ConvTranspose1d, WeightNormConv1d, WeightNormConvTranspose1d)):
            if isinstance(child, (WeightNormConv1d, WeightNormConvTranspose1d)):
                child.fold()
            setattr(module, name, NwcConv1d(child))
        else:
            channels_last_convolutions(child)
    return module


class OnnxVocoder(nn.Module):
    """The vocoder as an ONNX Runtime session (CPU), same call as `Generator`: (z, g=ge) -> audio."""

    def __init__(self, vocoder: nn.Module, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as error:  # pragma: no cover - onnxruntime is a dependency
            raise InputError("the onnx SoVITS mode needs onnxruntime installed") from error
        z = torch.zeros(1, vocoder.conv_pre.in_channels, 8)
        g = torch.zeros(1, vocoder.cond.in_channels, 1)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                vocoder, (z, g), buffer, input_names=["z", "g"], output_names=["audio"],
                dynamic_axes={"z": {2: "frames"}, "audio": {2: "samples"}}, opset_version=17, dynamo=False,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """Latent (1, C, T) and timbre g (1, gin, 1) -> waveform (1, 1, T * hop), float32."""
        feed = {"z": x.detach().float().contiguous().numpy(), "g": g.detach().float().contiguous().numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])


def prepare_sovits(model: SoVITS, mode: str = DEFAULT_MODE, threads: int | None = None) -> SoVITS:
    """Switch `model` (eval, CPU) to decoding mode `mode` (see MODES) in place and return it."""
    if mode not in MODES:
        raise InputError(f"unknown SoVITS mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "exact":
        return model
    # The channels-last and ONNX paths are built for HiFi-GAN's convolution stack; a frame-rate decoder
    # (istft) has no sample-rate convolutions to speed up and no ONNX inverse STFT, so there they are "fp32".
    hifigan = isinstance(model.dec, Generator)
    model.eval().fold_weight_norm()
    if mode in ("bf16", "compile"):
        model.dec.half_head(torch.bfloat16)
        model.flow = FlowCast(model.flow, torch.bfloat16)
        if mode == "compile":
            model.dec = torch.compile(model.dec, dynamic=True)
        elif hifigan:
            channels_last_convolutions(model.dec)  # after half_head: the bf16 head keeps its bf16 weights
    elif mode == "nwc" and hifigan:
        channels_last_convolutions(model.dec)
    elif mode == "onnx" and hifigan:
        model.dec = OnnxVocoder(model.dec, threads)
    return model


def fast_cpu_mode() -> str:
    """The mode the GPT's fast precisions pair with on a CPU: "bf16" where it is native, else "nwc"."""
    from myna.engine.precision import native_bf16

    return "bf16" if native_bf16("cpu") else "nwc"


def _first(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


def _cast(value, dtype: torch.dtype):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    return value
