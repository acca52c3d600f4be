"""`myna train`: recordings or a `.list` -> prepare -> features -> SoVITS -> GPT -> export -> a named voice.

Everything lives under DATA_DIR/trained/NAME (DATA_DIR: `--data-dir`, else MYNA_DATA_DIR, else
~/.local/share/myna):

    NAME_s2.pth, NAME_s1.ckpt   exported weights, upstream formats (`.safetensors` twins with --safetensors)
    refs/               the default reference clip and 2 next-best ones, with refs.json (their measurements)
    epochs/             with --save-epoch-weights: NAME_e{E}_s{S}.pth and NAME-e{E}.ckpt per saved epoch
    voice.json          the models, the base's HuBERT/BERT/SV and the reference (myna.engine.voice_file)
    work/run.json       what the run was started on (myna.train.runs)
    work/losses.jsonl, work/status.json, work/loss.png   loss history, state and curve (myna.train.history)
    work/prepared/      sliced + transcribed utterances and dataset.list (not for a .list input)
    work/features/      the feature cache (myna.train.dataset)
    work/sovits/, work/gpt/   training states (checkpoints/, removed when the run finishes unless
                        --keep-states), samples/, the settings used (*.json)

Running the same command again resumes the same run (prepared data and features reused, each stage
from its last checkpoint); other inputs or settings stop with what changed (myna.train.runs).
"""

from __future__ import annotations

import gc
import json
import shutil
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
from myna.train.history import RunHistory
from myna.train.runs import (
    RunRecord,
    check_against,
    data_fingerprint,
    hash_files,
    read_run,
    stage_settings,
    write_run,
)
from myna.train.stages import (
    TrainItems,
    TrainRequest,
    base_warnings,
    choose_reference,
    epoch_exporter,
    gpt_items,
    sovits_items,
    train_gpt,
)

EPOCHS_DIR = "epochs"
CONTINUED_DIR = "continued-from"


def train_voice(request: TrainRequest, progress: TextIO | None = None) -> Path:
    """Run every stage (resuming where a previous run of the same inputs stopped); returns the voice.json path."""
    if request.base is None:
        if request.preset is None:
            raise InputError("give a base model directory (--base) to fine-tune, or a --preset to train from scratch")
        from myna.train.scratch import train_from_scratch

        return train_from_scratch(request, progress)
    home = trained_voice_dir(request.data_dir, request.name)
    ctx = loop.setup_distributed(request.sovits.device)
    history = RunHistory(home / "work", request.name) if ctx.main else None
    try:
        manifest = _train(request, home, ctx, history, progress)
    except KeyboardInterrupt:
        if history is not None:
            history.phase("interrupted", "run the same command again to resume")
        raise
    except BaseException as exc:
        if history is not None:
            history.phase("failed", str(exc))
        raise
    if history is not None:
        history.phase("done", voice=str(manifest))
    return manifest


