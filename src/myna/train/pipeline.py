"""`myna train`: recordings or a `.list` -> prepare -> features -> SoVITS -> GPT -> export -> a named voice.

Everything lives under DATA_DIR/trained/NAME (DATA_DIR: `--data-dir`, else MYNA_DATA_DIR, else
~/.local/share/myna):

    work/prepared/      sliced + transcribed utterances and dataset.list (skipped for a .list input)
    work/features/      the feature cache (myna.train.dataset)
    work/sovits/, work/gpt/   training states (checkpoints/), samples/, the settings used (*.json)
    NAME_s2.pth, NAME_s2.safetensors, NAME_s1.ckpt, NAME_s1.safetensors   exported, upstream formats
    voice.json          {"gpt", "sovits", "hubert", "bert", "sv", "version", "ref", "ref_text", "ref_lang"}

Running the same command again resumes: prepared data and cached features are reused, and each
stage continues from its last checkpoint (a finished stage is not retrained). `myna say --voice
NAME` reads voice.json for the model files and a default reference clip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from myna import checkpoints
from myna.audio.io import resample_soxr
from myna.errors import InputError
from myna.models.sovits import SoVITSConfig
from myna.models.t2s import T2SConfig
from myna.train import loop
from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
from myna.train.dataset import WAV_RATE, FeatureCache

VOICE_FILE = "voice.json"
MIN_SOVITS_SECONDS, MAX_SOVITS_SECONDS = 0.6, 54.0  # upstream's s2 dataset filter
TOKENS_PER_SECOND = 50


@dataclass
class TrainRequest:
    """What `myna train` was asked to do."""

    data: Path
    base: Path | None  # None: train from scratch with `preset` (myna.train.scratch)
    name: str
    data_dir: Path
    version: str = "v2"
    sovits: SoVITSTrainConfig = field(default_factory=SoVITSTrainConfig)
    gpt: GPTTrainConfig = field(default_factory=GPTTrainConfig)
    lang: str | None = None  # ASR language hint for raw recordings
    preset: Any = None  # a myna.train.presets name or Preset, for training from scratch


class _Items(Sequence):
    """Lazy training items of a feature cache, in the dict layout one trainer reads."""

    def __init__(self, utterances: list, kind: str, rate: int = WAV_RATE) -> None:
        self.utterances, self.kind, self.rate = utterances, kind, rate

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        utt = self.utterances[index]
        if self.kind == "gpt":
            return {"phones": utt.phone_ids(), "bert": utt.bert(), "semantic": utt.semantic()}
        wav = utt.wav()
        if self.rate != WAV_RATE:  # a model at another rate (the cache keeps upstream's 32 kHz)
            wav = resample_soxr(wav, WAV_RATE, self.rate)
        item = {"ssl": utt.ssl()[0], "wav": torch.from_numpy(wav), "phones": utt.phone_ids()}
        sv = utt.sv_emb()
        if sv is not None:
            item["sv_emb"] = sv[0]
        return item


def sovits_items(cache: FeatureCache, rate: int = WAV_RATE) -> _Items:
    """Items for the SoVITS trainer (utterances between 0.6 s and 54 s, as upstream keeps), audio at `rate`."""
    kept = [u for u in cache.items if MIN_SOVITS_SECONDS < u.record["seconds"] < MAX_SOVITS_SECONDS]
    return _Items(kept, "sovits", rate)


def gpt_items(cache: FeatureCache, max_sec: int) -> _Items:
    """Items for the GPT trainer (at most max_sec seconds of tokens, as upstream keeps)."""
    return _Items([u for u in cache.items if 0 < u.record["tokens"] <= max_sec * TOKENS_PER_SECOND], "gpt")


def voice_dir(data_dir: Path, name: str) -> Path:
    """Where a trained voice lives."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"voice name {name!r} must be a plain file name (no slashes, not starting with '.')")
    return Path(data_dir) / "trained" / name


