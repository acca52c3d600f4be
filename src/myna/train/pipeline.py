"""`myna train`: recordings or a `.list` -> prepare -> features -> SoVITS -> GPT -> export -> a named voice.

Everything lives under DATA_DIR/trained/NAME (DATA_DIR: `--data-dir`, else MYNA_DATA_DIR, else
~/.local/share/myna):

    work/prepared/      sliced + transcribed utterances and dataset.list (skipped for a .list input)
    work/features/      the feature cache (myna.train.dataset)
    work/sovits/, work/gpt/   training states (checkpoints/), samples/, the settings used (*.json)
    NAME_s2.pth, NAME_s2.safetensors, NAME_s1.ckpt, NAME_s1.safetensors   exported, upstream formats
    voice.json          the models, the base's HuBERT/BERT/SV and a default reference (myna.engine.voice_file)

Running the same command again resumes: prepared data and cached features are reused, and each
stage continues from its last checkpoint (a finished stage is not retrained). `myna say --voice
NAME` reads voice.json for the model files and a default reference clip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from myna import checkpoints
from myna.engine.voice_file import VOICE_FILE, VoiceFile, trained_voice_dir, write_voice_file
from myna.errors import InputError
from myna.models.sovits import SoVITSConfig
from myna.models.t2s import T2SConfig
from myna.train import loop
from myna.train.config import SoVITSTrainConfig
from myna.train.dataset import FeatureCache
from myna.train.stages import TrainItems, TrainRequest, default_reference, gpt_items, sovits_items, train_gpt


def train_voice(request: TrainRequest, progress: TextIO | None = None) -> Path:
    """Run every stage (resuming where a previous run stopped); returns the voice.json path."""
    from myna.engine.loading import ModelPaths
    from myna.train.features import FeatureModels, extract_features
    from myna.train.prepare import PrepareOptions, prepare_dataset

    if request.base is None:
        if request.preset is None:
            raise InputError("give a base model directory (--base) to fine-tune, or a --preset to train from scratch")
        from myna.train.scratch import train_from_scratch

        return train_from_scratch(request, progress)
    home = trained_voice_dir(request.data_dir, request.name)
    work = home / "work"
    paths = ModelPaths.from_model_dir(request.base, request.version)
    ctx = loop.setup_distributed(request.sovits.device)
    if ctx.main:  # under torchrun the first process prepares the data; the others wait for it
        if request.data.suffix == ".list":
            list_path = request.data
        else:
            options = PrepareOptions(speaker=request.name, lang=request.lang, device=request.sovits.device,
                                     progress=progress is not None)
            list_path = prepare_dataset([request.data], work / "prepared", options).list_path
        models = FeatureModels(paths.hubert, paths.sovits, paths.bert, paths.sv, request.sovits.device)
        extract_features(list_path, work / "features", models, progress=progress is not None)
    loop.barrier(ctx)
    cache = FeatureCache.open(work / "features")

    base_g = checkpoints.read_sovits(paths.sovits)
    rate = SoVITSConfig.from_dict(base_g.config, base_g.version).sampling_rate
    sovits = _train_sovits(base_g, paths.sovits, sovits_items(cache, rate), request.sovits, work / "sovits", progress)
    base_t = checkpoints.read_gpt(paths.gpt)
    gpt_config = T2SConfig.from_dict(base_t.config)
    gpt = train_gpt(base_t, gpt_config, gpt_items(cache, gpt_config.max_sec), request.gpt, work / "gpt", progress,
                     sovits)

    from myna.train.export import export_gpt, export_sovits

    if not ctx.main:
        loop.finish_distributed(ctx)
        return home / VOICE_FILE
    tag = f"{request.name}: {request.sovits.epochs} SoVITS / {request.gpt.epochs} GPT epochs"
    export_sovits(sovits, home / f"{request.name}_s2.pth", tag, base_g.config, key=request.model_key)
    export_gpt(gpt, home / f"{request.name}_s1.ckpt", tag, base_t.config, request.gpt.to_dict(), key=request.model_key)
    voice = VoiceFile(name=request.name, version=base_g.version, gpt=home / f"{request.name}_s1.ckpt",
                      sovits=home / f"{request.name}_s2.pth", hubert=paths.hubert, bert=paths.bert, sv=paths.sv,
                      **default_reference(cache))
    manifest = write_voice_file(home, voice)
    loop.finish_distributed(ctx)
    return manifest


def pretrained_discriminator(sovits_path: Path) -> dict | None:
    """Upstream ships each pretrained generator `s2G*.pth` with its discriminator `s2D*.pth` beside it;
    fine-tuning starts from that discriminator when it is there (as upstream's s2_train does)."""
    candidate = sovits_path.with_name(sovits_path.name.replace("s2G", "s2D", 1))
    if candidate == sovits_path or not candidate.is_file():
        return None
    return checkpoints.read_discriminator(candidate)


def _train_sovits(base: checkpoints.SoVITSCheckpoint, base_path: Path, items: TrainItems, settings: SoVITSTrainConfig,
                  out: Path, progress: TextIO | None):
    from myna.train.sovits_trainer import SoVITSTrainer

    ctx = loop.setup_distributed(settings.device)  # already joined: returns this process's rank
    config = SoVITSConfig.from_dict(base.config, version=base.version)
    out.mkdir(parents=True, exist_ok=True)
    settings.save(out / "train_config.json")
    (out / "model_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    trainer = SoVITSTrainer(config, settings, generator_state=base.state_dict,
                            discriminator_state=pretrained_discriminator(base_path), ctx=ctx,
                            sample_item=items[0] if len(items) else None)
    loop.run(trainer, items, settings, out, "SoVITS", progress=progress, ctx=ctx)
    return trainer.generator.eval()


