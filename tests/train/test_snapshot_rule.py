"""The default voice's snapshot rule: only measured improvements are committed, the decoder's or the GPT's alone."""

from __future__ import annotations

import json

import pytest
import torch

from myna.train import loop
from myna.train.default_recipe import DISCRIMINATOR_START, Recipe
from myna.train.snapshot import Snapshot
from myna.train.snapshot_rule import (
    FIRST_SNAPSHOT_WER,
    MIN_LOSS_GAIN,
    MIN_WER_GAIN,
    SNAPSHOT_CLIPS,
    best_point,
    gpt_point,
    gpt_snapshot_verdict,
    snapshot_verdict,
    take_snapshot,
    write_gpt_snapshot,
    write_snapshot,
)


def _trained(tmp_path, tokens: str, points: dict[int, float], kept: tuple[int, ...]) -> Recipe:
    """A work folder with SoVITS training states at `kept` steps (generator and discriminator) and resynthesis WER
    `points` {step: wer}."""
    recipe = Recipe(None, tmp_path / "work", tmp_path / "snapshot", tokens=tokens)
    states = recipe.state / "sovits" / recipe.design / "checkpoints"
    states.mkdir(parents=True, exist_ok=True)
    for step in kept:
        weights = {"dec.weight": torch.full((64, 80), float(step)), "ssl_proj.weight": torch.ones(4, 4)}
        stage = {"generator": weights, "discriminator": {"conv.weight": torch.full((32, 16), -float(step))}}
        torch.save({"stage": stage, "step": step}, states / f"{loop.STATE_PREFIX}{step:08d}.pt")
    curve = [{"design": recipe.design, "tokens": tokens, "sovits_step": s, "gpt_step": 0, "resynth_wer": w,
              "resynth_clips": SNAPSHOT_CLIPS} for s, w in points.items()]
    (recipe.state / "curve.json").write_text(json.dumps(curve))
    return recipe


def test_the_best_kept_point_is_snapshotted_with_its_weights_and_the_curve(tmp_path):
    recipe = _trained(tmp_path, "kmeans1024", {100: 0.5, 300: 0.8, 500: 0.85}, kept=(300, 500))
    point = best_point(recipe)
    assert point["sovits_step"] == 300  # step 100 measured better, but its state is gone
    assert snapshot_verdict(point, None) is None
    recipe.add_point({"sovits_step": 500, "resynth_wer": 0.3, "resynth_clips": 30})
    assert best_point(recipe) == point  # a figure over fewer held-out clips does not count
    write_snapshot(recipe, point)
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("sovits") == 300 and "gpt" not in snapshot.stages
    assert "discriminator" not in snapshot.stages  # the recipe's decoder trains on the mel loss alone until then
    assert torch.allclose(snapshot.weights("sovits")["dec.weight"], torch.full((64, 80), 300.0), rtol=1e-2)
    assert snapshot.notes["tokens"] == "kmeans1024" and snapshot.notes["resynth_wer"] == 0.8
    assert snapshot.files("sovits") == ["sovits.safetensors", "sovits.exact.safetensors"]  # the tokenizer apart
    torch.testing.assert_close(snapshot.weights("sovits")["ssl_proj.weight"], torch.ones(4, 4), atol=0, rtol=0)
    assert [p["sovits_step"] for p in snapshot.curve] == [100, 300, 500, 500]
    # a later run resumes the curve: points already committed are not repeated
    recipe.add_point({"sovits_step": 700, "resynth_wer": 0.6})
    write_snapshot(recipe, recipe.curve()[-1] | {"sovits_step": 500})
    assert [p["sovits_step"] for p in Snapshot.open(tmp_path / "snapshot").curve] == [100, 300, 500, 500, 700]


def test_the_snapshot_rule_refuses_what_does_not_improve(tmp_path):
    point = {"sovits_step": 900, "resynth_wer": FIRST_SNAPSHOT_WER + 0.05}
    assert "first snapshot" in snapshot_verdict(point, None)
    assert "does not beat" in snapshot_verdict(point | {"resynth_wer": 0.7}, 0.7)
    # a gain smaller than the figure's noise between neighbouring steps is not worth the history it would take
    assert "does not beat" in snapshot_verdict(point | {"resynth_wer": 0.7 - MIN_WER_GAIN / 2}, 0.7)
    assert snapshot_verdict(point | {"resynth_wer": 0.7 - MIN_WER_GAIN}, 0.7) is None
    assert snapshot_verdict(point | {"resynth_wer": 0.391}, 0.411) is None  # recorded figures are rounded
    assert "resynth" in snapshot_verdict(None, None)


def _gpt_states(recipe: Recipe, losses: dict[int, float], kept: tuple[int, ...]) -> None:
    """GPT training states at `kept` steps and held-out loss points `losses` {step: loss} on `recipe`'s curve."""
    states = recipe.state / "gpt" / "checkpoints"
    states.mkdir(parents=True, exist_ok=True)
    for step in kept:
        stage = {"model": {"h.weight": torch.full((32, 16), float(step) / 100)}}
        torch.save({"stage": stage, "step": step}, states / f"{loop.STATE_PREFIX}{step:08d}.pt")
    for step, loss in losses.items():
        recipe.add_point({"sovits_step": 300, "gpt_step": step, "gpt_heldout_loss": loss})


