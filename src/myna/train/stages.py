"""Pieces both ways of training a voice share (`myna.train.pipeline` from a base model,
`myna.train.scratch` from a preset): the trainers' item views of a feature cache, the GPT stage, and
the default reference clip recorded in voice.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from myna import checkpoints
from myna.audio.io import resample_soxr
from myna.models.t2s import T2SConfig
from myna.train import loop
from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
from myna.train.dataset import WAV_RATE, FeatureCache

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
    model_key: bytes | None = None  # write the exported model files encrypted with this key (myna.weights.sealed)


class TrainItems(Sequence):
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


def sovits_items(cache: FeatureCache, rate: int = WAV_RATE) -> TrainItems:
    """Items for the SoVITS trainer (utterances between 0.6 s and 54 s, as upstream keeps), audio at `rate`."""
    kept = [u for u in cache.items if MIN_SOVITS_SECONDS < u.record["seconds"] < MAX_SOVITS_SECONDS]
    return TrainItems(kept, "sovits", rate)


def gpt_items(cache: FeatureCache, max_sec: int) -> TrainItems:
    """Items for the GPT trainer (at most max_sec seconds of tokens, as upstream keeps)."""
    return TrainItems([u for u in cache.items if 0 < u.record["tokens"] <= max_sec * TOKENS_PER_SECOND], "gpt")


def train_gpt(base: checkpoints.GPTCheckpoint | None, config: T2SConfig, items: TrainItems, settings: GPTTrainConfig,
               out: Path, progress: TextIO | None, sovits):
    from myna.audio.spectrogram import linear_spectrogram
    from myna.train.gpt_trainer import GPTTrainer

    ctx = loop.setup_distributed(settings.device)
    out.mkdir(parents=True, exist_ok=True)
    settings.save(out / "train_config.json")
    (out / "model_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    sample = items[0] if len(items) else None
    reference = TrainItems(items.utterances[:1], "sovits", sovits.config.sampling_rate)[0] if len(items) else None

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


def default_reference(cache: FeatureCache) -> dict[str, Any]:
    """A default reference for `say --voice` (voice.json's ref, ref_text, ref_lang): the utterance
    closest to 6 s among those of 3-10 s."""
    usable = [u for u in cache.items if 3.0 <= u.record["seconds"] <= 10.0] or list(cache.items)
    best = min(usable, key=lambda u: abs(u.record["seconds"] - 6.0))
    return {"ref": Path(best.record["audio"]), "ref_text": best.record["text"], "ref_lang": best.record["lang"]}
