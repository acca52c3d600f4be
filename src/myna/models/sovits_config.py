"""SoVITS hyper-parameters (`SoVITSConfig`, field names after upstream's s2.json keys) and the constants of the
model's file formats. The model itself is myna.models.sovits, which re-exports `SoVITSConfig`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from myna.errors import InputError

VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
SSL_DIM = 768  # HuBERT-base hidden size: upstream's content-feature width (config `ssl_dim`)
SV_EMBEDDING_DIM = 20480  # ERes2NetV2 embedding consumed by upstream's v2Pro/v2ProPlus (config `sv_dim`)
MRTE_TIMBRE_DIM = 512  # MRTE's hidden width (upstream's, kept for every size); the timbre vector must match it
V2_REFERENCE_BINS = 704  # v2+ reference encoders see only the lowest 704 of 1025 bins
SYMBOL_COUNTS = {"v1": 322, "v2": 732}
DECODERS = ("hifigan", "istft")
_DECODER_KEYS = ("decoder", "decoder_channels", "decoder_layers")


@dataclass
class SoVITSConfig:
    """Model hyper-parameters; field names are upstream's s2.json keys ("model" + "data" sections)."""

    version: str = "v2"
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    n_layers_q: int = 3
    use_spectral_norm: bool = False
    gin_channels: int = 512
    semantic_frame_rate: str = "25hz"
    freeze_quantizer: bool = True
    # "data" section
    sampling_rate: int = 32000
    filter_length: int = 2048
    hop_length: int = 640
    win_length: int = 2048
    n_speakers: int = 300
    # "train" section (only the training segment length matters to the model)
    segment_size: int = 20480
    # myna additions (absent from upstream files, whose values are these defaults): the width of the
    # content features (768 HuBERT-base, 384 Whisper tiny) and of the speaker embedding (v2Pro only).
    ssl_dim: int = SSL_DIM
    sv_dim: int = SV_EMBEDDING_DIM
    # myna addition: the waveform decoder. "hifigan" is upstream's `Generator` (the upsample_* and
    # resblock_* fields); "istft" is myna.models.istft_head (decoder_channels wide, decoder_layers
    # ConvNeXt blocks, inverse STFT of filter_length / hop_length / win_length). Written to a file only
    # when not "hifigan", so upstream files round-trip unchanged.
    decoder: str = "hifigan"
    decoder_channels: int = 256
    decoder_layers: int = 8
    # myna addition: MRTE's cross-attention from content frames to phonemes also scores how near a frame and a
    # phoneme sit on the diagonal (the same share of their sequences), with a learned strength a head
    # (myna.models.mrte); upstream's MRTE sees no position. Written to a file only when true.
    text_position_prior: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise InputError(
                f"SoVITS version {self.version!r} is not supported; expected one of {', '.join(VERSIONS)}"
                " (v3/v4 use a different decoder)"
            )
        if self.semantic_frame_rate not in ("25hz", "50hz"):
            raise InputError(
                f"semantic_frame_rate must be '25hz' or '50hz', got {self.semantic_frame_rate!r}"
            )
        for name in ("ssl_dim", "sv_dim", "gin_channels", "upsample_initial_channel", "hidden_channels"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"SoVITS config: {name} must be a positive width, got {getattr(self, name)}")
        if self.decoder not in DECODERS:
            raise InputError(f"SoVITS config: decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.decoder == "hifigan" and self.samples_per_frame != self.hop_length:
            raise InputError(
                f"SoVITS config: the upsample rates multiply to {self.samples_per_frame} samples per frame but"
                f" hop_length is {self.hop_length}; make them agree"
            )
        if not self.is_pro and self.gin_channels != MRTE_TIMBRE_DIM:
            raise InputError(
                f"gin_channels must be {MRTE_TIMBRE_DIM} for {self.version}, got {self.gin_channels}"
            )

    @property
    def is_pro(self) -> bool:
        """True for versions that add a speaker-verification embedding to the timbre (v2Pro, v2ProPlus)."""
        return self.version in ("v2Pro", "v2ProPlus")

    @property
    def spec_channels(self) -> int:
        """Number of linear-spectrogram bins (filter_length // 2 + 1)."""
        return self.filter_length // 2 + 1

    @property
    def n_symbols(self) -> int:
        """Rows of the phoneme embedding: 322 for v1, 732 for later versions."""
        return SYMBOL_COUNTS["v1" if self.version == "v1" else "v2"]

    @property
    def samples_per_frame(self) -> int:
        """Output samples per decoder frame (hop_length; for HiFi-GAN the product of its upsample rates)."""
        if self.decoder != "hifigan":
            return self.hop_length
        total = 1
        for rate in self.upsample_rates:
            total *= rate
        return total

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], version: str | None = None) -> SoVITSConfig:
        """Build from an upstream hps dict ({"data", "model", "train", ...}) or a flat mapping."""
        flat: dict[str, Any] = {}
        if "model" in config:
            flat.update(config.get("data", {}))
            flat.update(config["model"])
            if "segment_size" in config.get("train", {}):
                flat["segment_size"] = config["train"]["segment_size"]
            if "version" not in flat and "version" in config:
                flat["version"] = config["version"]
        else:
            flat.update(config)
        if version is not None:
            flat["version"] = version
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        flat.setdefault("ssl_dim", SSL_DIM)  # files without the key are upstream's (HuBERT-base width)
        known = {k: v for k, v in flat.items() if k in names}
        for key in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            if key in known:
                known[key] = tuple(known[key])
        if "resblock_dilation_sizes" in known:
            known["resblock_dilation_sizes"] = tuple(tuple(d) for d in known["resblock_dilation_sizes"])
        if "resblock" in known:
            known["resblock"] = str(known["resblock"])
        extra = {k: v for k, v in flat.items() if k not in names}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """Upstream-layout hps sections ("data", "model", "train") for this config."""
        data_keys = ("sampling_rate", "filter_length", "hop_length", "win_length", "n_speakers")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        model = {k: v for k, v in values.items() if k not in data_keys and k != "segment_size"}
        for key, default in (("ssl_dim", SSL_DIM), ("sv_dim", SV_EMBEDDING_DIM)):
            if model[key] == default:  # upstream's widths stay implicit, so its files round-trip unchanged
                del model[key]
        if self.decoder == "hifigan":
            for key in _DECODER_KEYS:
                del model[key]
        if not self.text_position_prior:
            del model["text_position_prior"]
        for key in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            model[key] = list(model[key])
        model["resblock_dilation_sizes"] = [list(d) for d in model["resblock_dilation_sizes"]]
        return {
            "data": {k: values[k] for k in data_keys},
            "model": model,
            "train": {"segment_size": self.segment_size},
        }
