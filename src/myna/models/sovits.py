"""SoVITS: semantic tokens + phonemes + reference timbre -> waveform (GPT-SoVITS v1/v2/v2Pro/v2ProPlus).

Reads top to bottom (`SoVITSConfig`, fields named after upstream's s2.json keys, is in sovits_config.py): the prior
text encoder (`TextEncoder`, state-dict prefix `enc_p`), then `SoVITS` with `extract_latent` (SSL features
-> tokens) and `decode` (tokens -> audio). Sub-modules live in attention.py, mrte.py, quantizer.py,
style_encoder.py, flow.py and vocoder.py; state-dict keys equal upstream's `SynthesizerTrn`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from myna.errors import InputError
from myna.models.attention import TransformerEncoder
from myna.models.flow import PosteriorEncoder, ResidualCouplingBlock
from myna.models.istft_head import ISTFTHead
from myna.models.layers import fold_weight_norm, time_mask
from myna.models.mrte import MRTE
from myna.models.quantizer import ResidualVectorQuantizer
from myna.models.sovits_config import MRTE_TIMBRE_DIM, SSL_DIM, V2_REFERENCE_BINS, SoVITSConfig
from myna.models.style_encoder import MelStyleEncoder
from myna.models.vocoder import Generator


class TextEncoder(nn.Module):
    """Prior encoder: content features + phonemes (+ timbre via MRTE) -> prior mean and log-std."""

    def __init__(self, config: SoVITSConfig) -> None:
        super().__init__()
        c = config
        self.out_channels = c.inter_channels
        self.ssl_proj = nn.Conv1d(c.ssl_dim, c.hidden_channels, 1)
        self.encoder_ssl = TransformerEncoder(
            c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size, c.p_dropout
        )
        self.encoder_text = TransformerEncoder(
            c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers, c.kernel_size, c.p_dropout
        )
        self.text_embedding = nn.Embedding(c.n_symbols, c.hidden_channels)
        self.mrte = MRTE(c.hidden_channels, MRTE_TIMBRE_DIM, c.hidden_channels, position_prior=c.text_position_prior)
        self.encoder2 = TransformerEncoder(
            c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size, c.p_dropout
        )
        self.proj = nn.Conv1d(c.hidden_channels, c.inter_channels * 2, 1)

    def forward(
        self,
        content: torch.Tensor,
        content_lengths: torch.Tensor,
        phone_ids: torch.Tensor,
        phone_lengths: torch.Tensor,
        ge: torch.Tensor | None,
        speed: float = 1.0,
        frame_positions: torch.Tensor | None = None,
        with_attention: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """content (B, ssl_dim, T), phone_ids (B, N), ge (B, 512, 1) -> (mean, log_std, mask) at T / speed.

        `frame_positions` (L,): instead of `speed`, output frame i reads the (fractional) content frame
        `frame_positions[i]`, interpolated linearly: any time warp, e.g. a word spoken slower than the rest.
        `with_attention`: MRTE's attention (B, T, N) from content frames to phonemes comes fourth (training).
        """
        x, mask, text, text_mask = self._encode(content, content_lengths, phone_ids, phone_lengths)
        x = self.mrte(x, mask, text, text_mask, ge, with_attention=with_attention)
        x, attention = x if with_attention else (x, None)
        x = self.encoder2(x * mask, mask)
        if frame_positions is not None:
            x = warp_frames(x, frame_positions)
            mask = F.interpolate(mask, size=x.shape[-1], mode="nearest")
        elif speed != 1:
            x = F.interpolate(x, size=int(x.shape[-1] / speed) + 1, mode="linear")
            mask = F.interpolate(mask, size=x.shape[-1], mode="nearest")
        mean, log_std = torch.split(self.proj(x) * mask, self.out_channels, dim=1)
        return (mean, log_std, mask, attention) if with_attention else (mean, log_std, mask)


    def _encode(self, content, content_lengths, phone_ids, phone_lengths):
        mask = time_mask(content_lengths, content.shape[2], content.dtype)
        x = self.ssl_proj(content * mask) * mask
        x = self.encoder_ssl(x * mask, mask)
        text, text_mask = self.encode_text(phone_ids, phone_lengths, x.dtype)
        return x, mask, text, text_mask

    def encode_text(
        self, phone_ids: torch.Tensor, phone_lengths: torch.Tensor, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """phone_ids (B, N) -> the text encoder's states (B, hidden, N) that MRTE attends to, and their mask (of
        `dtype`, the weights' by default)."""
        text_mask = time_mask(phone_lengths, phone_ids.shape[1], dtype or self.text_embedding.weight.dtype)
        text = self.text_embedding(phone_ids).transpose(1, 2)
        return self.encoder_text(text * text_mask, text_mask), text_mask

    def text_attention(
        self, content: torch.Tensor, content_lengths: torch.Tensor, phone_ids: torch.Tensor, phone_lengths: torch.Tensor
    ) -> torch.Tensor:
        """MRTE's attention (B, T, N) from each content frame to each phoneme (a soft alignment)."""
        x, mask, text, text_mask = self._encode(content, content_lengths, phone_ids, phone_lengths)
        return self.mrte.text_attention(x, mask, text, text_mask)


