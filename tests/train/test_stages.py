"""Warnings about odd values a fine-tuning run inherits from its base models."""

from __future__ import annotations

from pathlib import Path

from myna.models.t2s import T2SConfig
from myna.train.dataset import CachedUtterance, FeatureCache
from myna.train.stages import base_warnings


def _cache(tokens: list[int]) -> FeatureCache:
    items = [CachedUtterance(Path("."), {"name": f"u{i}", "tokens": t, "seconds": t / 25}) for i, t in enumerate(tokens)]
    return FeatureCache(Path("."), "v2", "v2", {}, items)


def test_odd_base_values_are_reported():
    sovits = {"data": {"hop_length": 640}, "train": {"segment_size": 20480}}
    assert base_warnings(sovits, T2SConfig(max_sec=54), _cache([100, 200])) == []
    warnings = base_warnings({"data": {"hop_length": 640}, "train": {"segment_size": 20000}}, T2SConfig(max_sec=4),
                             _cache([100, 250]))
    assert any("max_sec is 4" in w for w in warnings)
    assert any("1 of 2 utterances are longer than the base GPT's max_sec (4 s)" in w for w in warnings)
    assert any("segment_size 20000 is not a multiple of its hop_length 640" in w for w in warnings)
