"""Pieces both ways of training a voice share (`myna.train.pipeline` from a base model,
`myna.train.scratch` from a preset): the trainers' item views of a feature cache, the GPT stage, and
the default reference clip recorded in voice.json."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
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
    restart: bool = False  # discard an earlier run of this name and train anew
    continue_training: bool = False  # on other inputs/settings: start from the voice's exported weights
    keep_states: bool = False  # keep the resumable training states when the run finishes
    safetensors: bool = False  # also write .safetensors twins of the exports
    epoch_weights: bool = False  # export weights at every saved epoch (epochs/NAME_e{E}_s{S}.pth, NAME-e{E}.ckpt)
    ref_clip: str | None = None  # the default reference clip (a training clip's path or name); None: best measured
    asr_model: Path | None = None  # faster-whisper model for transcribing raw recordings
    model_key: bytes | None = None  # write the exported model files encrypted with this key (myna.weights.sealed)


class TrainItems(Sequence):
    """Lazy training items of a feature cache, in the dict layout one trainer reads."""

    def __init__(self, utterances: list, kind: str, rate: int = WAV_RATE,
                 phone_positions: Mapping[str, np.ndarray] | None = None) -> None:
        self.utterances, self.kind, self.rate = utterances, kind, rate
        self.phone_positions = phone_positions or {}  # SoVITS items' frame-level phoneme indices, by clip name

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
        if (positions := self.phone_positions.get(utt.name)) is not None:
            item["phone_positions"] = torch.from_numpy(np.asarray(positions, dtype=np.int64))
        return item


def sovits_items(cache: FeatureCache, rate: int = WAV_RATE,
                 phone_positions: Mapping[str, np.ndarray] | None = None) -> TrainItems:
    """Items for the SoVITS trainer (utterances between 0.6 s and 54 s, as upstream keeps), audio at `rate`;
    clips named in `phone_positions` carry them (SoVITSTrainConfig.mrte_align)."""
    kept = [u for u in cache.items if MIN_SOVITS_SECONDS < u.record["seconds"] < MAX_SOVITS_SECONDS]
    return TrainItems(kept, "sovits", rate, phone_positions)


def gpt_items(cache: FeatureCache, max_sec: int) -> TrainItems:
    """Items for the GPT trainer (at most max_sec seconds of tokens, as upstream keeps)."""
    return TrainItems([u for u in cache.items if 0 < u.record["tokens"] <= max_sec * TOKENS_PER_SECOND], "gpt")


class JoinedPairs(Sequence):
    """GPT items plus, after them, each item joined to another clip of its speaker (phonemes 1 + 2, BERT 1 + 2,
    tokens 1 + 2): the shape of a prompted request (the reference clip's phonemes and tokens, then the new
    text's), which single clips never show the GPT. Item i + len(items) is item i followed by its partner, drawn
    among the same speaker's other clips (items whose speaker has no other clip stay single). The draw is fixed by
    `seed` and the epoch: `set_epoch` (called by myna.train.loop.run as each epoch begins) draws afresh, so the
    GPT sees a new pairing each epoch, and a resumed run sees what the first one would."""

    def __init__(self, items: TrainItems, seed: int = 0) -> None:
        self.items = items
        self.seed = seed
        groups: dict[str, list[int]] = {}
        for index, utt in enumerate(items.utterances):
            groups.setdefault(utt.record.get("speaker", ""), []).append(index)
        # per item: its speaker's clips in one tensor, and its own place among them
        self._groups = {speaker: torch.tensor(members) for speaker, members in groups.items()}
        self._group_of = [utt.record.get("speaker", "") for utt in items.utterances]
        place = {index: n for members in groups.values() for n, index in enumerate(members)}
        self._place = torch.tensor([place[index] for index in range(len(items.utterances))])
        self._sizes = torch.tensor([len(groups[speaker]) for speaker in self._group_of])
        self.joined = [i for i, size in enumerate(self._sizes.tolist()) if size > 1]
        self.partners: list[int] = []
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw each clip's partner for `epoch` (the same draw for the same seed and epoch)."""
        draw = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        others = (self._sizes - 1).clamp(min=1)
        picks = (torch.rand(len(self._sizes), generator=draw) * others).long().clamp(max=others - 1)
        picks += (picks >= self._place).long()  # skip the clip itself
        self.partners = [int(self._groups[speaker][pick]) if size > 1 else -1
                         for speaker, pick, size in zip(self._group_of, picks.tolist(), self._sizes.tolist(), strict=True)]

    def __len__(self) -> int:
        return len(self.items) + len(self.joined)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index < len(self.items):
            return self.items[index]
        first = self.joined[index - len(self.items)]
        one, two = self.items[first], self.items[self.partners[first]]
        return {"phones": torch.cat([one["phones"], two["phones"]]), "bert": torch.cat([one["bert"], two["bert"]], 1),
                "semantic": torch.cat([one["semantic"], two["semantic"]])}


def train_gpt(base: checkpoints.GPTCheckpoint | None, config: T2SConfig, items: TrainItems, settings: GPTTrainConfig,
               out: Path, progress: TextIO | None, sovits, log: loop.RunLog | None = None,
               export_epochs: Callable[[int, int, Any], None] | None = None):
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
    loop.run(trainer, items, settings, out, "GPT", progress=progress, ctx=ctx, log=log,
             on_epoch_saved=(lambda step, epoch: export_epochs(step, epoch, trainer.model)) if export_epochs else None)
    return trainer.model.eval()


def default_reference(cache: FeatureCache) -> dict[str, Any]:
    """A reference for `say --voice` (voice.json's ref, ref_text, ref_lang) without copying it: the
    best-measured utterance (myna.train.refpick)."""
    from myna.train.refpick import rank_references

    best = rank_references(cache)[0]
    return {"ref": Path(best.audio), "ref_text": best.text, "ref_lang": best.lang}


def choose_reference(home: Path, cache: FeatureCache, list_path: Path | None, wanted: str | None,
                     progress: TextIO | None) -> dict[str, Any]:
    """Pick the default reference by measured quality (or `wanted`), copy it and 2 alternatives into
    HOME/refs/ so the voice folder holds its own clips, and say which; voice.json's ref fields."""
    from myna.train.refpick import keep_references, load_confidences, pick, rank_references

    ranked = rank_references(cache, load_confidences(list_path))
    chosen = pick(ranked, wanted)
    copies = keep_references(home, chosen, ranked)
    if progress is not None:
        how = "as asked" if wanted else "best measured quality"
        progress.write(f"reference clip ({how}): {chosen.describe()}\n")
        for choice in [c for c in ranked if c.audio != chosen.audio][:2]:
            progress.write(f"  alternative kept in {copies[0].parent}: {choice.describe()}\n")
    return {"ref": copies[0], "ref_text": chosen.text, "ref_lang": chosen.lang}


def base_warnings(sovits_config: dict[str, Any], gpt: T2SConfig, cache: FeatureCache) -> list[str]:
    """Odd values in the base models' configs that this run inherits, in words (empty if none)."""
    warnings = []
    if not 10 <= gpt.max_sec <= 120:
        warnings.append(f"the base GPT's max_sec is {gpt.max_sec} (upstream's bases use 54): generation stops after "
                        f"{gpt.max_sec * TOKENS_PER_SECOND} tokens and longer utterances are left out of training")
    longer = [u for u in cache.items if u.record["tokens"] > gpt.max_sec * TOKENS_PER_SECOND]
    if longer:
        warnings.append(f"{len(longer)} of {len(cache.items)} utterances are longer than the base GPT's max_sec "
                        f"({gpt.max_sec} s) and are left out of GPT training")
    data = sovits_config.get("data", {}) if isinstance(sovits_config, dict) else {}
    segment = (sovits_config.get("train") or {}).get("segment_size") if isinstance(sovits_config, dict) else None
    hop = data.get("hop_length")
    if segment and hop and segment % hop:
        warnings.append(f"the base SoVITS's segment_size {segment} is not a multiple of its hop_length {hop}")
    return warnings


def epoch_exporter(folder: Path, name: str, stage: str, base_config: dict[str, Any],
                   settings: Any, key: bytes | None = None) -> Callable[[int, int, Any], None]:
    """A callback (step, epoch, model) writing the stage's weights of a saved epoch under upstream's names:
    NAME_e{E}_s{S}.pth (SoVITS), NAME-e{E}.ckpt (GPT), sealed with `key` if given."""
    from myna.train.export import export_gpt, export_sovits

    def export(step: int, epoch: int, model: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        was_training = model.training
        model.eval()
        try:
            if stage == "sovits":
                export_sovits(model, folder / f"{name}_e{epoch}_s{step}.pth", f"{name}: SoVITS epoch {epoch}",
                              base_config, settings.to_dict(), key=key)
            else:
                export_gpt(model, folder / f"{name}-e{epoch}.ckpt", f"GPT-e{epoch}", base_config, settings.to_dict(),
                           key=key)
        finally:
            model.train(was_training)

    return export