def warp_frames(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, C, T) sampled at fractional frame `positions` (L,) with linear interpolation -> (B, C, L)."""
    last = x.shape[-1] - 1
    positions = positions.to(x.dtype).clamp(0, last)
    low = positions.floor().long()
    high = (low + 1).clamp(max=last)
    frac = positions - low.to(x.dtype)
    return x[..., low] * (1 - frac) + x[..., high] * frac


class TrainOutput(NamedTuple):
    """What one training forward returns (upstream `SynthesizerTrn.forward`'s tuple, named)."""

    audio: torch.Tensor  # (B, 1, segment samples) generated waveform slice
    commit_loss: torch.Tensor  # VQ commitment loss (upstream's kl_ssl)
    slice_starts: torch.Tensor  # (B,) first latent frame of each slice
    mask: torch.Tensor  # (B, 1, T) spectrogram-frame mask
    z_p: torch.Tensor | None  # posterior sample mapped through the flow (None when decoding the prior)
    m_p: torch.Tensor  # prior mean
    logs_p: torch.Tensor  # prior log-std
    logs_q: torch.Tensor | None  # posterior log-std (None when decoding the prior)
    projected: torch.Tensor  # (B, ssl_dim, T') detached quantizer input, for codebook updates (train/)
    codes: torch.Tensor  # (n_q, B, T') the codes chosen for `projected`
    text_attention: torch.Tensor | None = None  # (B, T, N) MRTE's attention to the phonemes, when asked for


def slice_frames(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """(B, C, T) -> (B, C, length) windows starting at `starts`; zero-padded past the end."""
    padded = F.pad(x, (0, length))
    return torch.stack([padded[i, :, int(s) : int(s) + length] for i, s in enumerate(starts)])


class SoVITS(nn.Module):
    """GPT-SoVITS synthesizer (upstream `SynthesizerTrn`), inference path plus optional `enc_q`."""

    def __init__(self, config: SoVITSConfig, with_posterior: bool = False) -> None:
        super().__init__()
        c = self.config = config
        self.enc_p = TextEncoder(c)
        if c.decoder == "istft":
            self.dec = ISTFTHead(c.inter_channels, c.decoder_channels, c.decoder_layers, c.filter_length,
                                 c.hop_length, c.win_length, gin_channels=c.gin_channels)
        else:
            self.dec = Generator(
                c.inter_channels,
                c.resblock,
                c.resblock_kernel_sizes,
                c.resblock_dilation_sizes,
                c.upsample_rates,
                c.upsample_initial_channel,
                c.upsample_kernel_sizes,
                gin_channels=c.gin_channels,
            )
        if with_posterior:
            self.enc_q = PosteriorEncoder(
                c.spec_channels, c.inter_channels, c.hidden_channels, 5, 1, 16, gin_channels=c.gin_channels
            )
        self.flow = ResidualCouplingBlock(
            c.inter_channels, c.hidden_channels, 5, 1, 4, gin_channels=c.gin_channels
        )
        # v2+ see the lowest 704 bins; a smaller spectrogram (a from-scratch model) is seen whole
        self.reference_bins = c.spec_channels if c.version == "v1" else min(V2_REFERENCE_BINS, c.spec_channels)
        self.ref_enc = MelStyleEncoder(self.reference_bins, out_dim=c.gin_channels)
        stride = 2 if c.semantic_frame_rate == "25hz" else 1
        self.ssl_proj = nn.Conv1d(c.ssl_dim, c.ssl_dim, stride, stride=stride)
        self.quantizer = ResidualVectorQuantizer(dimension=c.ssl_dim, n_q=1, bins=1024)
        if c.is_pro:
            self.sv_emb = nn.Linear(c.sv_dim, c.gin_channels)
            self.ge_to512 = nn.Linear(c.gin_channels, MRTE_TIMBRE_DIM)
            self.prelu = nn.PReLU(num_parameters=c.gin_channels)

    def fold_weight_norm(self) -> SoVITS:
        """Fold weight norm into plain kernels (inference only; changes the state-dict keys)."""
        fold_weight_norm(self)
        return self

    @torch.no_grad()
    def extract_latent(self, ssl_features: torch.Tensor) -> torch.Tensor:
        """SSL features (B, ssl_dim, T) at 50 Hz -> semantic codes (B, n_q, T') (T' = T // 2 for 25 Hz)."""
        dim = self.config.ssl_dim
        if ssl_features.dim() != 3 or ssl_features.shape[1] != dim:
            raise InputError(
                f"ssl_features must be (batch, {dim}, frames), got {tuple(ssl_features.shape)}: this model"
                f" reads {dim}-channel content features ({_content_hint(dim)})"
            )
        codes = self.quantizer.encode(self.ssl_proj(ssl_features))
        return codes.transpose(0, 1)

    def _reference_timbre(self, spec: torch.Tensor, sv_emb: torch.Tensor | None) -> torch.Tensor:
        if spec.dim() != 3 or spec.shape[1] < self.reference_bins:
            raise InputError(
                f"reference spectrogram must be (batch, {self.config.spec_channels}, frames),"
                f" got {tuple(spec.shape)}"
            )
        mask = torch.ones(spec.shape[0], 1, spec.shape[2], dtype=spec.dtype, device=spec.device)
        ge = self.ref_enc(spec[:, : self.reference_bins] * mask, mask)
        if self.config.is_pro:
            if sv_emb is None:
                raise InputError(
                    f"{self.config.version} needs a speaker-verification embedding per reference"
                )
            if sv_emb.shape[-1] != self.config.sv_dim:
                raise InputError(
                    f"speaker embedding has {sv_emb.shape[-1]} values, this model reads {self.config.sv_dim}"
                    " (20480: ERes2NetV2, 256: Resemblyzer); use the speaker encoder the model was trained with"
                )
            ge = self.prelu(ge + self.sv_emb(sv_emb).unsqueeze(-1))
        return ge

    def timbre(
        self,
        refer_specs: torch.Tensor | Sequence[torch.Tensor],
        sv_embs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Timbre vector `ge` (B, gin, 1): mean over references of each one's encoding."""
        if isinstance(refer_specs, torch.Tensor):
            refer_specs = [refer_specs]
            if isinstance(sv_embs, torch.Tensor):
                sv_embs = [sv_embs]
        if not refer_specs:
            raise InputError("at least one reference spectrogram is needed")
        if self.config.is_pro and (sv_embs is None or len(sv_embs) != len(refer_specs)):
            raise InputError("v2Pro/v2ProPlus need one speaker-verification embedding per reference")
        per_ref = [
            self._reference_timbre(spec, sv_embs[i] if sv_embs is not None else None)
            for i, spec in enumerate(refer_specs)
        ]
        return torch.stack(per_ref, 0).mean(0)

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        phone_ids: torch.Tensor,
        refer_specs: torch.Tensor | Sequence[torch.Tensor],
        noise_scale: float = 0.5,
        speed: float = 1.0,
        sv_emb: torch.Tensor | Sequence[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        frame_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Synthesize a waveform (B, 1, samples) from semantic codes, phonemes and reference timbre.

        codes: (T,), (B, T) or (n_q, B, T) at 25 Hz; phone_ids: (N,) or (B, N); refer_specs: one
        (B, 1025, frames) linear spectrogram or a list of them (their timbres are averaged); sv_emb:
        v2Pro/v2ProPlus only, one (B, sv_dim) embedding per reference. The prior noise is drawn from
        `generator` (the global RNG if None) and skipped when noise_scale is 0. `frame_positions`
        replaces `speed` with any time warp of the 50 Hz content frames (see `TextEncoder.forward`).
        """
        return self.vocode(*self.prior(codes, phone_ids, refer_specs, noise_scale, speed, sv_emb, generator,
                                       frame_positions))

    @torch.no_grad()
    def prior(
        self,
        codes: torch.Tensor,
        phone_ids: torch.Tensor,
        refer_specs: torch.Tensor | Sequence[torch.Tensor],
        noise_scale: float = 0.5,
        speed: float = 1.0,
        sv_emb: torch.Tensor | Sequence[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        frame_positions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first part of `decode` (same arguments): the prior sample z (B, C, T), its mask and the timbre ge.

        It draws the prior noise, so a caller can vocode one fragment (`vocode`, no randomness) while the
        generator goes on to the next fragment's sampling, and get `decode`'s audio.
        """
        if speed <= 0:
            raise InputError(f"speed must be > 0, got {speed}")
        codes = (
            codes.view(1, 1, -1) if codes.dim() == 1 else codes.unsqueeze(0) if codes.dim() == 2 else codes
        )
        if phone_ids.dim() == 1:
            phone_ids = phone_ids.unsqueeze(0)
        if codes.shape[-1] == 0 or phone_ids.shape[-1] == 0:
            raise InputError("decode needs at least one semantic token and one phoneme")
        if int(phone_ids.min()) < 0 or int(phone_ids.max()) >= self.config.n_symbols:
            raise InputError(
                f"phoneme ids must lie in [0, {self.config.n_symbols}) for a {self.config.version} model"
                " (v1 models use the 322-symbol table, later versions 732)"
            )
        if int(codes.min()) < 0 or int(codes.max()) >= 1024:
            raise InputError("semantic tokens must lie in [0, 1024); EOS (1024) must be stripped first")
        ge = self.timbre(refer_specs, sv_emb)

        content = self.quantizer.decode(codes)
        if self.config.semantic_frame_rate == "25hz":
            content = F.interpolate(content, size=content.shape[-1] * 2, mode="nearest")
        batch = content.shape[0]
        content_lengths = torch.full((batch,), content.shape[-1], dtype=torch.long, device=content.device)
        phone_lengths = torch.full((batch,), phone_ids.shape[-1], dtype=torch.long, device=phone_ids.device)
        mrte_ge = self.ge_to512(ge.transpose(2, 1)).transpose(2, 1) if self.config.is_pro else ge
        mean, log_std, mask = self.enc_p(content, content_lengths, phone_ids, phone_lengths, mrte_ge, speed,
                                         frame_positions)

        # Noise is drawn even at noise_scale 0, as upstream does: later draws from the same generator
        # (the next fragment's sampling) then see the same random stream as upstream's.
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + noise * torch.exp(log_std) * noise_scale, mask, ge

    @torch.no_grad()
    def vocode(self, z_prior: torch.Tensor, mask: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """The rest of `decode`: reverse flow and vocoder, `prior`'s outputs -> waveform (B, 1, samples)."""
        z = self.flow(z_prior, mask, g=ge, reverse=True)
        return self.dec(z * mask, g=ge)

    @torch.no_grad()
    def text_alignment(self, codes: torch.Tensor, phone_ids: torch.Tensor) -> torch.Tensor:
        """Soft alignment (T, N): MRTE's attention from each content frame of `codes` (T',) to each phoneme (N,).

        T is the number of 50 Hz frames `decode` works on (2 per token for 25 Hz codes).
        """
        content = self.quantizer.decode(codes.view(1, 1, -1))
        if self.config.semantic_frame_rate == "25hz":
            content = F.interpolate(content, size=content.shape[-1] * 2, mode="nearest")
        phone_ids = phone_ids.view(1, -1)
        lengths = torch.tensor([content.shape[-1]], device=content.device)
        phone_lengths = torch.tensor([phone_ids.shape[-1]], device=content.device)
        return self.enc_p.text_attention(content, lengths, phone_ids, phone_lengths)[0]

    @torch.no_grad()
    def reconstruct(self, spec: torch.Tensor, sv_emb: torch.Tensor | None = None) -> torch.Tensor:
        """Audio (B, 1, T * hop) decoded from the posterior mean of (B, 1025, T) linear spectrograms.

        Each clip is its own timbre reference. No tokens, prior or flow: the decoder's ceiling on
        these clips (needs `with_posterior=True`).
        """
        if not hasattr(self, "enc_q"):
            raise RuntimeError("reconstruct needs the posterior encoder: build SoVITS(config, with_posterior=True)")
        ge = self.timbre(spec, sv_emb)
        lengths = torch.full((spec.shape[0],), spec.shape[2], dtype=torch.long, device=spec.device)
        unused = torch.Generator(device=spec.device)  # enc_q also samples z; keep that draw off the global RNG
        _, mean, _, mask = self.enc_q(spec, lengths, g=ge, generator=unused)
        return self.dec(mean * mask, g=ge)

    def forward_train(
        self,
        ssl_features: torch.Tensor,
        spec: torch.Tensor,
        spec_lengths: torch.Tensor,
        phone_ids: torch.Tensor,
        phone_lengths: torch.Tensor,
        sv_emb: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        prior_noise: float | None = None,
        token_noise: float = 0.0,
        token_noise_span: int = 1,
        with_attention: bool = False,
        token_blank: float = 0.0,
    ) -> TrainOutput:
        """Training pass: posterior from `spec`, prior from content + phonemes.

        ssl_features (B, ssl_dim, T_ssl) at 50 Hz, spec (B, 1025, T) linear spectrogram of the target
        audio (the timbre reference too, as upstream trains), phone_ids (B, N). Random slices of
        `segment_size // hop_length` latent frames are decoded; slice starts and the posterior
        noise come from `generator`. Like upstream, the quantizer's codebook is frozen and passes
        gradients straight through to `ssl_proj` (a from-scratch run updates the codebook itself from
        `projected` and `codes`, see myna.train.codebook).

        `prior_noise` (a myna addition) decodes the inference path instead: the prior mean plus that
        scale of its own noise, through the reversed flow (as `decode` does), with no posterior
        encoder; `z_p` and `logs_q` are then None and only a reconstruction loss applies. A decoder
        trained from scratch learns words this way where the posterior path collapses (see
        docs/default-voice-history.md).

        `token_noise` (a myna addition): that share of the token frames, drawn from `generator`, is replaced by
        random codes before decoding, so that the decoder must take the words from the phonemes where the tokens
        are wrong, as the GPT's generated tokens sometimes are; `token_noise_span` replaces runs of that many frames
        (single frames can be guessed from their neighbours). The commitment loss and the returned `codes` keep the
        true codes. `with_attention` also returns MRTE's attention to the phonemes (for an alignment loss).
        `token_blank` (a myna addition): that share of the token frames, in runs of `token_noise_span` drawn after
        the replaced ones, carries no content at all (zeros), so that only the phonemes say what is said there.
        """
        if prior_noise is None and not hasattr(self, "enc_q"):
            raise RuntimeError("forward_train needs the posterior encoder: build SoVITS(config, with_posterior=True)")
        c = self.config
        mask = time_mask(spec_lengths, spec.shape[2], spec.dtype)
        ge = self.ref_enc(spec[:, : self.reference_bins] * mask, mask)
        if c.is_pro:
            if sv_emb is None:
                raise InputError(f"{c.version} training needs a speaker-verification embedding per clip")
            ge = self.prelu(ge + self.sv_emb(sv_emb).unsqueeze(-1))
        with torch.autocast(ssl_features.device.type, enabled=False):  # tokens are chosen in fp32, as at inference
            projected = self.ssl_proj(ssl_features.float())
            with torch.no_grad():
                codes = self.quantizer.encode(projected)
                quantized = self.quantizer.decode(codes)
        commit_loss = F.mse_loss(quantized, projected)
        if token_noise:  # `codes` stay the true ones: a codebook learned from scratch updates from them
            quantized = self.quantizer.decode(replace_codes_at_random(codes, token_noise, self.quantizer.bins,
                                                                      generator, token_noise_span))
        if token_blank:
            blank = noised_frames(codes.shape[1:], token_blank, token_noise_span, generator, codes.device)
            quantized = quantized.masked_fill(blank.unsqueeze(1), 0.0)
        content = projected + (quantized - projected).detach()
        if c.semantic_frame_rate == "25hz":
            content = F.interpolate(content, size=content.shape[-1] * 2, mode="nearest")
        frames = spec.shape[2]
        if content.shape[-1] < frames:
            content = F.pad(content, (0, frames - content.shape[-1]), mode="replicate")
        content = content[..., :frames]
        mrte_ge = self.ge_to512(ge.transpose(2, 1)).transpose(2, 1) if c.is_pro else ge
        m_p, logs_p, _, *attention = self.enc_p(content, spec_lengths, phone_ids, phone_lengths, mrte_ge,
                                                with_attention=with_attention)
        if prior_noise is None:
            z, _, logs_q, _ = self.enc_q(spec, spec_lengths, g=ge, generator=generator)
            z_p = self.flow(z, mask, g=ge)
        else:
            noise = torch.randn(m_p.shape, generator=generator, dtype=m_p.dtype, device=m_p.device)
            z = self.flow((m_p + noise * torch.exp(logs_p) * prior_noise) * mask, mask, g=ge, reverse=True)
            z_p = logs_q = None
        segment = c.segment_size // c.hop_length
        room = (spec_lengths - segment + 1).clamp(min=1).to(torch.float32)
        draws = torch.rand(spec.shape[0], generator=generator, device=spec.device)
        starts = (draws * room).long()
        audio = self.dec(slice_frames(z, starts, segment), g=ge)
        return TrainOutput(audio, commit_loss, starts, mask, z_p, m_p, logs_p, logs_q, projected.detach(), codes,
                           attention[0] if attention else None)


def noised_frames(shape: torch.Size | tuple[int, int], share: float, span: int, generator: torch.Generator | None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """A (B, T) boolean mask with about `share` of its frames set, in runs of `span` frames (runs may overlap; their
    starts are drawn so that the share covered stays `share`)."""
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    start_share = 1.0 - (1.0 - share) ** (1.0 / span)
    hit = torch.rand(tuple(shape), generator=generator, device=device) < start_share
    if span > 1:  # each start covers itself and the span - 1 frames after it
        hit = F.max_pool1d(F.pad(hit.float().unsqueeze(1), (span - 1, 0)), span, stride=1)[:, 0] > 0
    return hit


def replace_codes_at_random(codes: torch.Tensor, share: float, bins: int,
                            generator: torch.Generator | None, span: int = 1) -> torch.Tensor:
    """`codes` (n_q, B, T) with about `share` of their frames (all stages of a frame together) replaced by
    uniformly drawn codes, in runs of `span` frames (runs may overlap; their starts are drawn so that the share
    covered stays `share`)."""
    hit = noised_frames(codes.shape[1:], share, span, generator, codes.device)
    drawn = torch.randint(0, bins, codes.shape, generator=generator, device=codes.device)
    return torch.where(hit.unsqueeze(0), drawn, codes)


def _content_hint(dim: int) -> str:
    """Which content encoder produces `dim`-channel features, for error messages."""
    known = {SSL_DIM: "HuBERT-base, --hubert DIR", 384: "Whisper tiny"}
    return known.get(dim, "the content encoder the model was trained with")
