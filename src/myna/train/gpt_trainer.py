"""Stage 1 trainer: the text-to-semantic GPT, teacher-forced next-token cross-entropy.

The loss is upstream's plain (non-DPO) objective: cross-entropy of every semantic token and of the
EOS after it, given the phonemes, their BERT features and the earlier tokens (upstream v2 trains
this `forward_old` loss unless `if_dpo` is set; the WebUI leaves DPO off by default). Upstream sums
over tokens; the mean is used here (Adam is indifferent to the scale, and the shown value reads as a
per-token loss). Items are dicts of unpadded tensors: "phones" (N,), "bert" (1024, N) and
"semantic" (T,).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from myna.models.t2s import BERT_DIM, T2SConfig, T2SModel
from myna.train.config import GPTTrainConfig
from myna.train.loop import Distributed, TrainingError, begin_update, wrap_ddp

SampleRenderer = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], tuple[np.ndarray, int]]


def collate(items: list[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Right-pad phonemes (0), BERT features (0) and semantic tokens (0) into one batch with lengths."""
    phones = max(item["phones"].shape[0] for item in items)
    tokens = max(item["semantic"].shape[0] for item in items)
    for item in items:
        if item["bert"].shape != (BERT_DIM, item["phones"].shape[0]):
            raise TrainingError(f"GPT item: BERT features {tuple(item['bert'].shape)} do not match "
                                f"{item['phones'].shape[0]} phonemes (expected ({BERT_DIM}, N))")
    return {
        "phones": torch.stack([F.pad(i["phones"].long(), (0, phones - i["phones"].shape[0])) for i in items]),
        "phone_lengths": torch.tensor([i["phones"].shape[0] for i in items]),
        "bert": torch.stack([F.pad(i["bert"].float(), (0, phones - i["bert"].shape[1])) for i in items]),
        "semantic": torch.stack([F.pad(i["semantic"].long(), (0, tokens - i["semantic"].shape[0])) for i in items]),
        "semantic_lengths": torch.tensor([i["semantic"].shape[0] for i in items]),
    }


def _loss_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of (B, T, vocab) logits over every target that is not -100 (padding)."""
    return F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="sum")


def _hits(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """How many targets (not -100) are the logits' top-1 token."""
    valid = targets != -100
    return float((logits.argmax(-1)[valid] == targets[valid]).sum())


