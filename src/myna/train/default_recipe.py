"""The default voice's training recipe as stages (scripts/train_default_voice.py is its command line).

State lives in a work folder: the feature caches in WORK/features and WORK/heldout_features, and
everything that depends on the semantic tokens in WORK/TOKENS (TOKENS/tokens, TOKENS/sovits/DESIGN,
TOKENS/gpt, exports in TOKENS/exports, TOKENS/curve.json), one folder per token design. Progress that
must survive the machine goes into a snapshot folder committed with the code (myna.train.snapshot), by the
rule of myna.train.snapshot_rule. Every training stage resumes from WORK's training state, else from the
snapshot (weights only: a fresh optimizer with WARMUP_STEPS of learning-rate warm-up), else from scratch.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from myna.engine.loading import load_sovits
from myna.engine.precision import native_bf16
from myna.errors import InputError
from myna.models.sovits import SoVITSConfig
from myna.train import loop
from myna.train.dataset import MANIFEST_NAME, FeatureCache
from myna.train.export import export_gpt, export_sovits
from myna.train.features import FeatureModels, extract_features
from myna.train.model_card import SOURCES_FILE, write_model_card
from myna.train.presets import get_preset
from myna.train.snapshot import Snapshot, seed_training_state

if TYPE_CHECKING:
    from myna.train.config import SoVITSTrainConfig
    from myna.train.sovits_trainer import SoVITSTrainer
    from myna.train.synth.corpus import SynthOptions

PRESET = get_preset("small")
# bf16 autocast where the CPU runs it natively; emulated bf16 is 7x slower than fp32
PRECISION = "bf16" if native_bf16("cpu") else "fp32"
# The decoder trains on the mel loss alone until the adversarial and feature-matching losses join at this step.
# On the mel loss its held-out resynthesis WER stayed at 0.45-0.46 (120 clips) from step 7,536 to 10,000 while the
# loss still fell; 1,150 steps with the discriminator from step 10,348 brought it to 0.415 (docs/default-voice-history.md).
DISCRIMINATOR_START = 10_348
EXPORT_EVERY = 500
# The networks of each stage's training state (loop checkpoints): the exported one first.
NETWORKS = {"sovits": ("generator", "discriminator"), "gpt": ("model",)}
WARMUP_STEPS = 200
# The corpus (Recipe.corpus_options; `myna data synth --utterances CORPUS_UTTERANCES --wide-utterances
# CORPUS_WIDE_UTTERANCES --pseudo-speakers 16 --seed 0`): 26 training speakers. At 100 a speaker (2,600 clips, 3.6 h)
# the GPT memorized it after ~2,500 steps; at 300 (10.8 h) it still followed only the text of its training sentences,
# whose templates speak 586 distinct words: the wide-vocabulary sentences draw on ~16,600 (docs/default-voice-history.md). At
# 200 of those a speaker (13,000 clips) the GPT's unprompted margin was 2.05 on its training sentences and 0.55 on new
# ones by step 8,000. At 400 (18,200 clips) its held-out teacher-forced loss fell 0.155 a 1,000 steps (2.747 at step
# 9,137, 2.536 at 10,500), against 0.042 on the 13,000 clips, so they grew again, to 800 (28,600 clips, 38.6 h). (By
# step 11,715, 2.479, the rate was back to ~0.05: each growth buys a step down in held-out loss, docs/default-voice-history.md.)
CORPUS_UTTERANCES = 300
CORPUS_WIDE_UTTERANCES = 800
CORPUS_PSEUDO_SPEAKERS = 16
CORPUS_SEED = 0
CORPUS_SPEAKERS = 26  # training speakers: 13 base voices and 16 pseudo-speakers, less the 3 held out
REFERENCE_SPEAKER = "festival-slt-hts"
TOKENIZER_KEYS = ("ssl_proj.", "quantizer.")  # the phone tokenizer: kept exact in snapshots
# Token designs (the recipe's `--tokens`): "kmeans1024", 1024 k-means codes of the Whisper states
# (myna.train.kmeans_tokens); "product16", phone x 16 acoustic sub-codes (880 of the 1024 codes);
# "phone", the 55 phone classes (myna.train.phonetic). A probe decoder (tokens + phonemes -> mel,
# Griffin-Lim, Whisper tiny.en on held-out speakers) had WER 0.735 through k-means codes after 300
# steps (0.532 after 600), 0.893 through product codes, 1.16 through phones: words first, so k-means.
TOKEN_DESIGNS = {"kmeans1024": 1024, "product16": 16, "phone": 1}  # codes, or sub-codes per phone
DEFAULT_TOKENS = "kmeans1024"
RECORD = {"myna": PRESET.encoder_record()}
# The decoder trains through the inference path (prior mean + noise, reversed flow) on the mel loss: through the
# posterior (upstream's way) it collapsed to a mean spectrum over 2,543 steps (docs/default-voice-history.md). At a constant
# 3e-4 the mel loss stopped falling near step 4,750 (250-step means 28.0 -> 30.0 by step 5,500), and at ~2.5e-4
# (a 2%-an-epoch decay whose epochs grew threefold with the corpus) it rose again after step ~8,700 (26.5 -> 29.3),
# the resynthesis WER with it (0.58 at step 9,000, 0.82 at 10,000). So the rate starts at 2e-4 and decays 2% every
# LR_DECAY_STEPS, whatever the corpus's size (trainers decay by epoch, as upstream's; an epoch's length follows the
# corpus, and the epoch is the step over the steps an epoch): 1.5e-4 at step 6,000 and 0.6e-4 at step 20,000.
LR_DECAY_STEPS = 325
_EPOCH_STEPS = CORPUS_SPEAKERS * (CORPUS_UTTERANCES + CORPUS_WIDE_UTTERANCES) // PRESET.sovits_train.batch_size
SOVITS_SETTINGS = replace(PRESET.sovits_train, epochs=10_000, save_every_steps=250, seed=1234, precision=PRECISION,
                          discriminator_start_step=DISCRIMINATOR_START, freeze_tokens=True, warmup_steps=WARMUP_STEPS,
                          latent="prior", learning_rate=2e-4, lr_decay=0.98 ** (_EPOCH_STEPS / LR_DECAY_STEPS))
GPT_SETTINGS = replace(PRESET.gpt_train, epochs=10_000, save_every_steps=250, seed=1234, warmup_steps=WARMUP_STEPS,
                       precision=PRECISION)
# The GPT also trains on pairs of one speaker's clips joined (myna.train.stages.JoinedPairs), the shape of a
# prompted request; from step 3,871 on (before it, single clips only). Each clip's partner is drawn afresh every
# epoch (JoinedPairs.set_epoch); the GPT's first 13,768 steps saw one fixed draw.
GPT_JOINED_PAIRS = True
_16K = dict(sampling_rate=16000, filter_length=1024, hop_length=320, win_length=1024)
# Decoder designs compared on the same tokens (the preset's is the shipped one).
DESIGNS: dict[str, SoVITSConfig] = {
    "hifigan32": replace(PRESET.sovits, decoder="hifigan", sampling_rate=32000, filter_length=2048, hop_length=640,
                         win_length=2048, upsample_rates=(10, 8, 4, 2), upsample_kernel_sizes=(20, 16, 8, 4),
                         segment_size=10240),
    "hifigan16": replace(PRESET.sovits, decoder="hifigan", **_16K, upsample_rates=(10, 8, 4),
                         upsample_kernel_sizes=(20, 16, 8), segment_size=5120),
    "istft16": replace(PRESET.sovits, decoder="istft", **_16K, segment_size=10240),
    # istft16 whose text attention has a diagonal prior (myna.models.mrte): the main line's stays parked on one
    # phoneme, and neither a guide nor a supervised alignment ordered it in ~500 steps (docs/default-voice.md)
    "istft16p": replace(PRESET.sovits, decoder="istft", **_16K, segment_size=10240, text_position_prior=True),
}
DEFAULT_DESIGN = next(name for name, config in DESIGNS.items() if config == PRESET.sovits)
ALIGN_STRIDE = 5  # the text-following check aligns every 5th training clip when no phone alignment is saved


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` overrides of the decoder's training settings (SoVITSTrainConfig's fields; VALUE is JSON, or
    taken as a string) -> {name: value}; unknown names and malformed pairs are refused."""
    known = {field.name for field in fields(SOVITS_SETTINGS)}
    settings: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"a setting is NAME=VALUE, got {pair!r}")
        if name not in known:
            raise InputError(f"no decoder training setting {name!r}; known: {', '.join(sorted(known))}")
        try:
            settings[name] = json.loads(text)
        except json.JSONDecodeError:
            settings[name] = text
    return settings


