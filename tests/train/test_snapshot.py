"""Weights-only snapshots: written small (fp16), read back, and resumed from at their step with a fresh optimizer."""

from __future__ import annotations

import json

import pytest
import torch

from myna.errors import InputError
from myna.models.t2s import T2SConfig
from myna.train import loop
from myna.train.config import GPTTrainConfig
from myna.train.gpt_trainer import GPTTrainer
from myna.train.snapshot import Snapshot, seed_training_state


def _tiny_gpt() -> T2SConfig:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("t2s_fixtures", Path(__file__).parents[1] / "models" / "t2s_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return T2SConfig.from_dict({"model": module.TINY_MODEL})


TINY_GPT = _tiny_gpt()


def gpt_items() -> list[dict]:
    gen = torch.Generator().manual_seed(6)
    return [{"phones": torch.randint(1, 700, (5 + i,), generator=gen), "bert": torch.zeros(1024, 5 + i),
             "semantic": (torch.arange(8 + 2 * i) * 7 + i) % 1024} for i in range(4)]


def test_snapshot_round_trips_weights_in_int8_and_fp16(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    big, tokenizer = torch.randn(64, 96), torch.randn(64, 96)
    snapshot = Snapshot.open(tmp_path)
    assert snapshot.stages == {} and snapshot.step("gpt") == 0
    snapshot.put("gpt", 120, {**model.state_dict(), "count": torch.tensor([3]), "big": big, "tok.w": tokenizer},
                 {"model": {"width": 4}}, exact=("tok.",))
    snapshot.curve = [{"gpt_step": 120, "wer": 0.5}]
    snapshot.save()
    again = Snapshot.open(tmp_path)
    assert again.step("gpt") == 120 and again.curve == [{"gpt_step": 120, "wer": 0.5}]
    weights = again.weights("gpt")
    assert weights["weight"].dtype == torch.float32 and weights["count"].dtype == torch.int64
    torch.testing.assert_close(weights["weight"], model.weight.detach().half().float(), atol=0, rtol=0)
    torch.testing.assert_close(weights["tok.w"], tokenizer.half().float(), atol=0, rtol=0)  # exact: fp16
    error = (weights["big"] - big).abs().max(1).values / big.abs().max(1).values
    assert float(error.max()) <= 0.5 / 127 + 1e-3  # int8: half a step of each row's range
    assert again.size_bytes() < 64 * 96 * (1 + 2) + 4000  # int8 codes for "big", fp16 for the tokenizer
    with pytest.raises(InputError, match="no sovits"):
        again.weights("sovits")
    # the exact tensors have a file of their own, with no step in it: a later snapshot writes the same bytes
    exact_file = tmp_path / again.stages["gpt"]["exact_file"]
    assert set(again.files("gpt")) == {"gpt.safetensors", exact_file.name}
    first, stage_file = exact_file.read_bytes(), (tmp_path / "gpt.safetensors").read_bytes()
    assert again.put("gpt", 240, {"big": big * 2, "tok.w": tokenizer}, {}, exact=("tok.",)) == []
    assert exact_file.read_bytes() == first and (tmp_path / "gpt.safetensors").read_bytes() != stage_file
    # a stage stored without exact prefixes names one file, and the stale exact file is handed back to delete
    assert again.put("gpt", 360, {"big": big}, {}) == [exact_file]
    assert again.files("gpt") == ["gpt.safetensors"] and set(again.weights("gpt")) == {"big"}
    with pytest.raises(InputError, match="unknown snapshot stage"):
        again.put("vocoder", 1, {}, {})


def test_a_snapshot_of_another_format_is_refused(tmp_path):
    (tmp_path / "snapshot.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(InputError, match="format 99"):
        Snapshot.open(tmp_path)


def test_training_resumes_at_the_snapshot_step_with_a_fresh_warm_up(tmp_path):
    settings = GPTTrainConfig(epochs=4, batch_size=2, learning_rate=1e-3, save_every_epochs=1, warmup_steps=3)
    first = GPTTrainer(TINY_GPT, settings)
    loop.run(first, gpt_items(), settings, tmp_path / "first", "gpt", progress=None, stop=lambda s: s >= 4)
    snapshot = Snapshot.open(tmp_path / "snap")
    snapshot.put("gpt", 4, first.model.state_dict(), TINY_GPT.to_dict())
    snapshot.save()

    resumed = GPTTrainer(TINY_GPT, settings)
    resumed.model.load_state_dict(Snapshot.open(tmp_path / "snap").weights("gpt"))
    seed_training_state(resumed, tmp_path / "second", 4, settings)
    rates = []
    resumed_steps = loop.run(resumed, gpt_items(), settings, tmp_path / "second", "gpt", progress=None,
                             on_step=lambda s: rates.append(resumed.optim.param_groups[0]["lr"]))
    assert resumed_steps == 8  # 2 steps an epoch, 4 epochs: it went on from step 4
    assert rates[0] == pytest.approx(1e-3 / 3) and rates[-1] == pytest.approx(1e-3)
    assert resumed.warm_start == 4


def test_a_snapshot_with_its_exact_tensors_inside_the_stage_file_still_reads(tmp_path):
    """Snapshots written before the exact tensors had a file of their own keep them in the stage's file."""
    from safetensors.torch import load_file, save_file

    tokenizer = torch.randn(64, 96)
    save_file({"tok.w": tokenizer.half(), "bias": torch.ones(3).half()}, str(tmp_path / "sovits.safetensors"))
    (tmp_path / "snapshot.json").write_text(json.dumps(
        {"format": 1, "stages": {"sovits": {"file": "sovits.safetensors", "step": 7, "config": {}}}}))
    snapshot = Snapshot.open(tmp_path)
    weights = snapshot.weights("sovits")
    torch.testing.assert_close(weights["tok.w"], tokenizer.half().float(), atol=0, rtol=0)
    assert snapshot.files("sovits") == ["sovits.safetensors"]
    assert snapshot.put("sovits", 8, weights, {}, exact=("tok.",)) == []  # rewritten in the new layout
    snapshot.save()
    again = Snapshot.open(tmp_path)
    assert again.files("sovits") == ["sovits.safetensors", "sovits.exact.safetensors"]
    assert set(load_file(str(tmp_path / "sovits.safetensors"))) == {"bias"}  # the tokenizer is stored once
    torch.testing.assert_close(again.weights("sovits")["tok.w"], tokenizer.half().float(), atol=0, rtol=0)
