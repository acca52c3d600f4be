"""Chunked SoVITS decoding: audio for semantic tokens as the GPT yields them, stitched without seams.

The SoVITS decoder is not causal: its prior encoder attends over all content frames, the flow and
the vocoder are convolutions a few dozen frames wide. `StreamDecoder` therefore decodes windows:

* a chunk covers tokens [start, end); the first chunk is short (first audio comes out early),
  later ones longer (fewer windows, less overhead);
* a chunk is decoded once `lookahead` more tokens exist (or the fragment ended), so the frames
  near its end see some of their future;
* the prior encoder sees `encoder_context` tokens left of the chunk, the flow and the vocoder
  `context` tokens (decoded again, then dropped), so the frames near its start see their past;
* audio is cut at token boundaries (one 25 Hz token = 2 latent frames = 1280 samples at 32 kHz)
  and the first `fade` samples of each chunk are cross-faded linearly with the same samples as the
  previous window computed them (the two are near-identical, so a linear fade keeps the level).

The prior noise is drawn frame by frame (all channels of one frame at a time) from a `NoiseTape`,
so frame t gets the same noise whatever the chunking; `whole_decode` runs the same maths over
all tokens at once, which is what a stitched stream is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from myna.errors import InputError
from myna.models.sovits import SoVITS


@dataclass(frozen=True)
class ChunkPlan:
    """How a fragment's tokens are cut into decode windows (all sizes in semantic tokens but `fade`)."""

    first: int = 10  # tokens in the first chunk
    size: int = 24  # tokens in every later chunk
    lookahead: int = 4  # tokens past a chunk's end that must exist before it is decoded
    context: int = 6  # tokens left of a chunk re-run through the flow and vocoder, then dropped
    encoder_context: int = 64  # tokens left of a chunk the prior encoder sees
    fade: int = 320  # samples cross-faded at each seam (10 ms at 32 kHz)

    def __post_init__(self) -> None:
        if self.first < 1 or self.size < 1:
            raise InputError(f"chunk sizes must be >= 1 token, got first={self.first}, size={self.size}")
        if self.lookahead < 0 or self.context < 0 or self.encoder_context < self.context:
            raise InputError("lookahead and context must be >= 0 and encoder_context >= context")
        if self.fade < 0:
            raise InputError(f"fade must be >= 0 samples, got {self.fade}")

    @classmethod
    def from_tokens(cls, first: int) -> ChunkPlan:
        """The default plan with a first chunk of `first` tokens (later chunks at least as long)."""
        return cls(first=first, size=max(first, cls.size))


class NoiseTape:
    """Prior noise drawn frame by frame from one generator: frame t's noise is independent of chunking."""

    def __init__(self, channels: int, generator: torch.Generator | None, dtype: torch.dtype = torch.float32):
        self.channels = channels
        self.generator = generator
        self.dtype = dtype
        self._frames = torch.zeros(0, channels, dtype=dtype)

    def frames(self, start: int, end: int) -> torch.Tensor:
        """Noise of frames [start, end) as (1, channels, end - start), drawing new frames as needed."""
        if end > self._frames.shape[0]:  # one draw per frame: a longer draw would reorder torch's stream
            new = [
                torch.randn(1, self.channels, generator=self.generator, dtype=self.dtype)
                for _ in range(end - self._frames.shape[0])
            ]
            self._frames = torch.cat([self._frames, *new])
        return self._frames[start:end].T.unsqueeze(0)


