"""Figures of a decoder's text attention tell parked, spread and ordered attention apart, and whether the text
encoder's states still say which phoneme they stand for."""

from __future__ import annotations

import pytest
import torch

from myna.train.text_attention import attention_figures, phoneme_identity


def _one_hot(columns: list[int], phones: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(columns), phones).float()


def test_an_alignment_along_the_phonemes_is_ordered_and_on_the_diagonal():
    frames, phones = 60, 12
    figures = attention_figures(_one_hot([t * phones // frames for t in range(frames)], phones))
    assert figures["order"] > 0.98  # frames sharing a phoneme share a rank
    assert figures["guide"] < 0.05 and figures["peak"] == pytest.approx(phones)


def test_parked_attention_peaks_on_one_phoneme_and_has_no_order():
    figures = attention_figures(_one_hot([0] * 60, 12))
    assert figures["peak"] == pytest.approx(12) and figures["order"] == 0.0
    assert figures["guide"] > 0.5


def test_even_attention_has_no_peak_and_reversed_attention_a_negative_order():
    even = attention_figures(torch.full((60, 12), 1 / 12))
    assert even["peak"] == pytest.approx(1.0) and 0.5 < even["guide"] < 0.65
    backwards = attention_figures(_one_hot([11 - t * 12 // 60 for t in range(60)], 12))
    assert backwards["order"] < -0.98 and backwards["guide"] > 0.5


def _clips(count: int = 8, symbols: int = 30) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(1, symbols, (int(torch.randint(15, 25, (), generator=gen)),), generator=gen) for _ in range(count)]


def test_states_that_keep_their_phoneme_are_told_apart_and_context_alone_is_not():
    clips = _clips()
    table = torch.randn(30, 16, generator=torch.Generator().manual_seed(4))
    noisy = [table[ids] + 0.5 * torch.randn(len(ids), 16) for ids in clips]
    assert phoneme_identity(noisy, clips) > 0.95
    # a state made of its place in the clip and its neighbours' average only, not of its own phoneme
    context = [torch.stack([torch.full((16,), n / len(ids)) + table[ids].mean(0) for n in range(len(ids))]) for ids in clips]
    assert phoneme_identity(context, clips) < 0.3
    with pytest.raises(ValueError, match="two clips"):
        phoneme_identity(noisy[:1], clips[:1])


def test_a_fresh_text_encoder_keeps_its_phonemes_apart():
    from myna.models.sovits import SoVITS, SoVITSConfig

    torch.manual_seed(0)
    encoder = SoVITS(SoVITSConfig(n_layers=2, filter_channels=96)).enc_p.eval()
    clips = _clips(symbols=60)
    with torch.no_grad():
        states = [encoder.encode_text(ids[None], torch.tensor([len(ids)]))[0][0].T for ids in clips]
        identity = phoneme_identity(states, clips)
        # the same encoder with its embedding table collapsed to one row: nothing of the phoneme is left
        encoder.text_embedding.weight.copy_(encoder.text_embedding.weight[:1].expand_as(encoder.text_embedding.weight))
        collapsed = phoneme_identity([encoder.encode_text(ids[None], torch.tensor([len(ids)]))[0][0].T for ids in clips],
                                     clips)
    assert identity > 0.9 and collapsed < 0.3
