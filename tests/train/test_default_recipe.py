"""The default voice's recipe: token designs keep apart, the model card, bundles, the corpus check, resuming from the
snapshot (the snapshot rule: test_snapshot_rule.py)."""

from __future__ import annotations

import json

import pytest
import torch

from myna.train.default_recipe import SOVITS_SETTINGS, Recipe
from myna.train.snapshot import Snapshot


def test_token_designs_keep_their_state_apart(tmp_path):
    kmeans = Recipe(None, tmp_path, tmp_path / "snapshot")
    phone = Recipe(None, tmp_path, tmp_path / "snapshot", tokens="phone")
    assert kmeans.tokens == "kmeans1024"
    assert kmeans.tokenizer_file != phone.tokenizer_file and kmeans.state != phone.state
    with pytest.raises(SystemExit, match="token design"):
        Recipe(None, tmp_path, tmp_path / "snapshot", tokens="bogus")


def test_the_model_card_states_the_sources_recipe_measured_figures_and_curve(tmp_path):
    recipe = Recipe(tmp_path / "corpus", tmp_path / "work", tmp_path / "snapshot")
    recipe.corpus.mkdir()
    recipe.state.mkdir(parents=True)
    for step, wer in ((100, 0.9), (300, 0.62)):
        recipe.add_point({"sovits_step": step, "gpt_step": 0, "resynth_wer": wer, "resynth_clips": 120})
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


def test_the_recipes_corpus_has_the_training_speakers_its_schedule_assumes(tmp_path):
    """The corpus stage renders what the decoder's decay a step was set for: CORPUS_SPEAKERS training speakers of the
    recipe's voices (every one installed, as scripts/setup.sh does)."""
    from myna.train.default_recipe import CORPUS_SPEAKERS, CORPUS_UTTERANCES, CORPUS_WIDE_UTTERANCES
    from myna.train.synth.augment import plan_speakers
    from myna.train.synth.corpus import split_heldout
    from myna.train.synth.voices import VoiceUnavailable, base_voices

    options = Recipe(tmp_path / "corpus", tmp_path / "work", tmp_path / "snapshot").corpus_options(jobs=2)
    assert options.out == tmp_path / "corpus" and options.jobs == 2
    assert (options.utterances, options.wide_utterances) == (CORPUS_UTTERANCES, CORPUS_WIDE_UTTERANCES)
    try:
        bases = base_voices(list(options.voices))
    except VoiceUnavailable as exc:
        pytest.skip(f"a voice of the corpus is not installed here ({exc}); scripts/setup.sh installs them all")
    speakers = plan_speakers(bases, options.pseudo_speakers, options.seed)
    held = split_heldout(speakers, options.heldout_family, options.heldout_speakers)
    assert len(speakers) - len(held) == CORPUS_SPEAKERS and len(held) == 3
    with pytest.raises(SystemExit, match="no corpus"):
        Recipe(None, tmp_path / "work", tmp_path / "snapshot").corpus_options()


def test_a_stage_resumed_from_the_snapshot_goes_on_counting_its_cpu_time(tmp_path):
    from myna.train.default_recipe import GPT_SETTINGS, PRESET
    from myna.train.gpt_trainer import GPTTrainer

    recipe = Recipe(None, tmp_path / "work", tmp_path / "snapshot")
    trainer = GPTTrainer(PRESET.gpt, GPT_SETTINGS)
    snapshot = Snapshot.open(recipe.snapshot_dir)
    snapshot.put("gpt", 700, trainer.model.state_dict(), PRESET.gpt.to_dict())
    snapshot.notes.update(tokens=recipe.tokens, cpu_seconds={"gpt_cpu_seconds": 3600.0, "sovits_istft16_cpu_seconds": 7200.0})
    snapshot.save()

    def resume() -> None:
        recipe._resume_from_snapshot("gpt", trainer, recipe.state / "gpt", GPT_SETTINGS,
                                     lambda snap: trainer.model.load_state_dict(snap.weights("gpt")))

    resume()
    assert recipe.kept_steps("gpt") == {700}
    assert recipe.progress() == {"gpt_cpu_seconds": 3600.0}  # the decoder's count joins when the decoder resumes
    (recipe.state / "progress.json").write_text(json.dumps({"gpt_cpu_seconds": 4000.0}))
    resume()  # a local state exists: nothing is resumed or carried again
    assert recipe.progress() == {"gpt_cpu_seconds": 4000.0}