def _train(request: TrainRequest, home: Path, ctx: loop.Distributed, history: RunHistory | None,
           progress: TextIO | None) -> Path:
    from myna.engine.loading import ModelPaths
    from myna.train.features import FeatureModels, extract_features

    work = home / "work"
    paths = ModelPaths.from_model_dir(request.base, request.version)
    previous = read_run(work)
    continued = work / CONTINUED_DIR
    gpt_base, sovits_base = paths.gpt, paths.sovits
    if previous is not None and previous.continued_from and not request.restart:
        gpt_base, sovits_base = continued / Path(previous.continued_from["gpt"]).name, \
            continued / Path(previous.continued_from["sovits"]).name
    record = RunRecord(data_fingerprint(request.data), hash_files([gpt_base, sovits_base]),
                       {"sovits": stage_settings(request.sovits.to_dict()), "gpt": stage_settings(request.gpt.to_dict())},
                       {"sovits": request.sovits.epochs, "gpt": request.gpt.epochs})
    if previous is None and loop.checkpoint_paths(work / "sovits"):
        previous = RunRecord("unrecorded", "unrecorded", {})  # trained before runs were recorded
    mode = check_against(previous, record, request.name, request.restart, request.continue_training)
    if ctx.main:
        if mode == "continue":
            gpt_base, sovits_base = _keep_exports_as_base(home, request.name, continued)
            record.base = hash_files([gpt_base, sovits_base])
            record.continued_from = {"gpt": str(gpt_base.relative_to(home)), "sovits": str(sovits_base.relative_to(home))}
        elif previous is not None and previous.continued_from and mode == "resume":
            record.continued_from = previous.continued_from
        if mode != "resume":
            _clear_run(home, request.name, keep_continued=mode == "continue")
        elif previous is not None and previous.data != "unrecorded":
            record.states_pruned = previous.states_pruned
            record.finished = previous.finished and record.epochs == previous.epochs
        write_run(work, record)
    loop.barrier(ctx)
    if mode == "continue":
        gpt_base, sovits_base = continued / Path(record.continued_from["gpt"]).name, \
            continued / Path(record.continued_from["sovits"]).name

    list_path = _prepared_list(request, work, history, progress, ctx)
    if ctx.main:
        if history is not None:
            history.phase("features")
        models = FeatureModels(paths.hubert, paths.sovits, paths.bert, paths.sv, request.sovits.device)
        extract_features(list_path, work / "features", models, progress=progress is not None)
        gc.collect()  # the feature models (BERT, HuBERT) are no longer needed
    loop.barrier(ctx)
    cache = FeatureCache.open(work / "features")
    gpt_path, sovits_path = home / f"{request.name}_s1.ckpt", home / f"{request.name}_s2.pth"

    if not record.finished:
        base_g = checkpoints.read_sovits(sovits_base)
        base_t = checkpoints.read_gpt(gpt_base)
        gpt_config = T2SConfig.from_dict(base_t.config)
        for line in base_warnings(base_g.config, gpt_config, cache):
            if progress is not None and ctx.main:
                progress.write(f"warning: {line}\n")
        epochs = home / EPOCHS_DIR if request.epoch_weights else None
        rate = SoVITSConfig.from_dict(base_g.config, base_g.version).sampling_rate  # a 16 kHz preset trains at 16 kHz
        sovits = _train_sovits(base_g, paths.sovits, sovits_items(cache, rate), request, work / "sovits", progress,
                               history, epochs)
        sovits_config, base_g = base_g.config, None
        gc.collect()
        gpt = train_gpt(base_t, gpt_config, gpt_items(cache, gpt_config.max_sec), request.gpt, work / "gpt", progress,
                        sovits, log=history,
                        export_epochs=epoch_exporter(epochs, request.name, "gpt", base_t.config, request.gpt,
                                                     request.model_key)
                        if epochs is not None and ctx.main else None)
        if not ctx.main:
            loop.finish_distributed(ctx)
            return home / VOICE_FILE
        from myna.train.export import export_gpt, export_sovits

        if history is not None:
            history.phase("exporting")
        tag = f"{request.name}: {request.sovits.epochs} SoVITS / {request.gpt.epochs} GPT epochs"
        export_sovits(sovits, sovits_path, tag, sovits_config, request.sovits.to_dict(), request.safetensors,
                      key=request.model_key)
        export_gpt(gpt, gpt_path, tag, base_t.config, request.gpt.to_dict(), request.safetensors, key=request.model_key)
        record.finished = True
        if not request.keep_states:
            for stage in ("sovits", "gpt"):
                shutil.rmtree(work / stage / "checkpoints", ignore_errors=True)
            record.states_pruned = True
        write_run(work, record)
    elif not (gpt_path.is_file() and sovits_path.is_file()):
        raise InputError(f"voice {request.name!r} finished training but {gpt_path.name} or {sovits_path.name} is "
                         "gone; pass --restart to train it again")
    if not ctx.main:
        loop.finish_distributed(ctx)
        return home / VOICE_FILE
    reference = choose_reference(home, cache, list_path, request.ref_clip, progress)
    voice = VoiceFile(name=request.name, version=checkpoints.read_sovits(sovits_path, request.model_key).version, gpt=gpt_path,
                      sovits=sovits_path, hubert=paths.hubert, bert=paths.bert, sv=paths.sv, **reference)
    manifest = write_voice_file(home, voice)
    loop.finish_distributed(ctx)
    return manifest


