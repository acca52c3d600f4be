"""K-means semantic tokens: fitted on content frames and installed so that SoVITS's extract_latent reads them."""

from __future__ import annotations

import pytest
import torch

from myna.errors import InputError
from myna.models.sovits import SoVITS
from myna.train import kmeans_tokens
from myna.train.presets import get_preset


def _clips(gen: torch.Generator, means: torch.Tensor, count: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Clips of 25 Hz tokens (two 50 Hz frames each) around planted sounds; returns clips and each token's sound."""
    clips, truths = [], []
    for _ in range(count):
        sounds = torch.randint(0, len(means), (12,), generator=gen)
        frames = means[sounds].repeat_interleave(2, 0) + 0.3 * torch.randn(24, means.shape[1], generator=gen)
        clips.append(frames * 3.0 + 1.0)  # raw features are not normalised: the tokenizer must fold that in
        truths.append(sounds)
    return clips, truths


def test_kmeans_codes_separate_planted_sounds_on_unseen_clips():
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(6, 384, generator=gen)
    clips, _ = _clips(gen, means, 80)
    model = SoVITS(get_preset("tiny").sovits).eval()
    kept = kmeans_tokens.fit_kmeans_tokenizer(model, clips, codes=12, sample=5000)
    assert 0.5 < kept <= 1.0
    unseen, truths = _clips(gen, means, 20)
    owner: dict[int, int] = {}
    for clip, truth in zip(unseen, truths, strict=True):
        codes = model.extract_latent(clip.t().unsqueeze(0))[0, 0]
        assert codes.shape == truth.shape and int(codes.max()) < 12
        for code, sound in zip(codes.tolist(), truth.tolist(), strict=True):
            assert owner.setdefault(code, sound) == sound  # no code mixes two sounds
    assert set(owner.values()) == set(range(6))  # and every sound has a code


def test_installed_codes_are_the_nearest_centroids_in_fp16():
    gen = torch.Generator().manual_seed(1)
    clips = [torch.randn(40, 384, generator=gen) for _ in range(30)]
    model = SoVITS(get_preset("tiny").sovits).eval()
    kmeans_tokens.fit_kmeans_tokenizer(model, clips, codes=16, sample=2000)
    for tensor in (model.ssl_proj.weight, model.ssl_proj.bias, model.quantizer.vq.layers[0]._codebook.embed):
        assert torch.equal(tensor, tensor.half().float())  # exported files keep the same tokens
    x = torch.randn(1, 384, 40, generator=gen)
    projected = model.ssl_proj(x)[0].t()
    book = model.quantizer.vq.layers[0]._codebook.embed
    assert torch.equal(model.extract_latent(x)[0, 0], torch.cdist(projected, book).argmin(1))
    assert int(model.extract_latent(x).max()) < 16


def test_more_codes_than_the_codebook_holds_are_refused():
    model = SoVITS(get_preset("tiny").sovits)
    with pytest.raises(InputError, match="codebook"):
        kmeans_tokens.fit_kmeans_tokenizer(model, [torch.randn(40, 384)], codes=2048)


def test_the_codes_vectors_have_about_unit_spread_per_channel():
    gen = torch.Generator().manual_seed(2)
    clips = [5.0 * torch.randn(40, 384, generator=gen) + 2.0 for _ in range(30)]
    model = SoVITS(get_preset("tiny").sovits).eval()
    kmeans_tokens.fit_kmeans_tokenizer(model, clips, codes=16, sample=2000)
    x = torch.stack(clips[:4]).transpose(1, 2)
    with torch.no_grad():
        content = model.quantizer.decode(model.extract_latent(x))  # what the prior encoder reads
        projected = model.ssl_proj(x)
    assert 0.4 < float(projected.std(dim=(0, 2)).pow(2).mean().sqrt()) < 2.0
    assert float(content.std(dim=(0, 2)).mean()) > 0.1  # not the old 1/sqrt(384) per channel
