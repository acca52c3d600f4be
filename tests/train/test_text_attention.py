"""Figures of a decoder's text attention tell parked, spread and ordered attention apart."""

from __future__ import annotations

import pytest
import torch

from myna.train.text_attention import attention_figures


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
