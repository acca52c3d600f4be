"""Stage 2 trainer: SoVITS generator against the multi-period discriminator (upstream s2_train's step).

One step: the generator decodes a random latent slice of each clip; the discriminator is updated on
(real slice, generated slice), then the generator on mel L1 x c_mel + KL x c_kl + VQ commitment +
least-squares adversarial + feature-matching losses. Before `discriminator_start_step` the
discriminator is skipped and the generator trains on mel + KL + commitment only. Items are dicts of unpadded tensors:
"ssl" (ssl_dim, frames) content features at 50 Hz (HuBERT: 768; Whisper tiny: 384), "wav" (samples,) float audio at the model rate,
"phones" (N,) phoneme ids, and for v2Pro/v2ProPlus "sv_emb" (sv_dim,); items may carry "phone_positions" (frames,),
each content frame's phoneme index or -1, for `mrte_align`. A config with
`freeze_quantizer` false (a from-scratch model) also learns the codebook (myna.train.codebook).
With `latent="prior"` the slice is decoded from the prior (the inference path) instead of the
posterior, and there is no KL term (`SoVITS.forward_train`'s `prior_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from myna.audio.mel import log_mel, mel_filterbank, wave_log_mel
from myna.audio.spectrogram import linear_spectrogram
from myna.errors import InputError
from myna.models.discriminators import MultiPeriodDiscriminator
from myna.models.sovits import SoVITS, SoVITSConfig, slice_frames
from myna.train import codebook, losses
from myna.train.config import SoVITSTrainConfig
from myna.train.loop import Distributed, TrainingError, begin_update, wrap_ddp

_TEXT_SIDE = ("enc_p.text_embedding.", "enc_p.encoder_text.", "enc_p.mrte.")


def collate(items: list[Mapping[str, torch.Tensor]], config: SoVITSConfig) -> dict[str, torch.Tensor]:
    """Pad a list of items into one batch and compute each clip's linear spectrogram."""
    specs = [linear_spectrogram(item["wav"].float(), config.filter_length, config.hop_length,
                                config.win_length)[0] for item in items]
    frames = max(s.shape[1] for s in specs)
    ssl_frames = max(max(item["ssl"].shape[1] for item in items), frames)
    ssl_frames += ssl_frames % 2
    samples = max(frames * config.hop_length, max(item["wav"].shape[0] for item in items))
    phones = max(item["phones"].shape[0] for item in items)
    batch = {
        "ssl": torch.stack([F.pad(item["ssl"].float(), (0, ssl_frames - item["ssl"].shape[1])) for item in items]),
        "spec": torch.stack([F.pad(s, (0, frames - s.shape[1])) for s in specs]),
        "spec_lengths": torch.tensor([s.shape[1] for s in specs]),
        "wav": torch.stack([F.pad(item["wav"].float(), (0, samples - item["wav"].shape[0])) for item in items]),
        "phones": torch.stack([F.pad(item["phones"].long(), (0, phones - item["phones"].shape[0])) for item in items]),
        "phone_lengths": torch.tensor([item["phones"].shape[0] for item in items]),
    }
    if config.is_pro:
        batch["sv_emb"] = torch.stack([item["sv_emb"].float().reshape(-1) for item in items])
    if any("phone_positions" in item for item in items):  # -1: no known phoneme (padding, unaligned items)
        unknown = torch.full((frames,), -1, dtype=torch.long)
        batch["phone_positions"] = torch.stack([
            F.pad(item["phone_positions"][:frames].long(), (0, frames - min(frames, item["phone_positions"].shape[0])),
                  value=-1) if "phone_positions" in item else unknown for item in items])
    return batch


class _TrainForward(nn.Module):
    """Routes forward() to SoVITS.forward_train, so DistributedDataParallel can wrap the training pass."""

    def __init__(self, model: SoVITS) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """SoVITS.forward_train."""
        return self.model.forward_train(*args, **kwargs)