@torch.no_grad()
def teacher_forced_scores(model: T2SModel, items: list[Mapping[str, torch.Tensor]], batch_size: int = 8
                          ) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) of `model` (eval mode, dropout off) on `items`, per target token
    (every semantic token and the EOS after it), as the training loss counts them: on items it never trained
    on, the figure that shows when more steps stop helping (the training loss keeps falling)."""
    if not items:
        raise TrainingError("no items to score the GPT on")
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0.0, 0
    try:
        for start in range(0, len(items), batch_size):
            batch = collate(items[start : start + batch_size])
            logits, targets = model.forward_train(batch["phones"], batch["phone_lengths"], batch["bert"].float(),
                                                  batch["semantic"], batch["semantic_lengths"])
            total += float(_loss_sum(logits, targets))
            correct += _hits(logits, targets)
            count += int((targets != -100).sum())
    finally:
        model.train(was_training)
    return total / count, correct / count


class _TrainForward(nn.Module):
    """Routes forward() to T2SModel.forward_train, so DistributedDataParallel can wrap it."""

    def __init__(self, model: T2SModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> Any:
        """T2SModel.forward_train."""
        return self.model.forward_train(*args)


class GPTTrainer:
    """Holds the GPT and its optimizer; `loop.run` drives it."""

    def __init__(self, model_config: T2SConfig, settings: GPTTrainConfig,
                 state: Mapping[str, torch.Tensor] | None = None, ctx: Distributed | None = None,
                 sample_item: Mapping[str, torch.Tensor] | None = None,
                 renderer: SampleRenderer | None = None) -> None:
        self.config, self.settings, self.ctx = model_config, settings, ctx or Distributed()
        self.device = torch.device(settings.device)
        torch.manual_seed(settings.seed)
        self.model = T2SModel(model_config)
        if state is not None:
            self.model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        self.model.set_train_dropout(settings.dropout).to(self.device).train()
        self.train_model = wrap_ddp(_TrainForward(self.model), self.ctx, settings.device)
        self.optim = torch.optim.AdamW(self.model.parameters(), settings.learning_rate, betas=settings.betas,
                                       weight_decay=settings.weight_decay, foreach=True)
        self.sample_item, self.renderer = sample_item, renderer
        self.warm_start = 0  # the step training last started at without optimizer moments

    def _chunks(self, items: list[dict[str, torch.Tensor]]) -> list[list[dict[str, torch.Tensor]]]:
        """`items` in consecutive groups of at most `attention_budget` items x longest sequence squared."""
        budget = self.settings.attention_budget
        chunks: list[list[dict[str, torch.Tensor]]] = [[]]
        longest = 0
        for item in items:
            length = item["phones"].shape[0] + item["semantic"].shape[0] + 1
            grown = max(longest, length)
            if budget and chunks[-1] and (len(chunks[-1]) + 1) * grown**2 > budget:
                chunks.append([])
                grown = length
            chunks[-1].append(item)
            longest = grown
        return chunks

    def train_step(self, items: list[dict[str, torch.Tensor]], step: int, epoch: int) -> dict[str, float]:
        """One optimizer step on `items` (a batch of long sequences is run in parts, gradients summed)."""
        if self.settings.warmup_steps:
            for group in self.optim.param_groups:
                ramp = (step - self.warm_start + 1) / self.settings.warmup_steps
                group["lr"] = self.settings.learning_rate * min(1.0, ramp)
        self.optim.zero_grad(set_to_none=True)
        # the loss is the mean over every target of the whole batch (tokens + EOS per item), however split
        targets_total = sum(item["semantic"].shape[0] + 1 for item in items)
        chunks = self._chunks(items)
        loss_value, correct = 0.0, 0.0
        for number, chunk in enumerate(chunks):
            batch = {k: v.to(self.device) for k, v in collate(chunk).items()}
            last = number == len(chunks) - 1
            sync = contextlib.nullcontext() if last or self.ctx.world == 1 else self.train_model.no_sync()
            with sync:
                with self.settings.autocast():
                    logits, targets = self.train_model(batch["phones"], batch["phone_lengths"], batch["bert"],
                                                       batch["semantic"], batch["semantic_lengths"])
                loss = _loss_sum(logits, targets) / targets_total
                if not torch.isfinite(loss):
                    raise TrainingError(f"GPT loss became {loss.item()} at step {step}; lower the learning rate")
                loss.backward()
            loss_value += loss.item()
            with torch.no_grad():
                correct += _hits(logits, targets)
            del logits, loss
        if self.settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        begin_update()
        self.optim.step()
        return {"loss": loss_value, "acc": correct / targets_total}

    def state(self) -> dict[str, Any]:
        """Weights and optimizer moments."""
        return {"model": self.model.state_dict(), "optim": self.optim.state_dict(), "warm_start": self.warm_start}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a `state()`."""
        self.model.load_state_dict(state["model"])
        self.optim.load_state_dict(state["optim"])
        self.warm_start = int(state.get("warm_start", 0))

    def on_checkpoint(self, step: int, out_dir: Path) -> None:
        """Sample the first item's text (ref-free, seed 0): tokens to samples/step_N.json, audio if a renderer is set."""
        if self.sample_item is None:
            return
        from myna.engine.t2s_decode import SamplingParams, generate_semantic

        item = self.sample_item
        self.model.eval()
        try:
            tokens = generate_semantic(
                self.model, item["phones"].long().unsqueeze(0).to(self.device),
                item["bert"].float().unsqueeze(0).to(self.device), None, SamplingParams(top_k=15),
                torch.Generator(device=self.device).manual_seed(0), max_steps=2 * item["semantic"].shape[0] + 10)
        finally:
            for layer in self.model.h.layers:
                layer.self_attn.kv_cache = None
            self.model.train()
        folder = out_dir / "samples"
        folder.mkdir(exist_ok=True)
        (folder / f"step_{step:08d}.json").write_text(json.dumps({"tokens": tokens.tolist()}) + "\n")
        if self.renderer is not None and tokens.numel():
            from myna.audio.io import write_wav

            audio, rate = self.renderer(tokens.cpu(), item)
            write_wav(folder / f"step_{step:08d}.wav", audio, rate)
