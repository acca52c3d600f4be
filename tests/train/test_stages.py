"""Warnings about odd values a fine-tuning run inherits from its base models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from myna.models.t2s import T2SConfig
from myna.train.dataset import CachedUtterance, FeatureCache
from myna.train.stages import JoinedPairs, base_warnings, gpt_items


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


def _gpt_cache(root: Path, speakers: list[str]) -> FeatureCache:
    """A real cache folder holding, for utterance i, i + 2 phonemes of value i and 2 * (i + 1) tokens of value i."""
    from myna.train.dataset import save_tensors

    items = []
    for i, speaker in enumerate(speakers):
        save_tensors(root / f"phonemes/u{i}.safetensors", {"phone_ids": torch.full((i + 2,), i)})
        save_tensors(root / f"semantic/u{i}.safetensors", {"codes": torch.full((2 * (i + 1),), i)})
        items.append(CachedUtterance(root, {"name": f"u{i}", "speaker": speaker, "tokens": 2 * (i + 1),
                                            "phonemes": f"phonemes/u{i}.safetensors",
                                            "semantic": f"semantic/u{i}.safetensors"}))
    return FeatureCache(root, "v2", "v2", {}, items)


def test_joined_pairs_follow_each_clip_with_another_of_its_speaker(tmp_path):
    speakers = ["a", "a", "a", "b", "b", "c"]
    items = gpt_items(_gpt_cache(tmp_path, speakers), 54)
    pairs = JoinedPairs(items, seed=3)
    assert len(pairs) == len(items) + 5  # "c" has one clip: it stays single only
    for index in range(len(items)):  # the single clips come first, unchanged
        assert torch.equal(pairs[index]["semantic"], items[index]["semantic"])
    for index in range(len(items), len(pairs)):
        item = pairs[index]
        first, second = item["phones"][0].item(), item["phones"][-1].item()
        assert first != second and speakers[first] == speakers[second]
        # the phonemes, their features and the tokens are each clip's, first then second, in one order
        assert item["phones"].tolist() == [first] * (first + 2) + [second] * (second + 2)
        assert item["semantic"].tolist() == [first] * (2 * first + 2) + [second] * (2 * second + 2)
        assert item["bert"].shape == (1024, item["phones"].shape[0])
    assert [pairs[i]["phones"].tolist() for i in range(len(pairs))] == \
        [JoinedPairs(items, seed=3)[i]["phones"].tolist() for i in range(len(pairs))]  # fixed by the seed
    with pytest.raises(IndexError):
        pairs[len(pairs)]
