"""The default voice's recipe: token designs keep apart, and the snapshot rule commits only measured improvements."""

from __future__ import annotations

import json

import pytest
import torch

from myna.train import loop
from myna.train.default_recipe import (
    DISCRIMINATOR_START,
    FIRST_SNAPSHOT_WER,
    SNAPSHOT_CLIPS,
    SOVITS_SETTINGS,
    Recipe,
    gpt_snapshot_verdict,
    snapshot_verdict,
)
from myna.train.snapshot import Snapshot


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
    recipe.add_point({"sovits_step": 500, "resynth_wer": 0.3, "resynth_clips": 30})
    assert recipe.best_point() == point  # a figure over fewer held-out clips does not count
    recipe.write_snapshot(point)
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("sovits") == 300 and "gpt" not in snapshot.stages
    assert "discriminator" not in snapshot.stages  # the recipe's decoder trains on the mel loss alone until then
    assert torch.allclose(snapshot.weights("sovits")["dec.weight"], torch.full((64, 80), 300.0), rtol=1e-2)
    assert snapshot.notes["tokens"] == "kmeans1024" and snapshot.notes["resynth_wer"] == 0.8
    assert [p["sovits_step"] for p in snapshot.curve] == [100, 300, 500, 500]
    # a later run resumes the curve: points already committed are not repeated
    recipe.add_point({"sovits_step": 700, "resynth_wer": 0.6})
    recipe.write_snapshot(recipe.curve()[-1] | {"sovits_step": 500})
    assert [p["sovits_step"] for p in Snapshot.open(tmp_path / "snapshot").curve] == [100, 300, 500, 500, 700]


def test_the_snapshot_rule_refuses_what_does_not_improve(tmp_path):
    point = {"sovits_step": 900, "resynth_wer": FIRST_SNAPSHOT_WER + 0.05}
    assert "first snapshot" in snapshot_verdict(point, None)
    assert "does not beat" in snapshot_verdict(point | {"resynth_wer": 0.7}, 0.7)
    assert snapshot_verdict(point | {"resynth_wer": 0.69}, 0.7) is None
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
        recipe.write_gpt_snapshot({"gpt_step": 1000, "gpt_heldout_loss": 2.9})
    recipe.write_snapshot(recipe.best_point())  # the decoder first; no GPT trained yet
    assert "gpt" not in Snapshot.open(tmp_path / "snapshot").stages
    _gpt_states(recipe, {500: 2.5, 1000: 2.9, 1500: 2.8}, kept=(1000, 1500))
    point = recipe.gpt_point()
    assert point["gpt_step"] == 1500  # step 500 measured better, but its state is gone
    assert gpt_snapshot_verdict(point, None) is None
    recipe.write_gpt_snapshot(point)
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("gpt") == 1500 and snapshot.step("sovits") == 300  # the decoder stays as committed
    torch.testing.assert_close(snapshot.weights("gpt")["h.weight"], torch.full((32, 16), 15.0), rtol=1e-2, atol=0)
    assert snapshot.notes["gpt_heldout_loss"] == 2.8 and snapshot.notes["resynth_wer"] == 0.8
    assert [p.get("gpt_step") for p in snapshot.curve] == [0, 500, 1000, 1500]
    # the rule: only a lower held-out loss at a kept state earns the GPT another snapshot
    assert "does not beat" in gpt_snapshot_verdict(point, snapshot.notes["gpt_heldout_loss"])
    assert gpt_snapshot_verdict(point | {"gpt_heldout_loss": 2.79}, 2.8) is None
    assert "follow" in gpt_snapshot_verdict(None, 2.8)
    # a decoder snapshot takes the newest GPT; unmeasured, it carries no figure to beat
    _gpt_states(recipe, {}, kept=(2000,))
    recipe.write_snapshot(recipe.best_point())
    again = Snapshot.open(tmp_path / "snapshot")
    assert again.step("gpt") == 2000 and "gpt_heldout_loss" not in again.notes


def test_a_snapshot_of_other_tokens_is_not_overwritten(tmp_path):
    _trained(tmp_path, "phone", {300: 0.8}, kept=(300,)).write_snapshot({"sovits_step": 300, "resynth_wer": 0.8})
    kmeans = _trained(tmp_path, "kmeans1024", {300: 0.7}, kept=(300,))
    with pytest.raises(SystemExit, match="phone tokens"):
        kmeans.write_snapshot(kmeans.best_point())


