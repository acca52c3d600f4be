"""Ctrl-C during training: the step in progress finishes and is saved; time-based checkpoints; loss history."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest
import torch
from test_trainers import TINY_GPT, _same_weights, gpt_items

from myna.train import loop
from myna.train.config import GPTTrainConfig
from myna.train.gpt_trainer import GPTTrainer
from myna.train.history import HISTORY_FILE, PLOT_FILE, STATUS_FILE, RunHistory, describe_status, read_history


class CtrlCMidStep(GPTTrainer):
    """A GPT trainer whose step `at` receives SIGINT half-way (after the forward pass, before the update)."""

    def __init__(self, *args, at: int, twice: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.twice = at, twice

    def train_step(self, items, step, epoch):
        if step == self.at:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C while the step computes
            if self.twice:
                os.kill(os.getpid(), signal.SIGINT)
        return super().train_step(items, step, epoch)


SETTINGS = GPTTrainConfig(epochs=3, batch_size=2, learning_rate=1e-3, save_every_epochs=3)  # 6 steps, 1 save


def test_ctrl_c_mid_step_finishes_the_step_saves_it_and_resumes_exactly(tmp_path):
    full = GPTTrainer(TINY_GPT, SETTINGS)
    loop.run(full, gpt_items(), SETTINGS, tmp_path / "full", "gpt", progress=None)

    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        loop.run(CtrlCMidStep(TINY_GPT, SETTINGS, at=2), gpt_items(), SETTINGS, tmp_path / "cut", "gpt", progress=out)
    assert [p.name for p in loop.checkpoint_paths(tmp_path / "cut")] == ["state_00000003.pt"]  # step 3 finished
    assert "saved at step 3" in out.getvalue()

    resumed_out = io.StringIO()
    resumed = GPTTrainer(TINY_GPT, SETTINGS)
    assert loop.run(resumed, gpt_items(), SETTINGS, tmp_path / "cut", "gpt", progress=resumed_out) == 6
    assert "resuming from step 3" in resumed_out.getvalue()
    _same_weights(full.model.state_dict(), resumed.model.state_dict())


def test_second_ctrl_c_abandons_the_step_and_keeps_the_state_before_it(tmp_path):
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        loop.run(CtrlCMidStep(TINY_GPT, SETTINGS, at=2, twice=True), gpt_items(), SETTINGS, tmp_path, "gpt",
                 progress=out)
    # the step was abandoned before it changed any weight: the state after step 2 is saved
    assert [p.name for p in loop.checkpoint_paths(tmp_path)] == ["state_00000002.pt"]
    assert "saved at step 2" in out.getvalue()


def test_checkpoints_by_time_between_epoch_saves(tmp_path):
    settings = GPTTrainConfig(epochs=2, batch_size=1, learning_rate=1e-3, save_every_epochs=2,
                              save_every_minutes=1e-9, keep_checkpoints=10)
    loop.run(GPTTrainer(TINY_GPT, settings), gpt_items(), settings, tmp_path, "gpt", progress=None)
    steps = [int(p.stem.removeprefix("state_")) for p in loop.checkpoint_paths(tmp_path)]
    assert steps == [1, 2, 3, 4, 5, 6]  # every step here, though the epoch cadence saves only at step 6


def test_loss_history_status_and_curve_follow_the_run(tmp_path):
    history = RunHistory(tmp_path / "work", "anna")
    settings = GPTTrainConfig(epochs=2, batch_size=2, learning_rate=1e-3, save_every_epochs=1)
    with pytest.raises(KeyboardInterrupt):
        loop.run(CtrlCMidStep(TINY_GPT, settings, at=2), gpt_items(), settings, tmp_path / "gpt", "GPT",
                 progress=None, log=history)
    history.phase("interrupted")
    records = read_history(tmp_path / "work")
    assert [r["step"] for r in records] == [1, 2, 3] and all("loss" in r["losses"] for r in records)
    status = json.loads((tmp_path / "work" / STATUS_FILE).read_text())
    assert status["state"] == "interrupted" and status["stages"]["GPT"]["step"] == 3
    assert [s[0] for s in status["stages"]["GPT"]["saved"]] == [2, 3]  # epoch 1's end, then the interrupt

    # a resumed run drops nothing it keeps and appends the rest; the PNG is a real image
    history = RunHistory(tmp_path / "work", "anna")
    loop.run(GPTTrainer(TINY_GPT, settings), gpt_items(), settings, tmp_path / "gpt", "GPT", progress=None,
             log=history)
    history.phase("done")
    assert [r["step"] for r in read_history(tmp_path / "work")] == [1, 2, 3, 4]
    png = (tmp_path / "work" / PLOT_FILE).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    lines = describe_status(tmp_path / "work")
    assert lines[0] == "anna: done" and any(line.startswith("GPT: step 4/4, epoch 2/2") for line in lines)
    assert (tmp_path / "work" / HISTORY_FILE).is_file()
    assert torch.isfinite(torch.tensor([r["losses"]["loss"] for r in read_history(tmp_path / "work")])).all()
