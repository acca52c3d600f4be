"""Model presets for training from scratch (no base model): architecture, encoders and loop settings.

A preset names a GPT (`T2SConfig`) and a SoVITS (`SoVITSConfig`) of upstream's architecture at other
sizes, the content and speaker encoders whose features they read, and training settings suited to
a from-scratch run on a CPU. The encoders' identities go into the exported SoVITS config under
"myna" (`encoder_record`), so `myna.engine.loading` picks the right ones for the files later.

"small" (the bundled default voice): GPT 8 layers x 288 (FFN 1152, 6 heads) and a SoVITS reading
Whisper tiny.en states (384 channels) with Resemblyzer's GE2E embedding (256) as its v2Pro-style
speaker input. The prior encoder has 4 layers with 512-wide FFNs; the waveform comes from the
frame-rate iSTFT decoder (8 ConvNeXt blocks of 192 channels) at 16 kHz, 50 frames per second (hop
320), which trains and runs at a fraction of the HiFi-GAN vocoder's cost (its settings stay in the
config for `decoder="hifigan"`: 32 kHz, 256 initial channels, upsampling 10-8-4-2, three "2"-type
residual blocks). Parameters: GPT 9.1 M, SoVITS 19.6 M (inference file, without the posterior
encoder); about 57 MB for both in fp16.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from myna.errors import InputError
from myna.features.encoders import CONTENT_DIMS, RESEMBLYZER, SPEAKER_DIMS, WHISPER
from myna.models.sovits import SoVITSConfig
from myna.models.t2s import T2SConfig
from myna.train.config import GPTTrainConfig, SoVITSTrainConfig


@dataclass
class Preset:
    """Architecture of both models, the encoders they read, and from-scratch training settings."""

    name: str
    gpt: T2SConfig
    sovits: SoVITSConfig
    content: str = WHISPER
    speaker: str = RESEMBLYZER
    sovits_train: SoVITSTrainConfig = field(default_factory=SoVITSTrainConfig)
    gpt_train: GPTTrainConfig = field(default_factory=GPTTrainConfig)

    def __post_init__(self) -> None:
        if CONTENT_DIMS.get(self.content) != self.sovits.ssl_dim:
            raise InputError(f"preset {self.name}: content encoder {self.content} does not give "
                             f"{self.sovits.ssl_dim}-channel features")
        if self.sovits.is_pro and SPEAKER_DIMS.get(self.speaker) != self.sovits.sv_dim:
            raise InputError(f"preset {self.name}: speaker encoder {self.speaker} does not give "
                             f"{self.sovits.sv_dim}-value embeddings")

    def encoder_record(self) -> dict[str, str]:
        """What the exported config records under RECORD_KEY."""
        return {"content": self.content, "speaker": self.speaker, "preset": self.name}


def _small() -> Preset:
    gpt = T2SConfig(embedding_dim=288, hidden_dim=288, head=6, linear_units=1152, n_layer=8, max_sec=54)
    sovits = SoVITSConfig(
        version="v2Pro", ssl_dim=CONTENT_DIMS[WHISPER], sv_dim=SPEAKER_DIMS[RESEMBLYZER], gin_channels=256,
        filter_channels=512, n_layers=4, freeze_quantizer=False,
        # 16 kHz, 50 frames/s, decoded by the frame-rate iSTFT head (the tokens stay 25 Hz)
        sampling_rate=16000, filter_length=1024, hop_length=320, win_length=1024, decoder="istft",
        decoder_channels=192, decoder_layers=8, segment_size=10240,
        # HiFi-GAN settings, used when `decoder` is "hifigan" (32 kHz: upsampling 10-8-4-2)
        resblock="2", resblock_kernel_sizes=(3, 5, 7), resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
        upsample_rates=(10, 8, 4, 2), upsample_kernel_sizes=(20, 16, 8, 4), upsample_initial_channel=256,
    )
    # From scratch: mel-only for the first 20k steps (the adversarial terms buy naturalness once the
    # decoder is intelligible), clips on 2-s windows (the decoder sees 0.32 s of each anyway).
    sovits_train = SoVITSTrainConfig(epochs=200, batch_size=8, learning_rate=2e-4, save_every_epochs=5,
                                     save_every_steps=500, discriminator_narrow=4, text_low_lr_rate=1.0,
                                     discriminator_start_step=20_000, crop_seconds=2.0)
    gpt_train = GPTTrainConfig(epochs=200, batch_size=8, learning_rate=5e-4, save_every_epochs=5,
                               save_every_steps=500, weight_decay=0.01, warmup_steps=1000)
    return Preset("small", gpt, sovits, WHISPER, RESEMBLYZER, sovits_train, gpt_train)


def _tiny() -> Preset:
    """A few-second test preset (same encoders, toy widths)."""
    small = _small()
    gpt = T2SConfig(embedding_dim=32, hidden_dim=32, head=2, linear_units=128, n_layer=1, max_sec=54)
    sovits = replace(small.sovits, inter_channels=32, hidden_channels=32, filter_channels=64, n_layers=2,
                     n_heads=2, gin_channels=32, decoder_channels=32, decoder_layers=2,
                     upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),),
                     segment_size=2560)
    return replace(small, name="tiny", gpt=gpt, sovits=sovits,
                   sovits_train=replace(small.sovits_train, discriminator_narrow=32, batch_size=2),
                   gpt_train=replace(small.gpt_train, batch_size=2))


PRESETS = {"small": _small, "tiny": _tiny}


def get_preset(name: str) -> Preset:
    """The preset called `name` (a fresh copy)."""
    if name not in PRESETS:
        raise InputError(f"unknown model preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]()

