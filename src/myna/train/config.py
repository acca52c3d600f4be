"""Typed training settings for the two stages; saved as JSON next to the checkpoints they produced.

Few-shot defaults (a voice from 1-30 minutes of speech, fine-tuned from the released base models),
with the upstream setting each one follows:
- SoVITS: 8 epochs and a save every 4 epochs (upstream WebUI's few-shot defaults for v2); AdamW at
  1e-4, betas (0.8, 0.99), eps 1e-9, per-epoch decay 0.999875, mel weight 45, KL weight 1 and the
  text-side modules (phoneme embedding, text encoder, MRTE) at 0.4x the rate (upstream s2.json).
  Batch 4 instead of upstream's GPU-sized batch: few-shot sets are small and this also fits a CPU.
- GPT: 15 epochs, a save every 5 (WebUI defaults), batch 8 (s1longer-v2.yaml), gradient clipping at
  1.0 (s1longer-v2.yaml), dropout 0.1 in the layers (upstream's hard-wired training value). Upstream uses ScaledAdam with a 2000-step warm-up from 1e-5 towards 0.01
  (a rate relative to each weight's size); a few-shot run ends after some tens of steps, well inside
  the warm-up, where those updates are about 1e-5 of absolute size. Plain AdamW at a constant 1e-5
  with upstream's betas (0.9, 0.95) makes updates of that size and needs no warm-up bookkeeping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from myna.config import TRAIN_PRECISIONS
from myna.errors import InputError

T = TypeVar("T", bound="_Settings")


@dataclass
class _Settings:
    """Shared loop settings and JSON round trip."""

    epochs: int = 8
    batch_size: int = 4
    learning_rate: float = 1e-4
    seed: int = 1234
    save_every_epochs: int = 4  # a checkpoint (and a sample) every N epochs and at the end
    save_every_steps: int = 0  # additionally every N optimizer steps (0 = off)
    # additionally when this many minutes passed since the last save (0 = off): a CPU step can take a
    # minute, so an epoch-only cadence could lose much work to a crash
    save_every_minutes: float = 10.0
    max_steps: int = 0  # stop after this many steps in total (0 = run all epochs)
    keep_checkpoints: int = 2  # resumable training states kept on disk (oldest deleted)
    device: str = "cpu"
    # "bf16": forward passes under bfloat16 autocast (losses, weights and optimizer state stay fp32);
    # about 1.7x faster SoVITS steps on CPUs with AVX-512 BF16 or AMX, slower on CPUs without them.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in TRAIN_PRECISIONS:
            raise InputError(f"training precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {self.precision!r}")
        for name in ("epochs", "batch_size", "save_every_epochs", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise InputError(f"training setting {name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps < 0 or self.save_every_steps < 0 or self.save_every_minutes < 0:
            raise InputError("max_steps, save_every_steps and save_every_minutes must be >= 0")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context forward passes run in: bfloat16 autocast for precision "bf16", else a no-op."""
        if self.precision == "bf16":
            return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        """Build from a dict; unknown keys are an error (a typo should not be silently ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"unknown {cls.__name__} settings: {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)

    def save(self, path: str | Path) -> None:
        """Write as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        """Read what `save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class SoVITSTrainConfig(_Settings):
    """Stage 2 (SoVITS generator + discriminators); names follow upstream s2.json's "train" keys."""

    epochs: int = 8
    batch_size: int = 4
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875  # per epoch
    c_mel: float = 45.0
    c_kl: float = 1.0
    text_low_lr_rate: float = 0.4
    n_mel_channels: int = 128
    mel_fmin: float = 0.0
    mel_fmax: float | None = None
    save_every_epochs: int = 4
    discriminator_narrow: int = 1  # > 1 divides the discriminator's widths (tests, benchmarks); 1 = upstream's
    # From-scratch runs on small compute: the first N steps train on mel + KL only (no discriminator,
    # as vocoder recipes warm the generator up before the adversarial loss); 0 = adversarial from the start.
    discriminator_start_step: int = 0
    # From-scratch runs: learn the codebook (and the content projection) for N steps, then freeze both so
    # the semantic tokens stop changing and the GPT can train on them meanwhile; 0 = learn throughout.
    quantizer_steps: int = 0
    # > 0: clips longer than this many seconds train on a random window of that length (the posterior
    # encoder, prior encoder and flow then run on the window, not the whole clip); 0 = whole clips.
    crop_seconds: float = 0.0
    # True: the content projection and codebook were set before training (myna.train.phonetic's phone
    # tokens) and never change; no commitment loss.
    freeze_tokens: bool = False
    # Linear learning-rate warm-up over the first N steps after a start without optimizer moments
    # (from scratch, or resumed from a weights-only snapshot); 0 = none.
    warmup_steps: int = 0
    # "posterior": upstream's training (the decoder reads the posterior latent; mel + KL losses).
    # "prior": the decoder reads the inference path (prior mean + `prior_noise` x its noise through the
    # reversed flow) and trains on the mel loss alone; no posterior encoder, no KL. A from-scratch
    # decoder learns words this way where the posterior path collapsed (docs/default-voice-history.md).
    latent: str = "posterior"
    prior_noise: float = 0.5
    # Share of the token frames replaced by random codes in each training pass (SoVITS.forward_train's
    # `token_noise`): the decoder then has to take the words from the phonemes where the tokens are wrong. 0: none.
    token_noise: float = 0.0
    # ... replaced in runs of this many token frames (a single wrong frame can be guessed from its neighbours).
    token_noise_span: int = 1
    # Share of the token frames that carry no content at all (zeros, SoVITS.forward_train's `token_blank`), in runs
    # of `token_noise_span`: there only the phonemes say what is said, which no wrong token can contradict. 0: none.
    token_blank: float = 0.0
    # With `crop_seconds`: True keeps only the window's share of the phonemes (by position, with a margin), as at
    # inference, where the phonemes cover just the decoded tokens; False keeps the whole clip's phonemes.
    crop_phones: bool = False
    # Weight of a guided-attention loss on MRTE's attention from content frames to phonemes (myna.train.losses.
    # guided_attention_loss): it pulls that attention towards the diagonal, where a from-scratch decoder's can park
    # on one phoneme and carry nothing of the text. 0: none (upstream's training).
    mrte_guide: float = 0.0
    # Weight of a loss that tells MRTE's attention each frame's phoneme (myna.train.losses.aligned_attention_loss):
    # items carrying "phone_positions" (a frame-level phone alignment) have their attention pulled onto the aligned
    # phoneme. 0: none.
    mrte_align: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent not in ("posterior", "prior"):
            raise InputError(f"latent must be 'posterior' or 'prior', got {self.latent!r}")
        for name in ("token_noise", "token_blank"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.mrte_guide < 0 or self.mrte_align < 0:
            raise InputError(f"mrte_guide and mrte_align must be >= 0, got {self.mrte_guide} and {self.mrte_align}")
        if self.token_noise_span < 1:
            raise InputError(f"token_noise_span must be >= 1, got {self.token_noise_span}")
        if self.warmup_steps < 0:
            raise InputError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.discriminator_start_step < 0 or self.quantizer_steps < 0:
            raise InputError("discriminator_start_step and quantizer_steps must be >= 0")
        if self.crop_seconds < 0:
            raise InputError(f"crop_seconds must be >= 0, got {self.crop_seconds}")


@dataclass
class GPTTrainConfig(_Settings):
    """Stage 1 (text-to-semantic GPT, next-token cross-entropy)."""

    epochs: int = 15
    batch_size: int = 8
    learning_rate: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    dropout: float = 0.1  # upstream's GPT layers train with 0.1 (hard-wired there)
    save_every_epochs: int = 5
    warmup_steps: int = 0  # linear learning-rate warm-up (from-scratch presets; fine-tuning needs none)
    # At most this many items x (longest phonemes + tokens)^2 go through one forward pass; a batch of long
    # utterances is run in parts and their gradients summed (the same step, a fraction of the memory: a
    # batch with 9-10 s utterances held ~10 GB at the released size). 8 x 160^2 keeps batches of 8 clips
    # of up to ~4 s whole (25 tokens/s plus their phonemes). 0: whole batches.
    attention_budget: int = 8 * 160**2