class SoVITSTrainer:
    """Holds the generator, discriminator and their optimizers; `loop.run` drives it."""

    def __init__(self, model_config: SoVITSConfig, settings: SoVITSTrainConfig,
                 generator_state: Mapping[str, torch.Tensor] | None = None,
                 discriminator_state: Mapping[str, torch.Tensor] | None = None,
                 ctx: Distributed | None = None, sample_item: Mapping[str, torch.Tensor] | None = None) -> None:
        self.config, self.settings, self.ctx = model_config, settings, ctx or Distributed()
        self.device = torch.device(settings.device)
        torch.manual_seed(settings.seed)  # fresh layers (enc_q, D) start from the same weights every run
        self.generator = SoVITS(model_config, with_posterior=settings.latent == "posterior")
        self.discriminator = MultiPeriodDiscriminator(model_config.version, model_config.use_spectral_norm,
                                                      settings.discriminator_narrow)
        if generator_state is not None:
            load_generator_state(self.generator, generator_state)
        if discriminator_state is not None:
            self.discriminator.load_state_dict({k: v.float() for k, v in discriminator_state.items()})
        self.generator.to(self.device).train()
        self.discriminator.to(self.device).train()
        self.train_g = wrap_ddp(_TrainForward(self.generator), self.ctx, settings.device)
        self.train_d = wrap_ddp(self.discriminator, self.ctx, settings.device)
        text_side = [p for n, p in self.generator.named_parameters() if n.startswith(_TEXT_SIDE)]
        text_ids = {id(p) for p in text_side}
        base = [p for p in self.generator.parameters() if id(p) not in text_ids]
        rate = settings.learning_rate
        self.optim_g = torch.optim.AdamW(
            [{"params": base, "lr": rate, "scale": 1.0},
             {"params": text_side, "lr": rate * settings.text_low_lr_rate, "scale": settings.text_low_lr_rate}],
            rate, betas=settings.betas, eps=settings.eps, foreach=True)
        self.optim_d = torch.optim.AdamW(self.discriminator.parameters(), rate, betas=settings.betas, eps=settings.eps, foreach=True)
        self.filterbank = mel_filterbank(model_config.sampling_rate, model_config.filter_length,
                                         settings.n_mel_channels, settings.mel_fmin, settings.mel_fmax)
        self.sample_item = sample_item
        self.warm_start = 0  # the step training last started at without optimizer moments

    def _set_rates(self, epoch: int, step: int) -> None:
        decay = self.settings.lr_decay**epoch
        if self.settings.warmup_steps:
            decay *= min(1.0, (step - self.warm_start + 1) / self.settings.warmup_steps)
        for optim in (self.optim_g, self.optim_d):
            for group in optim.param_groups:
                group["lr"] = self.settings.learning_rate * group.get("scale", 1.0) * decay

    def train_step(self, items: list[dict[str, torch.Tensor]], step: int, epoch: int) -> dict[str, float]:
        """One discriminator and one generator update on `items`."""
        c, s = self.config, self.settings
        if s.crop_seconds:
            items = [crop_item(item, c, s.crop_seconds, s.crop_phones) for item in items]
        batch = {k: v.to(self.device) for k, v in collate(items, c).items()}
        if batch["ssl"].shape[1] != c.ssl_dim:
            raise TrainingError(f"SoVITS items need 'ssl' features of {c.ssl_dim} channels, got {batch['ssl'].shape[1]}"
                                " (features from another content encoder than the model's?)")
        self._set_rates(epoch, step)
        noise = torch.Generator(device=self.device).manual_seed(int(torch.initial_seed()) + 7)
        learn_codebook = (not c.freeze_quantizer and not s.freeze_tokens
                          and (not s.quantizer_steps or step < s.quantizer_steps))
        if learn_codebook:
            vq_draws = torch.Generator().manual_seed(int(torch.initial_seed()) + 11)
            vq_lengths = batch["spec_lengths"] // (2 if c.semantic_frame_rate == "25hz" else 1)
            if not bool(self.generator.quantizer.vq.layers[0]._codebook.inited.item()):
                begin_update()
                with torch.no_grad():
                    codebook.ensure_initialised(self.generator.quantizer, self.generator.ssl_proj(batch["ssl"]),
                                                vq_lengths, vq_draws)
        with s.autocast():
            out = self.train_g(batch["ssl"], batch["spec"], batch["spec_lengths"], batch["phones"],
                               batch["phone_lengths"], batch.get("sv_emb"), noise,
                               s.prior_noise if s.latent == "prior" else None, s.token_noise,
                               s.token_noise_span, with_attention=s.mrte_guide > 0 or s.mrte_align > 0,
                               token_blank=s.token_blank)
        out = out._replace(**{k: v.float() for k, v in out._asdict().items()  # losses in fp32
                              if v is not None and v.is_floating_point()})
        segment = c.segment_size // c.hop_length
        real_mel = slice_frames(log_mel(batch["spec"], self.filterbank), out.slice_starts, segment)
        fake_mel = wave_log_mel(out.audio.squeeze(1), self.filterbank, c.filter_length, c.hop_length, c.win_length)
        real = slice_frames(batch["wav"].unsqueeze(1), out.slice_starts * c.hop_length, c.segment_size)

        loss_mel = F.l1_loss(real_mel, fake_mel) * s.c_mel
        loss_kl = (torch.zeros((), device=loss_mel.device) if out.z_p is None
                   else losses.kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.mask) * s.c_kl)
        loss_g = loss_mel + loss_kl + (0.0 if s.freeze_tokens else out.commit_loss)
        if s.mrte_guide:
            loss_guide = losses.guided_attention_loss(out.text_attention, batch["spec_lengths"], batch["phone_lengths"])
            loss_g = loss_g + loss_guide * s.mrte_guide
        if s.mrte_align and "phone_positions" in batch:
            loss_align = losses.aligned_attention_loss(out.text_attention, batch["phone_positions"])
            loss_g = loss_g + loss_align * s.mrte_align
        loss_d = torch.zeros(())
        if step >= s.discriminator_start_step:
            with s.autocast():
                real_scores, fake_scores, _, _ = self.train_d(real, out.audio.detach())
            loss_d = losses.discriminator_loss(real_scores, fake_scores)
            self.optim_d.zero_grad(set_to_none=True)
            loss_d.backward()
            begin_update()
            self.optim_d.step()
            with s.autocast():
                _, fake_scores, real_features, fake_features = self.train_d(real, out.audio)
            loss_g = loss_g + losses.generator_loss(fake_scores) + losses.feature_loss(real_features, fake_features)
        if not torch.isfinite(loss_g):
            raise TrainingError(f"SoVITS loss became {loss_g.item()} at step {step}; lower the learning rate")
        self.optim_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if (not c.freeze_quantizer or s.freeze_tokens) and not learn_codebook:
            for param in self.generator.ssl_proj.parameters():  # frozen: AdamW skips parameters without a gradient
                param.grad = None
        begin_update()
        self.optim_g.step()
        shown = {"g": loss_g.item(), "d": loss_d.item(), "mel": loss_mel.item(), "kl": loss_kl.item()}
        if s.mrte_guide:
            shown["guide"] = loss_guide.item()
        if s.mrte_align and "phone_positions" in batch:
            shown["align"] = loss_align.item()
        if learn_codebook:
            shown.update(codebook.train_codebook(self.generator.quantizer, out.projected, out.codes, vq_lengths,
                                                 vq_draws))
        return shown

    def state(self) -> dict[str, Any]:
        """Weights and optimizer moments of both networks."""
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "optim_g": self.optim_g.state_dict(), "optim_d": self.optim_d.state_dict(),
                "warm_start": self.warm_start}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a `state()`."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optim_g.load_state_dict(state["optim_g"])
        for group, scale in zip(self.optim_g.param_groups, (1.0, self.settings.text_low_lr_rate), strict=True):
            group["scale"] = scale  # the saved groups carry the old run's; a resumed run may set another
        self.optim_d.load_state_dict(state["optim_d"])
        self.warm_start = int(state.get("warm_start", 0))

    def load_fork(self, state: dict[str, Any], old_config: SoVITSConfig, reinit: tuple[str, ...] = ()) -> list[str]:
        """Start from another run's `state()`, of a decoder of `old_config` (another design, e.g. one without the
        text position prior). Generator weights of the same name and shape are carried with their optimizer moments;
        the rest, and every weight whose name starts with one of `reinit` (e.g. "enc_p.encoder_text."), keep this
        trainer's fresh initial values and start without moments. The discriminator and its optimizer are carried
        whole. Returns the names of the generator's weights that start fresh."""
        fresh = self.generator.state_dict()
        if unknown := [prefix for prefix in reinit if not any(name.startswith(prefix) for name in fresh)]:
            named = ", ".join(prefix + "..." for prefix in unknown)
            raise InputError(f"no decoder weight is named {named} (e.g. enc_p.encoder_text.)")
        old = SoVITSTrainer(old_config, self.settings)
        old.load_state(state)
        carried = {name: value for name, value in old.generator.state_dict().items()
                   if name in fresh and value.shape == fresh[name].shape and not name.startswith(reinit)}
        self.generator.load_state_dict(carried, strict=False)
        moments = {name: old.optim_g.state[param] for name, param in old.generator.named_parameters()
                   if param in old.optim_g.state}
        for name, param in self.generator.named_parameters():
            if name in carried and name in moments:
                self.optim_g.state[param] = {key: value.clone() for key, value in moments[name].items()}
        self.discriminator.load_state_dict(old.discriminator.state_dict())
        self.optim_d.load_state_dict(old.optim_d.state_dict())
        self.warm_start = old.warm_start
        return [name for name, _ in self.generator.named_parameters() if name not in carried]

    def on_checkpoint(self, step: int, out_dir: Path) -> None:
        """Write samples/step_N.wav: the first item resynthesised from its own tokens and timbre."""
        if self.sample_item is None:
            return
        from myna.audio.io import write_wav

        audio = render_item(self.generator, self.sample_item, self.device)
        (out_dir / "samples").mkdir(exist_ok=True)
        write_wav(out_dir / "samples" / f"step_{step:08d}.wav", audio, self.config.sampling_rate)