def test_the_model_card_states_the_sources_recipe_measured_figures_and_curve(tmp_path):
    recipe = _trained(tmp_path, "kmeans1024", {100: 0.9, 300: 0.62}, kept=(300,))
    recipe.corpus = tmp_path / "corpus"
    recipe.corpus.mkdir()
    sources = {"note": "Synthetic corpus.", "stats": {"utterances": 120, "hours": 0.2, "speakers": 3,
                                                      "heldout_speakers": ["festival-ked"]},
               "packages": [{"package": "flite", "version": "2.2-5", "licence": "CMU (BSD-like, 4 conditions)"}]}
    (recipe.corpus / "sources.json").write_text(json.dumps(sources))
    (recipe.corpus / "SOURCES.md").write_text("# Sources\n\nflite: CMU licence, notices kept.\n")
    (recipe.state / "progress.json").write_text(json.dumps({"gpt_cpu_seconds": 1800.0,
                                                            "sovits_istft16_cpu_seconds": 5400.0}))
    exports = recipe.state / "exports"
    exports.mkdir()
    for name in (f"sovits_{recipe.design}_000300.safetensors", "gpt_000150.safetensors"):
        (exports / name).write_bytes(b"")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "sovits.safetensors").write_bytes(b"\0" * 2_500_000)
    (bundle / "voice.json").write_text("{}")
    measured = {"wer": 0.3125, "sentences": 40, "rtf": 0.21,
                "similarity": {"unseen": {"voices": 4, "own": 0.81, "closest_other": 0.74, "closer_share": 0.75}}}
    card = recipe.write_card(bundle, measured).read_text()
    assert "| sovits.safetensors | 2.5 |" in card and "MODEL_CARD.md |" not in card  # its own entry is left out
    assert "| flite | 2.2-5 | CMU (BSD-like, 4 conditions) |" in card and "120 utterances, 0.2 hours" in card
    assert (bundle / "DATA_SOURCES.md").read_text().startswith("# Sources") and "DATA_SOURCES.md beside" in card
    assert "festival-ked" in card and "| SoVITS steps | 300 |" in card and "| GPT steps | 150 |" in card
    assert "gpt 0.50" in card and f"sovits_{recipe.design} 1.50" in card  # CPU hours per stage
    assert "40 held-out sentences: **0.312**" in card and "| unseen | 4 | 0.810 | 0.740 | 0.750 |" in card
    assert "| 100 | 0 | - | 0.900 | - | - | - |" in card and "| 300 | 0 | - | 0.620 | - | - | - |" in card  # the curve
    recipe.add_point({"sovits_step": 300, "gpt_step": 150, "wer": 0.8, "ref_free": True, "gpt_heldout_loss": 3.5})
    recipe.add_point({"sovits_step": 300, "gpt_step": 150, "follow_heldout_prompted": 0.41, "follow_train_true": 2.5})
    card = recipe.write_card(bundle, measured).read_text()
    assert "| 300 | 150 | - | - | 0.800 ref-free | 3.500 | - |" in card
    assert "| 300 | 150 | - | - | - | - | 0.410 |" in card  # the text-following margin
    unmeasured = recipe.write_card(bundle, None).read_text()
    assert "Not measured for this bundle" in unmeasured and "**" not in unmeasured.split("## Measured")[1].split("##")[0]


@pytest.mark.parametrize("ref_free", [False, True])
def test_a_bundle_speaks_prompted_by_its_clip_or_ref_free(tmp_path, ref_free):
    import numpy as np
    import soundfile

    from myna.engine.default_voice import find_default_voice
    from myna.train.default_recipe import REFERENCE_SPEAKER

    recipe = Recipe(tmp_path / "corpus", tmp_path / "work", tmp_path / "snapshot")
    (recipe.corpus / "wavs").mkdir(parents=True)
    soundfile.write(str(recipe.corpus / "wavs" / "a.wav"), np.zeros(16000 * 6, np.float32), 16000)
    (recipe.corpus / "corpus.list").write_text(f"wavs/a.wav|{REFERENCE_SPEAKER}|EN|A clip of six seconds.\n")
    exports = recipe.state / "exports"
    exports.mkdir(parents=True)
    for name in (f"sovits_{recipe.design}_000300.safetensors", "gpt_000150.safetensors"):
        (exports / name).write_bytes(b"weights")
    recipe.bundle(tmp_path / "bundle", ref_free=ref_free)
    voice = find_default_voice(tmp_path / "bundle")
    assert voice.ref.is_file() and voice.ref_text == (None if ref_free else "A clip of six seconds.")


