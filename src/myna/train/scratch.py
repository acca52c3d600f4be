"""`myna train --preset NAME` (no --base): train both models from random weights (the default voice).

Stages, each resumable like `myna train`'s (same layout under DATA_DIR/trained/NAME/work):

1. features without semantic tokens: phonemes, 32 kHz waveforms, the preset's content features
   (Whisper tiny.en) and speaker embeddings (Resemblyzer), cached;
2. SoVITS from the preset (the codebook learned too: k-means start, EMA, see myna.train.codebook),
   exported to NAME_s2.pth with the encoders recorded in its config ("myna" key);
3. the same cache again with that SoVITS: only the semantic tokens are computed;
4. the GPT from the preset on those tokens, exported to NAME_s1.ckpt; voice.json as `myna train`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from myna.engine.voice_file import VOICE_FILE, VoiceFile, trained_voice_dir, write_voice_file
from myna.train import loop
from myna.train.dataset import FeatureCache
from myna.train.presets import Preset, get_preset
from myna.train.stages import TrainRequest, default_reference, gpt_items, sovits_items, train_gpt


def preset_settings(preset: Preset, device: str, seed: int, sovits: dict[str, Any], gpt: dict[str, Any]) -> Preset:
    """The preset with the device, seed and any explicitly given settings (e.g. epochs) applied."""
    common = {"device": device, "seed": seed}
    return replace(preset, sovits_train=replace(preset.sovits_train, **common, **sovits),
                   gpt_train=replace(preset.gpt_train, **common, **gpt))


def train_from_scratch(request: TrainRequest, progress: TextIO | None = None) -> Path:
    """Run every stage for a `TrainRequest` whose `preset` is set; returns the voice.json path."""
    from myna.train.export import export_gpt, export_sovits
    from myna.train.features import FeatureModels, extract_features
    from myna.train.prepare import PrepareOptions, prepare_dataset
    from myna.train.sovits_trainer import SoVITSTrainer

    preset = request.preset if isinstance(request.preset, Preset) else get_preset(request.preset)
    home = trained_voice_dir(request.data_dir, request.name)
    work = home / "work"
    ctx = loop.setup_distributed(preset.sovits_train.device)
    models = FeatureModels(None, None, device=preset.sovits_train.device, content=preset.content,
                           speaker=preset.speaker, version=preset.sovits.version)
    list_path = request.data
    if ctx.main:  # under torchrun the first process prepares the data; the others wait for it
        if request.data.suffix != ".list":
            options = PrepareOptions(speaker=request.name, lang=request.lang, device=preset.sovits_train.device,
                                     progress=progress is not None)
            list_path = prepare_dataset([request.data], work / "prepared", options).list_path
        extract_features(list_path, work / "features", models, progress=progress is not None)
    loop.barrier(ctx)

    out = work / "sovits"
    out.mkdir(parents=True, exist_ok=True)
    preset.sovits_train.save(out / "train_config.json")
    (out / "model_config.json").write_text(json.dumps(preset.sovits.to_dict(), indent=2) + "\n")
    items = sovits_items(FeatureCache.open(work / "features"), preset.sovits.sampling_rate)
    trainer = SoVITSTrainer(preset.sovits, preset.sovits_train, ctx=ctx, sample_item=items[0] if len(items) else None)
    loop.run(trainer, items, preset.sovits_train, out, "SoVITS", progress=progress, ctx=ctx)
    sovits = trainer.generator.eval()
    record = {"myna": preset.encoder_record()}
    sovits_path = home / f"{request.name}_s2.pth"
    if ctx.main:
        tag = f"{request.name}: {preset.name} preset from scratch, {preset.sovits_train.epochs} SoVITS epochs"
        export_sovits(sovits, sovits_path, tag, record, key=request.model_key)
        extract_features(list_path, work / "features", replace(models, sovits=sovits_path),
                         progress=progress is not None)
    loop.barrier(ctx)

    cache = FeatureCache.open(work / "features")
    gpt = train_gpt(None, preset.gpt, gpt_items(cache, preset.gpt.max_sec), preset.gpt_train, work / "gpt",
                     progress, sovits)
    if not ctx.main:
        loop.finish_distributed(ctx)
        return home / VOICE_FILE
    tag = f"{request.name}: {preset.name} preset from scratch, {preset.gpt_train.epochs} GPT epochs"
    export_gpt(gpt, home / f"{request.name}_s1.ckpt", tag, record, preset.gpt_train.to_dict(), key=request.model_key)
    voice = VoiceFile(name=request.name, version=preset.sovits.version, gpt=home / f"{request.name}_s1.ckpt",
                      sovits=sovits_path, encoders=preset.encoder_record(), **default_reference(cache))
    manifest = write_voice_file(home, voice)
    loop.finish_distributed(ctx)
    return manifest
