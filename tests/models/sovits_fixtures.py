"""Tiny SoVITS configs, weights and inputs rebuilt bit-for-bit from fixed seeds.

Only torch and the standard library are imported, so the same recipe also runs in upstream
GPT-SoVITS's environment, which is how `tools/upstream_reference/make_sovits_reference.py` produced the reference
outputs (see data/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

# upstream s2.json "model" section with small widths; hidden_channels 192 and (for v1/v2)
# gin_channels 512 are fixed by MRTE's built-in widths
TINY_OVERRIDES = {
    "inter_channels": 24,
    "filter_channels": 96,
    "n_heads": 4,
    "n_layers": 2,
    "upsample_initial_channel": 48,
}
PRO_OVERRIDES = {"gin_channels": 64}  # v2Pro/ProPlus project the timbre to 512 for MRTE
PRO_PLUS_OVERRIDES = {"gin_channels": 64, "upsample_kernel_sizes": [20, 16, 8, 2, 2]}
TINY_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
WEIGHT_SEED = 0
INPUT_SEED = 1
OUTPUT_GAIN = 0.5  # damps the vocoder's last conv so tanh stays mostly linear


def upstream_hps(base: Mapping, version: str, tiny: bool = True) -> dict:
    """An upstream-style hps dict ({"data", "model", "train"}) for `version`, from s2.json's content."""
    hps = {section: dict(base[section]) for section in ("data", "model", "train")}
    if tiny:
        hps["model"].update(TINY_OVERRIDES)
        if version == "v2Pro":
            hps["model"].update(PRO_OVERRIDES)
        elif version == "v2ProPlus":
            hps["model"].update(PRO_PLUS_OVERRIDES)
    hps["model"]["version"] = version
    hps["model"]["semantic_frame_rate"] = "25hz"
    return hps


def tiny_weights(shapes: Mapping[str, Sequence[int]], seed: int = WEIGHT_SEED) -> dict[str, torch.Tensor]:
    """Random weights per key (sorted order, one generator) that keep activations at a sane level."""
    gen = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        noise = torch.randn(shape, generator=gen)
        name = key.rsplit(".", 1)[-1]
        if key.endswith("_codebook.inited") or key.endswith("_codebook.cluster_size"):
            value = torch.ones(shape)
        elif key.endswith("_codebook.embed"):
            value = 0.25 * noise
        elif key.endswith("_codebook.embed_avg"):
            value = weights[key[: -len("_avg")]].clone()
        elif name == "weight_g":
            value = 1.0 + 0.1 * noise  # unit-norm rows: variance-preserving
        elif name == "gamma":
            value = 1.0 + 0.1 * noise
        elif name in ("beta", "bias"):
            value = 0.1 * noise
        elif name in ("emb_rel_k", "emb_rel_v"):
            value = noise * shape[-1] ** -0.5
        elif key == "prelu.weight":
            value = 0.25 + 0.05 * noise
        elif len(shape) >= 2:
            value = noise / math.sqrt(math.prod(shape[1:]))
            if key == "dec.conv_post.weight":
                value = value * OUTPUT_GAIN
        else:
            value = 0.1 * noise
        weights[key] = value
    return weights


def tiny_inputs(version: str, seed: int = INPUT_SEED) -> dict[str, torch.Tensor]:
    """Fixed inputs: SSL features, semantic codes, phoneme ids, two reference spectrograms, SV embeddings."""
    gen = torch.Generator().manual_seed(seed)
    n_symbols = 322 if version == "v1" else 732
    return {
        "ssl": torch.randn(1, 768, 30, generator=gen),
        "codes": torch.randint(0, 1024, (1, 1, 12), generator=gen),
        "phones": torch.randint(0, n_symbols, (1, 9), generator=gen),
        "refer_a": torch.rand(1, 1025, 40, generator=gen) * 2.0,
        "refer_b": torch.rand(1, 1025, 33, generator=gen) * 2.0,
        "sv_a": torch.randn(1, 20480, generator=gen),
        "sv_b": torch.randn(1, 20480, generator=gen),
    }


def _short(values: torch.Tensor) -> list[float]:
    # 9 significant digits round-trip float32 exactly
    return [float(f"{v:.9g}") for v in values.tolist()]


def summarize(wave: torch.Tensor) -> dict:
    """A compact fingerprint of a waveform: length, head, tail, a strided sample, sums."""
    flat = wave.detach().flatten()
    return {
        "length": flat.numel(),
        "head": _short(flat[:50]),
        "tail": _short(flat[-50:]),
        "stride_256": _short(flat[::256]),
        "sum": float(flat.double().sum()),
        "abs_sum": float(flat.double().abs().sum()),
    }


def spectrogram_input(seconds: float, peak: float, rate: int = 32000, seed: int = INPUT_SEED) -> torch.Tensor:
    """A (1, samples) test clip: two tones plus seeded noise, scaled to `peak`."""
    gen = torch.Generator().manual_seed(seed)
    n = int(rate * seconds)
    t = torch.arange(n, dtype=torch.float64) / rate
    wave = torch.sin(2 * math.pi * 220.0 * t) + 0.5 * torch.sin(2 * math.pi * 3150.0 * t)
    wave = wave.float() + 0.2 * torch.randn(n, generator=gen)
    return (wave * (peak / wave.abs().max())).unsqueeze(0)


def summarize_spectrogram(spec: torch.Tensor) -> dict:
    """Fingerprint of a (1, bins, frames) spectrogram: a few frames in full, strided bins, sums."""
    s = spec.detach()[0]
    return {
        "first_frame": _short(s[::8, 0]),
        "last_frame": _short(s[::8, -1]),
        "bins_stride_64": _short(s[::64].flatten()),
        "sum": float(s.double().sum()),
        "abs_sum": float(s.double().abs().sum()),
    }