class WindowDecoder:
    """SoVITS decode of a token window with a fixed fragment (phonemes, timbre `ge` from `SoVITS.timbre`)."""

    def __init__(
        self,
        sovits: SoVITS,
        phone_ids: torch.Tensor,
        ge: torch.Tensor,
        noise: NoiseTape,
        noise_scale: float = 0.5,
    ):
        self.sovits = sovits
        cfg = sovits.config
        self.phone_ids = phone_ids.view(1, -1)
        self.frames_per_token = 2 if cfg.semantic_frame_rate == "25hz" else 1
        self.samples_per_token = cfg.samples_per_frame * self.frames_per_token
        self.noise = noise
        self.noise_scale = noise_scale
        self.ge = ge
        self.mrte_ge = sovits.ge_to512(ge.transpose(2, 1)).transpose(2, 1) if cfg.is_pro else ge

    def decode(self, codes: torch.Tensor, encoder_start: int, start: int, end: int) -> torch.Tensor:
        """Audio (samples,) of tokens [start, end) of `codes` (T,), the encoder seeing [encoder_start, end)."""
        fpt = self.frames_per_token
        content = self.sovits.quantizer.decode(codes[encoder_start:end].view(1, 1, -1))
        if fpt == 2:
            content = F.interpolate(content, size=content.shape[-1] * 2, mode="nearest")
        lengths = torch.tensor([content.shape[-1]])
        phone_lengths = torch.tensor([self.phone_ids.shape[-1]])
        mean, log_std, _ = self.sovits.enc_p(content, lengths, self.phone_ids, phone_lengths, self.mrte_ge)
        skip = (start - encoder_start) * fpt
        mean, log_std = mean[..., skip:], log_std[..., skip:]
        noise = self.noise.frames(start * fpt, end * fpt).to(mean.dtype)
        z_prior = mean + noise * torch.exp(log_std) * self.noise_scale
        mask = torch.ones(1, 1, z_prior.shape[-1], dtype=z_prior.dtype)
        z = self.sovits.flow(z_prior, mask, g=self.ge, reverse=True)
        return self.sovits.dec(z, g=self.ge)[0, 0].float()


@torch.inference_mode()
def whole_decode(window: WindowDecoder, codes: torch.Tensor) -> np.ndarray:
    """All tokens decoded at once with the window decoder's noise: the reference a stream is measured against."""
    return window.decode(codes.view(-1), 0, 0, codes.numel()).numpy()


class StreamDecoder:
    """Feed tokens one at a time (`push`), then `finish`; each returns the audio that became final."""

    def __init__(self, window: WindowDecoder, plan: ChunkPlan):
        self.window = window
        self.plan = plan
        self.tokens: list[int] = []
        self.emitted = 0  # tokens whose audio is out (up to the seam's fade tail)
        self._tail: torch.Tensor | None = None  # the previous window's audio just past the last seam
        self._fade_in = torch.zeros(0)

    def push(self, token: int) -> np.ndarray | None:
        """Add one token; audio of the next chunk when enough tokens exist, else None."""
        self.tokens.append(int(token))
        size = self.plan.first if self.emitted == 0 else self.plan.size
        end = self.emitted + size
        if len(self.tokens) < end + self.plan.lookahead:
            return None
        return self._chunk(end, final=False)

    def finish(self) -> np.ndarray | None:
        """The audio of every token not yet out (None when there is none)."""
        if self.emitted >= len(self.tokens):
            return None
        return self._chunk(len(self.tokens), final=True)

    @torch.inference_mode()
    def _chunk(self, end: int, final: bool) -> np.ndarray:
        plan, spt = self.plan, self.window.samples_per_token
        codes = torch.tensor(self.tokens, dtype=torch.long)
        start = max(0, self.emitted - plan.context)
        window_end = len(self.tokens) if final else min(len(self.tokens), end + plan.lookahead)
        encoder_start = max(0, self.emitted - plan.encoder_context)
        audio = self.window.decode(codes, encoder_start, start, window_end)
        first = (self.emitted - start) * spt
        last = (end - start) * spt
        out = audio[first:last].clone()
        if self._tail is not None:
            n = min(self._tail.numel(), out.numel())
            if self._fade_in.numel() != n:
                self._fade_in = (torch.arange(n, dtype=torch.float32) + 0.5) / n
            out[:n] = self._tail[:n] * (1 - self._fade_in) + out[:n] * self._fade_in
        self._tail = None if final else audio[last : last + plan.fade].clone()
        self.emitted = end
        return out.numpy()


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio of `test` against `reference` in dB (inf when equal)."""
    if reference.shape != test.shape:
        raise ValueError(f"length mismatch: {reference.shape} vs {test.shape}")
    error = float(np.sum((reference.astype(np.float64) - test) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(signal / error)


def noise_generator(generator: torch.Generator, index: int) -> torch.Generator:
    """A generator for fragment `index`'s prior noise, derived from the request's without drawing from it."""
    seed = (generator.initial_seed() * 1_000_003 + index) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)
