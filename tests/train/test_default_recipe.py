"""The default voice's recipe: token designs keep apart, and the snapshot rule commits only measured improvements."""

from __future__ import annotations

import json

import pytest
import torch

from myna.train import loop
from myna.train.default_recipe import FIRST_SNAPSHOT_WER, Recipe, snapshot_verdict
from myna.train.snapshot import Snapshot


def _trained(tmp_path, tokens: str, points: dict[int, float], kept: tuple[int, ...]) -> Recipe:
    """A work folder with SoVITS training states at `kept` steps and resynthesis WER `points` {step: wer}."""
    recipe = Recipe(None, tmp_path / "work", tmp_path / "snapshot", tokens=tokens)
    states = recipe.state / "sovits" / recipe.design / "checkpoints"
    states.mkdir(parents=True)
    for step in kept:
        weights = {"dec.weight": torch.full((64, 80), float(step)), "ssl_proj.weight": torch.ones(4, 4)}
        torch.save({"stage": {"generator": weights}, "step": step}, states / f"{loop.STATE_PREFIX}{step:08d}.pt")
    curve = [{"design": recipe.design, "tokens": tokens, "sovits_step": s, "gpt_step": 0, "resynth_wer": w}
             for s, w in points.items()]
    (recipe.state / "curve.json").write_text(json.dumps(curve))
    return recipe


def test_token_designs_keep_their_state_apart(tmp_path):
    kmeans = Recipe(None, tmp_path, tmp_path / "snapshot")
    phone = Recipe(None, tmp_path, tmp_path / "snapshot", tokens="phone")
    assert kmeans.tokens == "kmeans1024"
    assert kmeans.tokenizer_file != phone.tokenizer_file and kmeans.state != phone.state
    with pytest.raises(SystemExit, match="token design"):
        Recipe(None, tmp_path, tmp_path / "snapshot", tokens="bogus")


def test_the_best_kept_point_is_snapshotted_with_its_weights_and_the_curve(tmp_path):
    recipe = _trained(tmp_path, "kmeans1024", {100: 0.5, 300: 0.8, 500: 0.85}, kept=(300, 500))
    point = recipe.best_point()
    assert point["sovits_step"] == 300  # step 100 measured better, but its state is gone
    assert snapshot_verdict(point, None) is None
    recipe.write_snapshot(point)
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("sovits") == 300 and "gpt" not in snapshot.stages
    assert torch.allclose(snapshot.weights("sovits")["dec.weight"], torch.full((64, 80), 300.0), rtol=1e-2)
    assert snapshot.notes["tokens"] == "kmeans1024" and snapshot.notes["resynth_wer"] == 0.8
    assert [p["sovits_step"] for p in snapshot.curve] == [100, 300, 500]
    # a later run resumes the curve: points already committed are not repeated
    recipe.add_point({"sovits_step": 700, "resynth_wer": 0.6})
    recipe.write_snapshot(recipe.curve()[-1] | {"sovits_step": 500})
    assert [p["sovits_step"] for p in Snapshot.open(tmp_path / "snapshot").curve] == [100, 300, 500, 700]


def test_the_snapshot_rule_refuses_what_does_not_improve(tmp_path):
    point = {"sovits_step": 900, "resynth_wer": FIRST_SNAPSHOT_WER + 0.05}
    assert "first snapshot" in snapshot_verdict(point, None)
    assert "does not beat" in snapshot_verdict(point | {"resynth_wer": 0.7}, 0.7)
    assert snapshot_verdict(point | {"resynth_wer": 0.69}, 0.7) is None
    assert "resynth" in snapshot_verdict(None, None)


def test_a_snapshot_of_other_tokens_is_not_overwritten(tmp_path):
    _trained(tmp_path, "phone", {300: 0.8}, kept=(300,)).write_snapshot({"sovits_step": 300, "resynth_wer": 0.8})
    kmeans = _trained(tmp_path, "kmeans1024", {300: 0.7}, kept=(300,))
    with pytest.raises(SystemExit, match="phone tokens"):
        kmeans.write_snapshot(kmeans.best_point())
