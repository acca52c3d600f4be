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


def _pairings(pairs: JoinedPairs) -> list[tuple[int, int]]:
    return [(first, pairs.partners[first]) for first in pairs.joined]


def test_joined_pairs_are_drawn_afresh_each_epoch_and_the_same_for_the_same_epoch(tmp_path):
    speakers = ["a"] * 6 + ["b"] * 5 + ["c"]
    items = gpt_items(_gpt_cache(tmp_path, speakers), 54)
    pairs = JoinedPairs(items, seed=3)
    drawn = []
    for epoch in range(4):
        pairs.set_epoch(epoch)
        drawn.append(_pairings(pairs))
        assert all(first != second and speakers[first] == speakers[second] for first, second in drawn[-1])
        assert len(drawn[-1]) == 11 and len(pairs) == len(items) + 11  # the length never changes
    assert len(set(map(tuple, drawn))) == 4  # four epochs, four pairings
    again = JoinedPairs(items, seed=3)
    assert _pairings(again) == drawn[0]
    again.set_epoch(2)
    assert _pairings(again) == drawn[2]
    # every partner a clip can have turns up over the epochs
    partners = {second for pairing in drawn for first, second in pairing if first == 0}
    for epoch in range(4, 40):
        pairs.set_epoch(epoch)
        partners.add(pairs.partners[0])
    assert partners == {1, 2, 3, 4, 5}


def test_the_training_loop_draws_the_pairs_of_each_epoch_and_a_resumed_run_sees_the_same(tmp_path):
    from dataclasses import replace

    from test_trainers import TINY_GPT

    from myna.train import loop
    from myna.train.config import GPTTrainConfig
    from myna.train.gpt_trainer import GPTTrainer

    class Recording(GPTTrainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.seen: list[list[list[int]]] = []

        def train_step(self, items, step, epoch):
            self.seen.append(sorted(item["phones"].tolist() for item in items))
            return super().train_step(items, step, epoch)

    items = gpt_items(_gpt_cache(tmp_path / "cache", ["a"] * 4 + ["b"] * 3), 54)
    settings = GPTTrainConfig(epochs=3, batch_size=14, learning_rate=1e-3, save_every_epochs=1)  # one step an epoch
    whole = Recording(TINY_GPT, settings)
    loop.run(whole, JoinedPairs(items, seed=1), settings, tmp_path / "whole", "gpt", progress=None)
    expected = JoinedPairs(items, seed=1)
    for epoch, batch in enumerate(whole.seen):
        expected.set_epoch(epoch)
        assert batch == sorted(expected[i]["phones"].tolist() for i in range(len(expected)))
    assert whole.seen[0] != whole.seen[1] or whole.seen[1] != whole.seen[2]
    first = Recording(TINY_GPT, settings)
    loop.run(first, JoinedPairs(items, seed=1), replace(settings, max_steps=1),
             tmp_path / "cut", "gpt", progress=None)
    resumed = Recording(TINY_GPT, settings)
    loop.run(resumed, JoinedPairs(items, seed=1), settings, tmp_path / "cut", "gpt", progress=None)
    assert first.seen + resumed.seen == whole.seen