def test_the_gpt_alone_is_snapshotted_when_its_held_out_loss_improves(tmp_path):
    recipe = _trained(tmp_path, "kmeans1024", {300: 0.8}, kept=(300,))
    with pytest.raises(SystemExit, match="no decoder"):
        write_gpt_snapshot(recipe, {"gpt_step": 1000, "gpt_heldout_loss": 2.9})
    write_snapshot(recipe, best_point(recipe))  # the decoder first; no GPT trained yet
    assert "gpt" not in Snapshot.open(tmp_path / "snapshot").stages
    _gpt_states(recipe, {500: 2.5, 1000: 2.9, 1500: 2.8}, kept=(1000, 1500))
    point = gpt_point(recipe)
    assert point["gpt_step"] == 1500  # step 500 measured better, but its state is gone
    assert gpt_snapshot_verdict(point, None) is None
    write_gpt_snapshot(recipe, point)
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("gpt") == 1500 and snapshot.step("sovits") == 300  # the decoder stays as committed
    torch.testing.assert_close(snapshot.weights("gpt")["h.weight"], torch.full((32, 16), 15.0), rtol=1e-2, atol=0)
    assert snapshot.notes["gpt_heldout_loss"] == 2.8 and snapshot.notes["resynth_wer"] == 0.8
    assert [p.get("gpt_step") for p in snapshot.curve] == [0, 500, 1000, 1500]
    # the rule: only a lower held-out loss at a kept state earns the GPT another snapshot
    assert "does not beat" in gpt_snapshot_verdict(point, snapshot.notes["gpt_heldout_loss"])
    assert "does not beat" in gpt_snapshot_verdict(point | {"gpt_heldout_loss": 2.8 - MIN_LOSS_GAIN / 2}, 2.8)
    assert gpt_snapshot_verdict(point | {"gpt_heldout_loss": 2.8 - MIN_LOSS_GAIN}, 2.8) is None
    assert "heldout stage" in gpt_snapshot_verdict(None, 2.8)
    # a decoder snapshot takes the newest GPT; unmeasured, it carries no figure to beat
    _gpt_states(recipe, {}, kept=(2000,))
    write_snapshot(recipe, best_point(recipe))
    again = Snapshot.open(tmp_path / "snapshot")
    assert again.step("gpt") == 2000 and "gpt_heldout_loss" not in again.notes


def test_a_snapshot_of_other_tokens_is_not_overwritten(tmp_path):
    write_snapshot(_trained(tmp_path, "phone", {300: 0.8}, kept=(300,)), {"sovits_step": 300, "resynth_wer": 0.8})
    kmeans = _trained(tmp_path, "kmeans1024", {300: 0.7}, kept=(300,))
    with pytest.raises(SystemExit, match="phone tokens"):
        write_snapshot(kmeans, best_point(kmeans))


def test_the_discriminator_enters_the_snapshot_once_the_decoder_trains_against_it(tmp_path):
    late, early = DISCRIMINATOR_START + 250, DISCRIMINATOR_START - 250
    recipe = _trained(tmp_path, "kmeans1024", {late: 0.4, early: 0.45}, kept=(early, late))
    write_snapshot(recipe, best_point(recipe))
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("discriminator") == snapshot.step("sovits") == late
    assert snapshot.stages["discriminator"]["config"] == recipe.discriminator_config()
    torch.testing.assert_close(snapshot.weights("discriminator")["conv.weight"], torch.full((32, 16), -float(late)),
                               rtol=1e-2, atol=0)
    stored = tmp_path / "snapshot" / snapshot.stages["discriminator"]["file"]
    assert stored.is_file()
    # a snapshot of a generator from before the adversarial losses drops the discriminator it cannot pair with
    write_snapshot(recipe, {"sovits_step": early, "resynth_wer": 0.45})
    again = Snapshot.open(tmp_path / "snapshot")
    assert again.step("sovits") == early and "discriminator" not in again.stages and not stored.exists()


def test_take_snapshot_writes_the_decoder_else_the_gpt_alone_else_says_why_not(tmp_path):
    recipe = _trained(tmp_path, "kmeans1024", {300: 0.8, 500: 0.7}, kept=(300, 500))
    _gpt_states(recipe, {1000: 2.9}, kept=(1000,))
    manifest, figures = take_snapshot(recipe)
    assert figures == {"sovits_step": 500, "resynth_wer": 0.7} and manifest.is_file()
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("sovits") == 500 and snapshot.step("gpt") == 1000 and snapshot.notes["gpt_heldout_loss"] == 2.9
    with pytest.raises(SystemExit, match=r"does not beat the committed snapshot's 0\.700 by .*; .*does not beat the "
                                         r"committed GPT's 2\.900 by "):
        take_snapshot(recipe)  # nothing new measured: neither earns one
    _gpt_states(recipe, {1500: 2.7}, kept=(1000, 1500))
    assert take_snapshot(recipe)[1] == {"gpt_step": 1500, "gpt_heldout_loss": 2.7}
    again = Snapshot.open(tmp_path / "snapshot")
    assert again.step("gpt") == 1500 and again.step("sovits") == 500  # the GPT alone moved on
    # forced: the decoder's best measured point is written even though it does not improve
    assert take_snapshot(recipe, force=True)[1] == {"sovits_step": 500, "resynth_wer": 0.7}