class Recipe:
    """One corpus, one work folder, one committed snapshot folder."""

    def __init__(self, corpus: Path | None, work: Path, snapshot_dir: Path, design: str | None = None,
                 tokens: str | None = None) -> None:
        self.corpus, self.work, self.snapshot_dir = corpus, work, snapshot_dir
        self.design = design or DEFAULT_DESIGN
        self.config = DESIGNS[self.design]
        self.tokens = tokens or DEFAULT_TOKENS
        if self.tokens not in TOKEN_DESIGNS:
            raise SystemExit(f"unknown token design {self.tokens!r}: one of {', '.join(TOKEN_DESIGNS)}")
        self.state = work / self.tokens  # everything that depends on the tokens
        self.tokenizer_file = self.state / "tokens" / "tokenizer_s2.safetensors"

    # ------------------------------------------------------------------ data
    def feature_models(self, sovits: Path | None = None) -> FeatureModels:
        """The preset's content and speaker encoders (and a SoVITS for semantic tokens)."""
        return FeatureModels(None, sovits, device="cpu", content=PRESET.content, speaker=PRESET.speaker,
                             version=PRESET.sovits.version)

    def corpus_options(self, jobs: int = 1) -> SynthOptions:
        """What `myna data synth` renders for this recipe into the corpus folder (with `jobs` renderers)."""
        from myna.train.synth.corpus import SynthOptions

        if self.corpus is None:
            raise SystemExit("no corpus folder given")
        return SynthOptions(self.corpus, utterances=CORPUS_UTTERANCES, wide_utterances=CORPUS_WIDE_UTTERANCES,
                            pseudo_speakers=CORPUS_PSEUDO_SPEAKERS, seed=CORPUS_SEED, jobs=jobs)

    def build_corpus(self, jobs: int = 1) -> None:
        """The recipe's corpus rendered (or completed: rendering resumes) and its feature caches: what a fresh
        machine needs before training resumes from the committed snapshot. Stops before the features when a clip
        could not be rendered (the caches are computed once, so they must see the whole corpus)."""
        from myna.errors import MynaError
        from myna.train.synth.corpus import build_corpus

        try:
            report = build_corpus(self.corpus_options(jobs))
        except MynaError as exc:
            raise SystemExit(f"corpus: {exc}") from None
        for line in report.summary():
            print(f"corpus: {line}", file=sys.stderr)
        if report.failures:
            raise SystemExit(f"corpus: {len(report.failures)} clips could not be rendered (first: {report.failures[0]}); "
                             "run the corpus stage again once the cause is fixed")
        self.features()

    def features(self) -> None:
        """Feature caches of the training and the held-out speakers (computed once, then reused)."""
        for name, listing in (("heldout_features", "heldout_speakers.list"), ("features", "corpus.list")):
            if not (self.work / name / MANIFEST_NAME).is_file():
                extract_features(self.corpus / listing, self.work / name, self.feature_models(), progress=True)

    def tokenizer(self) -> Path:
        """TOKENIZER: the committed snapshot's (when it has this token design), else one fitted here."""
        if self.tokenizer_file.is_file():
            return self.tokenizer_file
        from myna.models.sovits import SoVITS

        self.features()
        snapshot = Snapshot.open(self.snapshot_dir)
        model = SoVITS(PRESET.sovits)
        if "sovits" in snapshot.stages and snapshot.notes.get("tokens") == self.tokens:
            model.load_state_dict({k: v for k, v in snapshot.weights("sovits").items() if k.startswith(TOKENIZER_KEYS)},
                                  strict=False)
        else:
            cache = FeatureCache.open(self.work / "features")
            clips = [u.ssl()[0].t() for u in cache.items]
            if self.tokens.startswith("kmeans"):
                from myna.train.kmeans_tokens import fit_kmeans_tokenizer

                kept = fit_kmeans_tokenizer(model, clips, TOKEN_DESIGNS[self.tokens])
                print(f"k-means tokenizer: the projection keeps {kept:.1%} of the variance", file=sys.stderr)
            else:
                self._fit_phone_tokenizer(model, cache, clips)
        self.tokenizer_file.parent.mkdir(parents=True, exist_ok=True)
        export_sovits(model.eval(), self.tokenizer_file.with_suffix(".pth"), f"default voice: {self.tokens} tokenizer",
                      RECORD, safetensors=True)
        return self.tokenizer_file

    def _fit_phone_tokenizer(self, model, cache: FeatureCache, clips: list[torch.Tensor]) -> None:
        """Phone (or product) tokens fitted on an alignment of the corpus, saved for reuse (it takes a while)."""
        from myna.train.phonetic import fit_phone_tokenizer

        saved = self.work / "alignment.pt"
        aligned = None
        if saved.is_file():
            record = torch.load(saved)
            if record["names"] == [u.name for u in cache.items]:
                aligned = [labels.numpy() for labels in record["labels"]]
        _, aligned = fit_phone_tokenizer(model, clips, [u.phone_ids().tolist() for u in cache.items],
                                         progress=sys.stderr, per_class=TOKEN_DESIGNS[self.tokens], aligned=aligned)
        torch.save({"names": [u.name for u in cache.items], "labels": [torch.from_numpy(a) for a in aligned]}, saved)

    def sources(self) -> dict:
        """The corpus's sources.json (`myna data synth`'s record of packages, licences, speakers), or {}."""
        path = self.corpus / "sources.json" if self.corpus is not None else None
        return json.loads(path.read_text()) if path is not None and path.is_file() else {}

    def corpus_mismatch(self) -> str | None:
        """A warning when the corpus is not the recipe's: another number of training speakers or of utterances a
        training speaker (the decoder's learning-rate decay a step assumes the recipe's epoch length)."""
        speakers = [s for s in self.sources().get("speakers", []) if isinstance(s, dict) and s.get("split") == "train"]
        counts = {s.get("utterances") for s in speakers}
        total = CORPUS_UTTERANCES + CORPUS_WIDE_UTTERANCES
        recipe = (f"myna data synth --utterances {CORPUS_UTTERANCES} --wide-utterances {CORPUS_WIDE_UTTERANCES}, which "
                  "the corpus stage of scripts/train_default_voice.py runs; it resumes an existing corpus")
        if counts and counts != {total}:
            return (f"{self.corpus} has {', '.join(map(str, sorted(counts)))} utterances a training speaker, the "
                    f"recipe's corpus {total} ({recipe})")
        if speakers and len(speakers) != CORPUS_SPEAKERS:
            return (f"{self.corpus} has {len(speakers)} training speakers, the recipe's corpus {CORPUS_SPEAKERS} "
                    f"({recipe})")
        return None

    def alignment(self, positions: bool = False) -> dict[str, np.ndarray]:
        """Phone labels of training clips' content frames, by clip name: WORK/alignment.pt (the phone tokenizer's),
        else a flat-start alignment (myna.train.phonetic.align_corpus) of every ALIGN_STRIDE-th clip, saved there.
        `positions`: each frame's phoneme index (-1 in the end silences) instead, aligning again once where the
        saved record has only labels."""
        saved = self.work / "alignment.pt"
        record = torch.load(saved) if saved.is_file() else None
        if record is None or (positions and "positions" not in record):
            from myna.train.phonetic import align_corpus

            self.features()
            items = FeatureCache.open(self.work / "features").items
            if record is None:
                items = items[::ALIGN_STRIDE]
            else:  # the same clips as the saved labels
                by_name = {u.name: u for u in items}
                items = [by_name[name] for name in record["names"]]
            labels, where = align_corpus([u.ssl()[0].t() for u in items], [u.phone_ids().tolist() for u in items],
                                         progress=sys.stderr, positions=True)
            record = {"names": [u.name for u in items], "labels": [torch.from_numpy(a) for a in labels],
                      "positions": [torch.from_numpy(a) for a in where]}
            torch.save(record, saved)
        key = "positions" if positions else "labels"
        return {name: values.numpy() for name, values in zip(record["names"], record[key], strict=True)}

    def token_cache(self) -> FeatureCache:
        """The training feature cache with every clip's phone tokens."""
        if (mismatch := self.corpus_mismatch()) is not None:
            print(f"warning: {mismatch}", file=sys.stderr)
        extract_features(self.corpus / "corpus.list", self.work / "features", self.feature_models(self.tokenizer()),
                         progress=True)
        return FeatureCache.open(self.work / "features")

    def heldout_token_cache(self) -> FeatureCache:
        """The held-out speakers' feature cache with their tokens (the GPT's held-out score reads it)."""
        extract_features(self.corpus / "heldout_speakers.list", self.work / "heldout_features",
                         self.feature_models(self.tokenizer()), progress=True)
        return FeatureCache.open(self.work / "heldout_features")

    # ------------------------------------------------------------------ training
    def sovits_settings(self, **overrides: Any) -> SoVITSTrainConfig:
        """The recipe's decoder training settings for this design (80 mel bands at 16 kHz), with `overrides`."""
        mels = 80 if self.config.sampling_rate <= 16000 else SOVITS_SETTINGS.n_mel_channels
        return replace(SOVITS_SETTINGS, **({"n_mel_channels": mels} | overrides))

    def train_sovits(self, max_steps: int, minutes: float | None = None, **experiment: Any) -> int:
        """SoVITS of this design up to `max_steps` (or `minutes` of CPU time), exporting every EXPORT_EVERY steps;
        `experiment` overrides the recipe's training settings by name (SoVITSTrainConfig's fields, see
        `parse_settings`), e.g. token_noise, the share of token frames replaced at random."""
        from myna.train.sovits_trainer import SoVITSTrainer
        from myna.train.stages import sovits_items

        cache = self.token_cache()
        settings = self.sovits_settings(max_steps=max_steps, **experiment)
        out = self.state / "sovits" / self.design
        positions = self.alignment(positions=True) if settings.mrte_align else None
        items = sovits_items(cache, self.config.sampling_rate, positions)
        trainer = SoVITSTrainer(self.config, settings, sample_item=items[0])
        tokenizer = load_sovits(self.tokenizer())
        trainer.generator.ssl_proj.load_state_dict(tokenizer.ssl_proj.state_dict())
        trainer.generator.quantizer.load_state_dict(tokenizer.quantizer.state_dict())
        self._resume_from_snapshot("sovits", trainer, out, settings,
                                   lambda snapshot: self.load_sovits_snapshot(trainer, snapshot))

        def on_step(step: int) -> None:
            if step % EXPORT_EVERY == 0:
                self.export_sovits(trainer.generator, step)

        steps = self._run(trainer, items, settings, out, "SoVITS", on_step, minutes, "sovits")
        self.export_sovits(trainer.generator, steps)
        return steps

    def fork_sovits(self, source: Path, from_design: str | None = None, reinit: tuple[str, ...] = ()) -> int:
        """Start this work folder's decoder (of this design) from the newest decoder state of the work folder `source`
        (of `from_design`, this design by default), as the experiments in docs/default-voice.md do: the corpus's
        features and alignment are linked, the tokenizer, CPU time and curve copied, and weights whose names start
        with one of `reinit` start fresh (SoVITSTrainer.load_fork). Returns the step the fork starts at."""
        from myna.train.sovits_trainer import SoVITSTrainer

        origin = Recipe(None, source, self.snapshot_dir, from_design or self.design, self.tokens)
        if self.kept_steps("sovits"):
            raise SystemExit(f"{self._state_dir('sovits')} already has training states; fork into a new work folder")
        if not (states := loop.checkpoint_paths(origin._state_dir("sovits"))):
            raise SystemExit(f"no {origin.design} decoder state in {origin._state_dir('sovits')} to fork from")
        saved = torch.load(states[-1], map_location="cpu", weights_only=False)
        step = int(saved["step"])
        self.work.mkdir(parents=True, exist_ok=True)
        for name in ("features", "heldout_features", "alignment.pt"):
            if (origin.work / name).exists() and not (self.work / name).exists():
                (self.work / name).symlink_to((origin.work / name).resolve())
        if not self.tokenizer_file.parent.exists():
            shutil.copytree(origin.tokenizer_file.parent, self.tokenizer_file.parent)
        for name in ("progress.json", "curve.json"):
            if (origin.state / name).exists() and not (self.state / name).exists():
                shutil.copy2(origin.state / name, self.state / name)
        trainer = SoVITSTrainer(self.config, self.sovits_settings())
        fresh = trainer.load_fork(saved["stage"], origin.config, reinit)
        folder = self._state_dir("sovits") / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        loop.atomic_save({"step": step, "stage": trainer.state(), "settings": saved.get("settings")},
                         folder / f"{loop.STATE_PREFIX}{step:08d}.pt")
        modules = sorted({name.rsplit(".", 1)[0] for name in fresh})
        listed = ", ".join(modules[:6]) + (", ..." if len(modules) > 6 else "")
        print(f"sovits: {self.design} forked from {origin.design} at step {step} in {source}; {len(fresh)} weights "
              f"start fresh" + (f" ({listed})" if fresh else ""))
        return step

    def export_sovits(self, generator, step: int) -> Path:
        """An inference file of `generator` at `step` in WORK/exports."""
        generator.eval()
        path = self.state / "exports" / f"sovits_{self.design}_{step:06d}.pth"
        export_sovits(generator, path, f"default voice: small preset ({self.design}), SoVITS step {step}", RECORD,
                      safetensors=True)
        generator.train()
        return path.with_suffix(".safetensors")

    def train_gpt(self, max_steps: int, minutes: float | None = None) -> int:
        """The GPT on the phone tokens, up to `max_steps` (or `minutes` of CPU time)."""
        from myna.train.gpt_trainer import GPTTrainer
        from myna.train.stages import JoinedPairs, gpt_items

        cache = self.token_cache()
        settings = replace(GPT_SETTINGS, max_steps=max_steps)
        out = self.state / "gpt"
        singles = gpt_items(cache, PRESET.gpt.max_sec)
        items = JoinedPairs(singles, settings.seed) if GPT_JOINED_PAIRS else singles
        trainer = GPTTrainer(PRESET.gpt, settings, sample_item=singles[0])
        self._resume_from_snapshot("gpt", trainer, out, settings,
                                   lambda snapshot: trainer.model.load_state_dict(snapshot.weights("gpt")))
        steps = self._run(trainer, items, settings, out, "GPT", None, minutes, "gpt")
        self.export_gpt(trainer.model, steps)
        return steps

    def export_gpt(self, model, step: int) -> Path:
        """An inference file of the GPT at `step` in WORK/exports."""
        path = self.state / "exports" / f"gpt_{step:06d}.ckpt"
        export_gpt(model.eval(), path, f"default voice: small preset GPT, step {step}", RECORD, GPT_SETTINGS.to_dict(),
                   safetensors=True)
        model.train()
        return path.with_suffix(".safetensors")

    def export_state(self, stage: str) -> Path:
        """An inference file of `stage`'s newest local training state: a run stopped by Ctrl-C saves its state but
        exports nothing, and the measuring stages read exports."""
        from myna.models.sovits import SoVITS
        from myna.models.t2s import T2SModel

        weights, step = self.training_weights(stage)
        if stage == "sovits":
            generator = SoVITS(self.config, with_posterior=SOVITS_SETTINGS.latent == "posterior")
            generator.load_state_dict(weights[NETWORKS["sovits"][0]])
            return self.export_sovits(generator, step)
        model = T2SModel(PRESET.gpt)
        model.load_state_dict(weights[NETWORKS["gpt"][0]])
        return self.export_gpt(model, step)

    def _resume_from_snapshot(self, stage: str, trainer, out: Path, settings, load: Callable) -> None:
        """No local state: start from the committed snapshot's weights (when they fit this model); `load` takes the
        Snapshot and loads what of it the trainer uses."""
        if loop.checkpoint_paths(out):
            return
        snapshot = Snapshot.open(self.snapshot_dir)
        config = self.config.to_dict() if stage == "sovits" else PRESET.gpt.to_dict()
        if (stage not in snapshot.stages or snapshot.stages[stage]["config"] != json.loads(json.dumps(config))
                or snapshot.notes.get("tokens") != self.tokens):
            return
        load(snapshot)
        seed_training_state(trainer, out, snapshot.step(stage), settings)
        # the CPU time spent on the snapshot's weights goes on counting here (a fresh machine would restart it at 0)
        progress, key = self.progress(), self._progress_key(stage)
        if key not in progress and key in snapshot.notes.get("cpu_seconds", {}):
            progress[key] = snapshot.notes["cpu_seconds"][key]
            self._write_progress(progress)
        print(f"{stage}: resuming from the committed snapshot at step {snapshot.step(stage)}", file=sys.stderr)

    def _run(self, trainer, items, settings, out: Path, label: str, on_step, minutes: float | None, key: str) -> int:
        """loop.run for at most `minutes` of this process's CPU time (fair on a shared machine); adds the run's
        CPU seconds to WORK/progress.json."""
        deadline = time.process_time() + minutes * 60 if minutes else None
        out.mkdir(parents=True, exist_ok=True)
        settings.save(out / "train_config.json")
        started = time.process_time()
        try:
            steps = loop.run(trainer, items, settings, out, label, progress=sys.stderr, on_step=on_step,
                             stop=(lambda _: time.process_time() > deadline) if deadline else None)
        finally:
            progress, name = self.progress(), self._progress_key(key)
            progress[name] = progress.get(name, 0.0) + time.process_time() - started
            self._write_progress(progress)
        return steps

    def _progress_key(self, stage: str) -> str:
        """`stage`'s entry in WORK/progress.json (and in a snapshot's CPU seconds)."""
        return f"sovits_{self.design}_cpu_seconds" if stage == "sovits" else f"{stage}_cpu_seconds"

    def _write_progress(self, progress: dict) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "progress.json").write_text(json.dumps(progress, indent=1) + "\n")

    def progress(self) -> dict:
        """WORK/progress.json: CPU seconds per stage so far."""
        path = self.state / "progress.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    # ------------------------------------------------------------------ files
    def latest(self, stage: str) -> tuple[Path, int]:
        """The newest export of `stage` ("sovits" of this design, or "gpt") and its step."""
        prefix = f"sovits_{self.design}_" if stage == "sovits" else "gpt_"
        files = sorted((self.state / "exports").glob(f"{prefix}*.safetensors"))
        if not files:
            raise SystemExit(f"no {stage} export in {self.state / 'exports'}: train the {stage} stage first")
        return files[-1], int(files[-1].stem.rsplit("_", 1)[1])

    def load_sovits_snapshot(self, trainer: SoVITSTrainer, snapshot: Snapshot) -> bool:
        """Load the snapshot's generator into `trainer`, and its discriminator where it was saved at the generator's
        step in the trainer's layout (else the discriminator starts afresh); whether the discriminator was loaded."""
        trainer.generator.load_state_dict(snapshot.weights("sovits"))
        if (snapshot.step("discriminator") != snapshot.step("sovits")
                or snapshot.stages["discriminator"]["config"] != self.discriminator_config()):
            return False
        trainer.discriminator.load_state_dict(snapshot.weights("discriminator"))
        return True

    def discriminator_config(self) -> dict:
        """What a snapshot's discriminator weights must match to be loaded: the layout the trainer builds."""
        return {"version": self.config.version, "narrow": SOVITS_SETTINGS.discriminator_narrow}

    def training_weights(self, stage: str,
                         step: int | None = None) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
        """The networks of `stage`'s local training state at `step` (default: the newest), {name: weights}
        (NETWORKS[stage]: the first is the one exported), and its step."""
        out = self._state_dir(stage)
        states = loop.checkpoint_paths(out)
        if step is not None:
            states = [p for p in states if p.stem.endswith(f"_{step:08d}")]
        if not states:
            kept = ", ".join(p.stem for p in loop.checkpoint_paths(out)) or "none"
            raise SystemExit(f"no {stage} training state {'' if step is None else f'of step {step} '}in {out} "
                             f"(kept: {kept})")
        saved = torch.load(states[-1], map_location="cpu", weights_only=True)
        return ({name: saved["stage"][name] for name in NETWORKS[stage] if name in saved["stage"]},
                int(saved["step"]))

    def _state_dir(self, stage: str) -> Path:
        """Where `stage` ("sovits": this design's decoder, or "gpt") keeps its training states."""
        return self.state / "sovits" / self.design if stage == "sovits" else self.state / "gpt"

    def kept_steps(self, stage: str) -> set[int]:
        """The steps of `stage`'s training states still kept (the loop keeps the newest few)."""
        return {int(p.stem.removeprefix(loop.STATE_PREFIX)) for p in loop.checkpoint_paths(self._state_dir(stage))}

    def snapshot(self) -> Snapshot:
        """The committed snapshot folder."""
        return Snapshot.open(self.snapshot_dir)

    def curve(self) -> list[dict]:
        """WORK/curve.json: the measured WER points so far."""
        path = self.state / "curve.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def add_point(self, point: dict) -> None:
        """Append a measured point to WORK/curve.json."""
        points = self.curve() + [point]
        (self.state / "curve.json").write_text(json.dumps(points, indent=1) + "\n")

    def reference_clip(self) -> tuple[Path, str]:
        """The REFERENCE_SPEAKER clip closest to 6 s among its 4-8 s clips."""
        import soundfile

        from myna.train.listfile import read_list

        clips = [(abs(soundfile.info(e.audio).duration - 6.0), e.audio, e.text)
                 for e in read_list(self.corpus / "corpus.list")[0] if e.speaker == REFERENCE_SPEAKER
                 and 4.0 <= soundfile.info(e.audio).duration <= 8.0]
        if not clips:
            raise SystemExit(f"no 4-8 s clip of {REFERENCE_SPEAKER} in {self.corpus}")
        _, audio, text = min(clips)
        return Path(audio), text

    def write_card(self, out: Path, measured: Mapping | None) -> Path:
        """MODEL_CARD.md in the bundle folder `out` (myna.train.model_card): the corpus's sources, this recipe,
        the `measured` figures of benchmarks/voice_quality.py (None: not measured), the curve."""
        notices = self.corpus / "SOURCES.md" if self.corpus is not None else None
        if notices is not None and notices.is_file():  # the licences' notices travel with the voice
            shutil.copyfile(notices, out / SOURCES_FILE)
        steps = {stage: self.latest(stage)[1] for stage in ("sovits", "gpt")}
        recipe = {"model": f"myna preset \"small\" (SoVITS {self.config.version}, decoder {self.design})",
                  "semantic tokens": self.tokens, "SoVITS steps": steps["sovits"], "GPT steps": steps["gpt"],
                  "SoVITS learning rate": f"{SOVITS_SETTINGS.learning_rate:g}, x{SOVITS_SETTINGS.lr_decay:g} an epoch, "
                                          f"batch {SOVITS_SETTINGS.batch_size}",
                  "GPT learning rate": f"{GPT_SETTINGS.learning_rate:g}, batch {GPT_SETTINGS.batch_size}",
                  "reference speaker": REFERENCE_SPEAKER,
                  "recipe": "scripts/train_default_voice.py (myna.train.default_recipe)"}
        return write_model_card(out, self.sources(), self.curve(), self.progress(), measured, recipe)

    def bundle(self, out: Path, notice: str | None = None, ref_free: bool = False) -> Path:
        """The default-voice folder from the newest exports of both stages; `ref_free`: without the reference
        clip's transcript, so the GPT speaks unprompted (the decoder still takes the clip's timbre)."""
        from myna.engine.default_voice import write_bundle
        from myna.engine.voice_file import VoiceFile

        ref, text = self.reference_clip()
        voice = VoiceFile(gpt=self.latest("gpt")[0], sovits=self.latest("sovits")[0], ref=ref,
                          ref_text=None if ref_free else text,
                          ref_lang="en", name="default", version=PRESET.sovits.version, encoders=PRESET.encoder_record())
        return write_bundle(voice, out, "en", notice)