# crop_item(phones=True) keeps the phonemes of the window widened by this many seconds on each side
PHONE_MARGIN_SECONDS = 0.3


def crop_item(item: Mapping[str, torch.Tensor], config: SoVITSConfig, seconds: float,
              phones: bool = False) -> dict[str, torch.Tensor]:
    """A random window of `seconds` of a longer item (content frames and audio aligned).

    The phonemes stay whole, or with `phones` only the share of them that falls in the window by position (the clip's
    phonemes spread evenly over its frames), widened by PHONE_MARGIN_SECONDS each side for uneven speech. The start
    comes from the global RNG, which the training loop seeds per step (resumes stay exact)."""
    frames = max(2, int(seconds * config.sampling_rate / config.hop_length)) // 2 * 2  # whole 25 Hz tokens
    total = min(item["ssl"].shape[1], item["wav"].shape[0] // config.hop_length)
    if total <= frames:
        return dict(item)
    start = int(torch.randint(0, (total - frames) // 2 + 1, ()).item()) * 2
    window = {**item, "ssl": item["ssl"][:, start : start + frames],
              "wav": item["wav"][start * config.hop_length : (start + frames) * config.hop_length]}
    if "phone_positions" in item:
        window["phone_positions"] = item["phone_positions"][start : start + frames]
    if phones:
        count = item["phones"].shape[0]
        margin = PHONE_MARGIN_SECONDS * config.sampling_rate / config.hop_length
        first = max(0, math.floor((start - margin) / total * count))
        last = min(count, math.ceil((start + frames + margin) / total * count))
        window["phones"] = item["phones"][first:last]
        if "phone_positions" in item:  # indices into the kept phonemes; a frame whose phoneme was cut has none
            shifted = window["phone_positions"] - first
            window["phone_positions"] = torch.where((shifted >= 0) & (shifted < last - first) &
                                                    (window["phone_positions"] >= 0), shifted, -1)
    return window


def render_item(model: SoVITS, item: Mapping[str, torch.Tensor], device: torch.device,
                codes: torch.Tensor | None = None) -> Any:
    """Resynthesise one training item (its semantic tokens, or `codes` (n_q, 1, T) in their place, phonemes and own
    timbre) as float audio."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            c = model.config
            if codes is None:
                codes = model.extract_latent(item["ssl"].float().unsqueeze(0).to(device))
            codes = codes.to(device)
            spec = linear_spectrogram(item["wav"].float().to(device), c.filter_length, c.hop_length, c.win_length)
            sv = item["sv_emb"].float().reshape(1, -1).to(device) if c.is_pro else None
            wave = model.decode(codes, item["phones"].long().to(device), spec, noise_scale=0.5, sv_emb=sv,
                                generator=torch.Generator(device=device).manual_seed(0))
    finally:
        model.train(was_training)
    return wave[0, 0].cpu().numpy()


def load_generator_state(model: SoVITS, state: Mapping[str, torch.Tensor]) -> None:
    """Load an inference state dict (upstream strips `enc_q.*`) into a training model; enc_q stays fresh."""
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not k.startswith("enc_q."))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise TrainingError(f"base SoVITS weights do not fit the training model ({len(missing)} missing,"
                            f" {len(unexpected)} unexpected, {len(wrong)} of another shape; e.g. {first})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