def test_a_corpus_other_than_the_recipes_is_pointed_out(tmp_path):
    from myna.train.default_recipe import CORPUS_SPEAKERS, CORPUS_UTTERANCES, CORPUS_WIDE_UTTERANCES

    recipe = Recipe(tmp_path / "corpus", tmp_path / "work", tmp_path / "snapshot")
    recipe.corpus.mkdir()
    assert recipe.corpus_mismatch() is None  # nothing recorded: nothing to say

    def record(train: int, speakers: int = CORPUS_SPEAKERS) -> None:
        listed = [{"name": f"s{i}", "split": "train", "utterances": train} for i in range(speakers)]
        listed.append({"name": "held", "split": "heldout", "utterances": 40})
        (recipe.corpus / "sources.json").write_text(json.dumps({"speakers": listed}))

    total = CORPUS_UTTERANCES + CORPUS_WIDE_UTTERANCES
    record(total)
    assert recipe.corpus_mismatch() is None
    record(CORPUS_UTTERANCES)  # the wide-vocabulary sentences missing
    assert f"has {CORPUS_UTTERANCES} utterances a training speaker, the recipe's corpus {total}" in recipe.corpus_mismatch()
    assert f"--wide-utterances {CORPUS_WIDE_UTTERANCES}" in recipe.corpus_mismatch()
    record(total, speakers=CORPUS_SPEAKERS - 3)  # the epoch, hence the decay a step, would differ
    assert f"has {CORPUS_SPEAKERS - 3} training speakers, the recipe's corpus {CORPUS_SPEAKERS}" in recipe.corpus_mismatch()


def test_the_discriminator_enters_the_snapshot_once_the_decoder_trains_against_it(tmp_path):
    late, early = DISCRIMINATOR_START + 250, DISCRIMINATOR_START - 250
    recipe = _trained(tmp_path, "kmeans1024", {late: 0.4, early: 0.45}, kept=(early, late))
    recipe.write_snapshot(recipe.best_point())
    snapshot = Snapshot.open(tmp_path / "snapshot")
    assert snapshot.step("discriminator") == snapshot.step("sovits") == late
    assert snapshot.stages["discriminator"]["config"] == recipe.discriminator_config()
    torch.testing.assert_close(snapshot.weights("discriminator")["conv.weight"], torch.full((32, 16), -float(late)),
                               rtol=1e-2, atol=0)
    stored = tmp_path / "snapshot" / snapshot.stages["discriminator"]["file"]
    assert stored.is_file()
    # a snapshot of a generator from before the adversarial losses drops the discriminator it cannot pair with
    recipe.write_snapshot({"sovits_step": early, "resynth_wer": 0.45})
    again = Snapshot.open(tmp_path / "snapshot")
    assert again.step("sovits") == early and "discriminator" not in again.stages and not stored.exists()


def test_a_decoder_resumed_from_the_snapshot_gets_its_discriminator_back(tmp_path):
    from dataclasses import replace

    from myna.train.presets import get_preset
    from myna.train.sovits_trainer import SoVITSTrainer

    recipe = Recipe(None, tmp_path / "work", tmp_path / "snapshot")
    config = replace(get_preset("tiny").sovits, version=recipe.config.version)
    settings = replace(SOVITS_SETTINGS, precision="fp32")
    trained = SoVITSTrainer(config, settings)
    with torch.no_grad():
        for param in trained.discriminator.parameters():
            param.add_(0.5)  # unlike a fresh discriminator (each trainer starts from the same seed)
    snapshot = Snapshot.open(tmp_path / "snapshot")
    snapshot.put("sovits", 900, trained.generator.state_dict(), config.to_dict())
    snapshot.put("discriminator", 900, trained.discriminator.state_dict(), recipe.discriminator_config())

    def resumed(snapshot: Snapshot) -> tuple[bool, float]:
        trainer = SoVITSTrainer(config, settings)
        loaded = recipe.load_sovits_snapshot(trainer, snapshot)
        gap = max(float((a - b).abs().max()) for a, b in zip(trainer.discriminator.state_dict().values(),
                                                               trained.discriminator.state_dict().values(), strict=True))
        return loaded, gap

    loaded, gap = resumed(snapshot)
    assert loaded and gap < 0.02  # int8 rounding only
    snapshot.stages["discriminator"]["config"] = recipe.discriminator_config() | {"narrow": 1}
    loaded, gap = resumed(snapshot)
    assert not loaded and gap > 0.4  # another layout: a fresh discriminator
    snapshot.put("discriminator", 800, trained.discriminator.state_dict(), recipe.discriminator_config())
    assert not resumed(snapshot)[0]  # saved at another step than the generator