def _prepared_list(request: TrainRequest, work: Path, history: RunHistory | None, progress: TextIO | None,
                   ctx: loop.Distributed) -> Path:
    """The .list to train on: `--data` itself, or the prepared one (prepared once; proofreading edits kept)."""
    from myna.train.prepare import LIST_NAME, PrepareOptions, prepare_dataset

    if request.data.suffix == ".list":
        return request.data
    prepared = work / "prepared" / LIST_NAME
    if ctx.main and not prepared.is_file():
        if history is not None:
            history.phase("preparing")
        options = PrepareOptions(speaker=request.name, lang=request.lang, device=request.sovits.device,
                                 asr_model=request.asr_model, progress=progress is not None)
        prepare_dataset([request.data], work / "prepared", options)
    loop.barrier(ctx)
    return prepared


def _keep_exports_as_base(home: Path, name: str, folder: Path) -> tuple[Path, Path]:
    """Copy the voice's exported weights into `folder`: `--continue-training` starts from them."""
    gpt, sovits = home / f"{name}_s1.ckpt", home / f"{name}_s2.pth"
    if not (gpt.is_file() and sovits.is_file()):
        raise InputError(f"voice {name!r} has no exported weights to continue from (its run did not finish); "
                         "run it again with its original inputs to finish it, or pass --restart")
    folder.mkdir(parents=True, exist_ok=True)
    copies = (folder / gpt.name, folder / sovits.name)
    for source, target in zip((gpt, sovits), copies, strict=True):
        shutil.copyfile(source, target.with_name(target.name + ".partial"))
        target.with_name(target.name + ".partial").replace(target)
    return copies


def _clear_run(home: Path, name: str, keep_continued: bool) -> None:
    """Remove a previous run's prepared data, states, samples, history and exports (the feature cache,
    content-addressed, stays for reuse)."""
    work = home / "work"
    for folder in (work / "prepared", work / "sovits", work / "gpt", home / EPOCHS_DIR):
        shutil.rmtree(folder, ignore_errors=True)
    if not keep_continued:
        shutil.rmtree(work / CONTINUED_DIR, ignore_errors=True)
    for path in (work / "losses.jsonl", work / "loss.png", home / f"{name}_s1.ckpt", home / f"{name}_s2.pth",
                 home / f"{name}_s1.safetensors", home / f"{name}_s2.safetensors"):
        path.unlink(missing_ok=True)


def pretrained_discriminator(sovits_path: Path) -> dict | None:
    """Upstream ships each pretrained generator `s2G*.pth` with its discriminator `s2D*.pth` beside it;
    fine-tuning starts from that discriminator when it is there (as upstream's s2_train does)."""
    candidate = sovits_path.with_name(sovits_path.name.replace("s2G", "s2D", 1))
    if candidate == sovits_path or not candidate.is_file():
        return None
    return checkpoints.read_discriminator(candidate)


def _train_sovits(base: checkpoints.SoVITSCheckpoint, base_path: Path, items: TrainItems, request: TrainRequest,
                  out: Path, progress: TextIO | None, history: RunHistory | None, epochs: Path | None):
    from myna.train.sovits_trainer import SoVITSTrainer

    settings: SoVITSTrainConfig = request.sovits
    ctx = loop.setup_distributed(settings.device)  # already joined: returns this process's rank
    config = SoVITSConfig.from_dict(base.config, version=base.version)
    out.mkdir(parents=True, exist_ok=True)
    settings.save(out / "train_config.json")
    (out / "model_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    discriminator = pretrained_discriminator(base_path)
    if progress is not None and ctx.main:
        progress.write("SoVITS: discriminator " + (f"from {base_path.name.replace('s2G', 's2D', 1)}\n"
                                                   if discriminator is not None else "starts fresh (no s2D*.pth beside the base)\n"))
    trainer = SoVITSTrainer(config, settings, generator_state=base.state_dict, discriminator_state=discriminator,
                            ctx=ctx, sample_item=items[0] if len(items) else None)
    del discriminator
    exporter = epoch_exporter(epochs, request.name, "sovits", base.config, settings, request.model_key) \
        if epochs is not None and ctx.main else None
    loop.run(trainer, items, settings, out, "SoVITS", progress=progress, ctx=ctx, log=history,
             on_epoch_saved=(lambda step, epoch: exporter(step, epoch, trainer.generator)) if exporter else None)
    return trainer.generator.eval()