@pytest.mark.parametrize("stage", ["sovits", "gpt"])
def test_the_newest_training_state_is_exported_for_measuring(tmp_path, stage):
    # a run stopped by Ctrl-C leaves a training state and no export: `export_state` writes the export from it
    from myna.engine.loading import load_gpt, load_sovits
    from myna.models.sovits import SoVITS
    from myna.models.t2s import T2SModel
    from myna.train import loop
    from myna.train.default_recipe import NETWORKS, PRESET

    recipe = Recipe(None, tmp_path / "work", tmp_path / "snapshot")
    with pytest.raises(SystemExit, match=f"no {stage} training state"):
        recipe.export_state(stage)
    states = recipe._state_dir(stage) / "checkpoints"
    states.mkdir(parents=True)
    models = {}
    for step in (40, 60):
        torch.manual_seed(step)
        model = SoVITS(recipe.config) if stage == "sovits" else T2SModel(PRESET.gpt)
        models[step] = model
        torch.save({"stage": {NETWORKS[stage][0]: model.state_dict()}, "step": step},
                   states / f"{loop.STATE_PREFIX}{step:08d}.pt")
    path = recipe.export_state(stage)
    assert recipe.latest(stage) == (path, 60)
    exported = (load_sovits if stage == "sovits" else load_gpt)(path).state_dict()
    newest, older = models[60].state_dict(), models[40].state_dict()
    key = next(k for k, v in exported.items() if v.is_floating_point() and v.numel() > 1000 and k in newest)
    torch.testing.assert_close(exported[key].float(), newest[key], atol=2e-3, rtol=2e-3)  # fp16 export
    assert not torch.allclose(exported[key].float(), older[key], atol=2e-3)


def test_experiment_settings_are_parsed_and_checked():
    from myna.errors import InputError
    from myna.train.default_recipe import parse_settings

    assert parse_settings(["token_noise=0.25", "crop_phones=true", "token_noise_span=4", "latent=prior"]) == {
        "token_noise": 0.25, "crop_phones": True, "token_noise_span": 4, "latent": "prior"}
    with pytest.raises(InputError, match="no decoder training setting 'tokn_noise'"):
        parse_settings(["tokn_noise=0.2"])
    with pytest.raises(InputError, match="NAME=VALUE"):
        parse_settings(["token_noise"])


def _aligned_cache(root, clips: int = 30) -> list[list[int]]:
    """A feature cache at ROOT of short clips: one phone class a content frame, known; returns each clip's truth
    (the phoneme index of every frame, -1 in the silences at the ends)."""
    import soundfile

    from myna.text.symbols import symbol_to_id
    from myna.train.dataset import CACHE_FORMAT, MANIFEST_NAME, save_tensors
    from myna.train.phonetic import PHONE_CLASSES, symbol_classes

    ids = symbol_to_id("v2")
    words = [("K", "AE1", "T"), ("S", "IY1"), ("D", "AO1", "G")]
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(len(PHONE_CLASSES), 384, generator=gen) * 3
    classes = symbol_classes()
    records, truths = [], []
    for n in range(clips):
        word = words[n % len(words)]
        lengths = torch.randint(3, 7, (len(word),), generator=gen).tolist()
        frame_classes = [0] * 16 + [int(classes[ids[p]]) for p, k in zip(word, lengths, strict=True) for _ in range(k)]
        frame_classes += [0] * 16  # > 0.6 s: the decoder's items keep it
        ssl = means[frame_classes] + 0.3 * torch.randn(len(frame_classes), 384, generator=gen)
        save_tensors(root / f"hubert/u{n}.safetensors", {"ssl": ssl.t()[None].contiguous()})
        save_tensors(root / f"phonemes/u{n}.safetensors", {"phone_ids": torch.tensor([ids[p] for p in word])})
        (root / "wav32k").mkdir(exist_ok=True)
        soundfile.write(root / f"wav32k/u{n}.wav", torch.zeros(len(frame_classes) * 640).numpy(), 32000, "PCM_16")
        records.append({"name": f"u{n}", "seconds": len(frame_classes) / 50, "tokens": len(frame_classes) // 2,
                        "hubert": f"hubert/u{n}.safetensors", "phonemes": f"phonemes/u{n}.safetensors",
                        "wav32k": f"wav32k/u{n}.wav"})
        truths.append([-1] * 16 + [i for i, k in enumerate(lengths) for _ in range(k)] + [-1] * 16)
    (root / MANIFEST_NAME).write_text(json.dumps({"format": CACHE_FORMAT, "version": "v2", "symbols": "v2",
                                                  "models": {}, "items": records}))
    return truths