def load_voice(data_dir: Path, name: str) -> dict[str, Any]:
    """The voice.json of a trained voice, with paths as Path objects."""
    path = voice_dir(data_dir, name) / VOICE_FILE
    if not path.is_file():
        raise InputError(f"no trained voice {name!r} (looked for {path}); train one with `myna train --name {name}`")
    record = json.loads(path.read_text(encoding="utf-8"))
    for key in ("gpt", "sovits", "hubert", "bert", "sv", "ref"):
        if record.get(key):
            record[key] = Path(record[key])
    return record


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
    home = voice_dir(request.data_dir, request.name)
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
    gpt = _train_gpt(base_t, gpt_config, gpt_items(cache, gpt_config.max_sec), request.gpt, work / "gpt", progress,
                     sovits)

    from myna.train.export import export_gpt, export_sovits

    if not ctx.main:
        loop.finish_distributed(ctx)
        return home / VOICE_FILE
    tag = f"{request.name}: {request.sovits.epochs} SoVITS / {request.gpt.epochs} GPT epochs"
    export_sovits(sovits, home / f"{request.name}_s2.pth", tag, base_g.config)
    export_gpt(gpt, home / f"{request.name}_s1.ckpt", tag, base_t.config, request.gpt.to_dict())
    ref = _reference(cache)
    record = {"name": request.name, "version": base_g.version, "gpt": str(home / f"{request.name}_s1.ckpt"),
              "sovits": str(home / f"{request.name}_s2.pth"), "hubert": str(paths.hubert),
              "bert": str(paths.bert) if paths.bert else None, "sv": str(paths.sv) if paths.sv else None, **ref}
    (home / VOICE_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    loop.finish_distributed(ctx)
    return home / VOICE_FILE


def pretrained_discriminator(sovits_path: Path) -> dict | None:
    """Upstream ships each pretrained generator `s2G*.pth` with its discriminator `s2D*.pth` beside it;
    fine-tuning starts from that discriminator when it is there (as upstream's s2_train does)."""
    candidate = sovits_path.with_name(sovits_path.name.replace("s2G", "s2D", 1))
    if candidate == sovits_path or not candidate.is_file():
        return None
    return checkpoints.read_discriminator(candidate)


def _train_sovits(base: checkpoints.SoVITSCheckpoint, base_path: Path, items: _Items, settings: SoVITSTrainConfig,
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


def _train_gpt(base: checkpoints.GPTCheckpoint | None, config: T2SConfig, items: _Items, settings: GPTTrainConfig,
               out: Path, progress: TextIO | None, sovits):
    from myna.audio.spectrogram import linear_spectrogram
    from myna.train.gpt_trainer import GPTTrainer

    ctx = loop.setup_distributed(settings.device)
    out.mkdir(parents=True, exist_ok=True)
    settings.save(out / "train_config.json")
    (out / "model_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    sample = items[0] if len(items) else None
    reference = _Items(items.utterances[:1], "sovits", sovits.config.sampling_rate)[0] if len(items) else None

    def render(tokens: torch.Tensor, item: dict) -> tuple[Any, int]:
        c = sovits.config
        spec = linear_spectrogram(reference["wav"].float(), c.filter_length, c.hop_length, c.win_length)
        sv = reference["sv_emb"].reshape(1, -1) if "sv_emb" in reference else None
        device = next(sovits.parameters()).device
        wave = sovits.decode(tokens.to(device), item["phones"].long().to(device), spec.to(device), sv_emb=sv,
                             generator=torch.Generator(device=device).manual_seed(0))
        return wave[0, 0].cpu().numpy(), c.sampling_rate

    trainer = GPTTrainer(config, settings, state=base.state_dict if base is not None else None, ctx=ctx, sample_item=sample,
                         renderer=render if sample is not None else None)
    loop.run(trainer, items, settings, out, "GPT", progress=progress, ctx=ctx)
    return trainer.model.eval()


def _reference(cache: FeatureCache) -> dict[str, Any]:
    """A default reference for `say --voice`: the utterance closest to 6 s among those of 3-10 s."""
    usable = [u for u in cache.items if 3.0 <= u.record["seconds"] <= 10.0] or list(cache.items)
    best = min(usable, key=lambda u: abs(u.record["seconds"] - 6.0))
    return {"ref": str(best.record["audio"]), "ref_text": best.record["text"], "ref_lang": best.record["lang"]}