def test_the_decoder_can_be_told_each_frames_phoneme_from_the_alignment(tmp_path):
    import numpy as np

    from myna.train.dataset import FeatureCache
    from myna.train.default_recipe import ALIGN_STRIDE
    from myna.train.stages import sovits_items

    recipe = Recipe(None, tmp_path / "work", tmp_path / "snapshot")
    truths = _aligned_cache(recipe.work / "features", clips=10 * ALIGN_STRIDE)
    recipe.work.joinpath("heldout_features").mkdir()
    recipe.work.joinpath("heldout_features", "features.json").write_text("{}")  # features() finds both caches
    positions = recipe.alignment(positions=True)
    assert sorted(positions) == sorted(f"u{n}" for n in range(0, len(truths), ALIGN_STRIDE))  # every 5th clip
    for n in range(0, len(truths), ALIGN_STRIDE):  # (how well it aligns: tests/train/test_phonetic.py)
        found, phones = positions[f"u{n}"], max(truths[n]) + 1
        spoken = found[found >= 0]
        assert found.shape == (len(truths[n]),) and np.all(np.diff(spoken) >= 0)  # a frame each, in order
        assert spoken.tolist() and set(spoken.tolist()) == set(range(phones))  # every phoneme spoken
    labels = recipe.alignment()
    assert sorted(labels) == sorted(positions)
    record = torch.load(recipe.work / "alignment.pt")  # a labels-only record (the phone tokenizer's) is aligned again
    torch.save({"names": record["names"][:3], "labels": record["labels"][:3]}, recipe.work / "alignment.pt")
    assert sorted(recipe.alignment(positions=True)) == sorted(record["names"][:3])

    items = sovits_items(FeatureCache.open(recipe.work / "features"), 32000, positions)
    aligned = [item for item in items if "phone_positions" in item]
    assert len(aligned) == len(positions) and len(aligned) < len(items)  # only the aligned clips carry them
    assert all(item["phone_positions"].dtype == torch.int64 and int(item["phone_positions"].max()) < item["phones"].shape[0]
               for item in aligned)


def test_a_decoder_forks_into_another_design_with_chosen_weights_fresh(tmp_path):
    # the experiments fork a run into a new work folder: another design (the text position prior), some weights new
    from dataclasses import replace

    from myna.errors import InputError
    from myna.train import loop
    from myna.train.sovits_trainer import SoVITSTrainer

    origin = Recipe(None, tmp_path / "a", tmp_path / "snapshot", design="istft16")
    (origin.work / "features").mkdir(parents=True)
    origin.tokenizer_file.parent.mkdir(parents=True)
    origin.tokenizer_file.write_bytes(b"tokenizer")
    (origin.state / "progress.json").write_text(json.dumps({"sovits_istft16_cpu_seconds": 60.0}))
    settings = replace(SOVITS_SETTINGS, n_mel_channels=80)
    trainer = SoVITSTrainer(origin.config, settings)
    params = dict(trainer.generator.named_parameters())
    kept, renewed = "enc_p.mrte.c_pre.weight", "enc_p.encoder_text.attn_layers.0.conv_q.weight"
    with torch.no_grad():
        for name in (kept, renewed):
            params[name].add_(1.0)  # unlike a fresh generator (each trainer starts from the same seed)
            trainer.optim_g.state[params[name]] = {"step": torch.tensor(7.0), "exp_avg": torch.ones_like(params[name]),
                                                   "exp_avg_sq": torch.ones_like(params[name])}
    folder = origin._state_dir("sovits") / "checkpoints"
    folder.mkdir(parents=True)
    loop.atomic_save({"step": 120, "stage": trainer.state(), "settings": settings.to_dict()},
                     folder / f"{loop.STATE_PREFIX}{120:08d}.pt")

    fork = Recipe(None, tmp_path / "b", tmp_path / "snapshot", design="istft16p")
    assert fork.fork_sovits(origin.work, "istft16", reinit=("enc_p.encoder_text.",)) == 120
    assert fork.kept_steps("sovits") == {120}
    assert (fork.work / "features").resolve() == (origin.work / "features").resolve()
    assert fork.tokenizer_file.read_bytes() == b"tokenizer" and fork.progress() == {"sovits_istft16_cpu_seconds": 60.0}

    resumed = SoVITSTrainer(fork.config, settings)
    resumed.load_state(torch.load(fork._state_dir("sovits") / "checkpoints" / f"{loop.STATE_PREFIX}{120:08d}.pt",
                                  weights_only=False)["stage"])
    ours = dict(resumed.generator.named_parameters())
    torch.testing.assert_close(ours[kept], params[kept])
    assert float(resumed.optim_g.state[ours[kept]]["step"]) == 7.0
    assert not torch.allclose(ours[renewed], params[renewed]) and ours[renewed] not in resumed.optim_g.state
    assert torch.equal(ours["enc_p.mrte.position_scale"], torch.zeros(4))  # the prior's weight, new in this design
    with pytest.raises(SystemExit, match="already has training states"):
        fork.fork_sovits(origin.work, "istft16")
    with pytest.raises(InputError, match="no decoder weight is named enc_p.encoder_txt"):
        Recipe(None, tmp_path / "d", tmp_path / "snapshot").fork_sovits(origin.work, "istft16", ("enc_p.encoder_txt.",))
    with pytest.raises(SystemExit, match="no istft16p decoder state"):
        Recipe(None, tmp_path / "c", tmp_path / "snapshot", design="istft16p").fork_sovits(origin.work)
