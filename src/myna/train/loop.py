"""The training loop both stages share: step order, seeding, resumable checkpoints, progress, DDP.

Every random draw of a step (data order, dropout, slices, noise) is a function of (seed, step) only,
so a run resumed from a checkpoint continues exactly as the uninterrupted run would have. Training
states are written to a temporary file and renamed, so Ctrl-C or a full disk never leaves half a
checkpoint. States are saved every `save_every_epochs` epochs, every `save_every_minutes` minutes and
at the end. Ctrl-C (SIGINT) lets the step in progress finish, saves it and stops ("saved at step N");
a second Ctrl-C abandons the step, and the state before it is saved if the step had not begun to
change any weight (trainers call `begin_update()` before their first optimizer update).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch
from torch import distributed as dist

from myna.atomic import atomic_output
from myna.errors import MynaError
from myna.train.config import _Settings

STATE_PREFIX = "state_"


class TrainingError(MynaError):
    """Training cannot continue (bad data, no space for checkpoints, mismatched resume state)."""


class Stage(Protocol):
    """What a trainer provides to `run`."""

    def train_step(self, items: list[dict[str, torch.Tensor]], step: int, epoch: int) -> dict[str, float]:
        """One optimizer step on these items; returns named losses."""

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (weights, optimizer moments)."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""

    def on_checkpoint(self, step: int, out_dir: Path) -> None:
        """Called after each checkpoint (sample audio)."""


class RunLog(Protocol):
    """What `run` reports to besides the progress line (myna.train.history writes loss history and status)."""

    def started(self, label: str, step: int, total: int, per_epoch: int) -> None:
        """The stage starts (or resumes) at `step` of `total`."""

    def stepped(self, label: str, step: int, epoch: int, losses: dict[str, float]) -> None:
        """`step` (count of finished steps) is done, in 0-based `epoch`, with these losses."""

    def saved(self, label: str, step: int, epoch: int, reason: str) -> None:
        """A training state was saved after `step` ("epoch", "steps", "time", "stop", "interrupt" or "end")."""


class _Interrupts:
    """SIGINT during `run`: the first asks the loop to stop after the step in progress (and save it); the
    second raises KeyboardInterrupt at once, abandoning the step."""

    def __init__(self, stream: TextIO | None) -> None:
        self.requested = False
        self.updating = False  # the step in progress has begun to change weights
        self.stream = stream
        self._previous: Any = None

    def __enter__(self) -> _Interrupts:
        global _ACTIVE
        _ACTIVE = self
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        _ACTIVE = None
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.stream is not None:
            self.stream.write("\ninterrupted: finishing this step, then saving (Ctrl-C again to abandon the step)\n")
            self.stream.flush()


_ACTIVE: _Interrupts | None = None  # the interrupt state of the `run` in progress in this process


def begin_update() -> None:
    """Trainers call this before the first update of a step's weights: an abandoned step is then not saved."""
    if _ACTIVE is not None:
        _ACTIVE.updating = True


@dataclass
class Distributed:
    """Rank and world size; world 1 when not launched by torchrun."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """True on the process that writes files and prints."""
        return self.rank == 0


def setup_distributed(device: str) -> Distributed:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA) when launched by torchrun."""
    if not dist.is_torchelastic_launched():
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def barrier(ctx: Distributed) -> None:
    """Wait for every process (no-op in a single-process run)."""
    if ctx.world > 1:
        dist.barrier()


def finish_distributed(ctx: Distributed) -> None:
    """Leave the process group together (a lone rank tearing gloo down can abort the other)."""
    if ctx.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_ddp(model: torch.nn.Module, ctx: Distributed, device: str) -> torch.nn.Module:
    """DistributedDataParallel around `model` in a multi-process run; the model itself otherwise."""
    if ctx.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index or 0] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def seed_step(seed: int, step: int) -> torch.Generator:
    """Seed the global RNG (dropout) for this step and return a generator for explicit draws."""
    value = (seed * 1_000_003 + step) % (2**63)
    torch.manual_seed(value)
    return torch.Generator().manual_seed(value + 1)


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int, ctx: Distributed) -> list[list[int]]:
    """This rank's batches of item indices for `epoch`: a seeded shuffle, split across ranks."""
    order = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    mine = order[ctx.rank :: ctx.world]
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save `obj` to `path` atomically and durably (a crash leaves the previous checkpoint)."""
    try:
        with atomic_output(path, durable=True) as partial:
            torch.save(obj, partial)
    except OSError as exc:
        raise TrainingError(f"could not write checkpoint {path}: {exc}; free some space and resume") from exc


def checkpoint_paths(out_dir: Path) -> list[Path]:
    """Training states in `out_dir`/checkpoints, oldest first."""
    folder = out_dir / "checkpoints"
    return sorted(folder.glob(f"{STATE_PREFIX}*.pt")) if folder.is_dir() else []


@dataclass
class Progress:
    """A one-line progress display: step, epoch, losses and ETA, redrawn at most twice a second."""

    total: int
    label: str
    stream: TextIO | None = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.perf_counter)
    first_step: int = 0
    _last: float = 0.0

    def update(self, step: int, epoch: int, losses: dict[str, float], force: bool = False) -> None:
        """Redraw after finishing `step` (1-based count of finished steps)."""
        now = time.perf_counter()
        if self.stream is None or (not force and now - self._last < 0.5 and step < self.total):
            return
        self._last = now
        done = step - self.first_step
        eta = (now - self.started) / max(done, 1) * (self.total - step)
        shown = " ".join(f"{k}={v:.3f}" for k, v in losses.items())
        width = 20
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {step}/{self.total} ep {epoch + 1} {shown} "
                          f"eta {int(eta) // 60}:{int(eta) % 60:02d}   ")
        if step >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def steps_per_epoch(n_items: int, batch_size: int, ctx: Distributed | None = None) -> int:
    """Optimizer steps in one epoch of `n_items` (each rank takes every world-th item)."""
    world = ctx.world if ctx else 1
    return math.ceil(math.ceil(n_items / world) / batch_size)


def run(stage: Stage, items: Sequence[dict[str, torch.Tensor]], settings: _Settings, out_dir: Path,
        label: str, resume: bool = True, progress: TextIO | None = sys.stderr,
        on_step: Callable[[int], None] | None = None, ctx: Distributed | None = None,
        log: RunLog | None = None, on_epoch_saved: Callable[[int, int], None] | None = None,
        start_state: Path | None = None, stop: Callable[[int], bool] | None = None) -> int:
    """Train `stage` on `items` per `settings`; checkpoints in `out_dir`. Returns the steps done.

    `start_state`: a saved training state to start from when `out_dir` has none (weights and optimizer
    moments of an earlier run; the step count starts at 0). `on_epoch_saved(step, epoch)` runs after
    each state saved at an epoch's end (epoch counted from 1). `stop(step)`, asked after each step,
    ends the run early (a time budget): the state is saved first. Items with a `set_epoch(epoch)` method are
    told each epoch as it begins (and on resuming), before its batches are read.
    """
    ctx = ctx or Distributed()
    if not items:
        raise TrainingError(f"{label}: no training items")
    per_epoch = steps_per_epoch(len(items), settings.batch_size, ctx)
    total = per_epoch * settings.epochs
    if settings.max_steps:
        total = min(total, settings.max_steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    step = 0
    existing = checkpoint_paths(out_dir)
    stream = progress if ctx.main else None
    if resume and existing:
        saved = torch.load(existing[-1], map_location="cpu", weights_only=True, mmap=True)
        step = int(saved["step"])
        if step > total:
            raise TrainingError(f"{label}: the saved state is at step {step}, past this run's {total} steps; "
                                "start over with --restart, or train at least as many epochs as before")
        stage.load_state(saved["stage"])
        del saved
        if stream is not None:
            stream.write(f"{label}: resuming from step {step}\n")
    elif start_state is not None:
        stage.load_state(torch.load(start_state, map_location="cpu", weights_only=True, mmap=True)["stage"])
    bar = Progress(total, label, stream, first_step=step)
    if log is not None and ctx.main:
        log.started(label, step, total, per_epoch)
    batches: list[list[int]] = []
    losses: dict[str, float] = {}
    last_save = time.monotonic()

    def save(at: int, reason: str, sample: bool = True) -> None:
        nonlocal last_save
        last_save = time.monotonic()
        if not ctx.main:
            return
        folder = out_dir / "checkpoints"
        folder.mkdir(exist_ok=True)
        atomic_save({"step": at, "stage": stage.state(), "settings": settings.to_dict()},
                    folder / f"{STATE_PREFIX}{at:08d}.pt")
        for old in checkpoint_paths(out_dir)[: -settings.keep_checkpoints]:
            old.unlink(missing_ok=True)
        if sample:
            stage.on_checkpoint(at, out_dir)
        if log is not None:
            log.saved(label, at, max(at - 1, 0) // per_epoch, reason)

    with _Interrupts(stream) as interrupts:
        try:
            while step < total and not interrupts.requested:
                epoch, index = divmod(step, per_epoch)
                if index == 0 or not batches:
                    batches = epoch_batches(len(items), settings.batch_size, settings.seed, epoch, ctx)
                    if hasattr(items, "set_epoch"):  # items drawn per epoch (myna.train.stages.JoinedPairs)
                        items.set_epoch(epoch)
                batch = [items[i] for i in batches[min(index, len(batches) - 1)]]
                seed_step(settings.seed, step)
                interrupts.updating = False
                losses = stage.train_step(batch, step, epoch)
                step += 1
                interrupts.updating = False
                bar.update(step, epoch, losses)
                if log is not None and ctx.main:
                    log.stepped(label, step, epoch, losses)
                end_of_epoch = step % per_epoch == 0 and (step // per_epoch) % settings.save_every_epochs == 0
                by_steps = settings.save_every_steps and step % settings.save_every_steps == 0
                by_time = settings.save_every_minutes and time.monotonic() - last_save >= 60 * settings.save_every_minutes
                stopping = stop is not None and step < total and stop(step)
                if step == total or end_of_epoch:
                    save(step, "end" if step == total else "epoch")
                    if on_epoch_saved is not None and ctx.main and step % per_epoch == 0:
                        on_epoch_saved(step, step // per_epoch)
                elif by_steps or by_time or stopping:
                    save(step, "stop" if stopping else "time" if by_time else "steps")
                if on_step is not None:
                    on_step(step)
                if stopping:
                    break
        except KeyboardInterrupt:
            _save_on_interrupt(step, out_dir, interrupts, save, stream)
            raise
        if interrupts.requested:
            _save_on_interrupt(step, out_dir, interrupts, save, stream)
            raise KeyboardInterrupt
    bar.update(step, max(step - 1, 0) // per_epoch, losses, force=True)
    return step


def _save_on_interrupt(step: int, out_dir: Path, interrupts: _Interrupts, save: Callable[..., None],
                       stream: TextIO | None) -> None:
    """Save the state after the last finished step unless a half-done step has touched the weights."""
    if interrupts.updating:  # the abandoned step had begun to change weights: they match no step
        note = f"the abandoned step had begun updating weights; the last saved step is {_saved_step(out_dir)}"
    elif step > _saved_step(out_dir):
        save(step, "interrupt", sample=False)
        note = f"saved at step {step}"
    else:
        note = f"saved at step {step}" if step else "nothing to save yet"
    if stream is not None:
        stream.write(f"\n{note}\n")
        stream.flush()


def _saved_step(out_dir: Path) -> int:
    paths = checkpoint_paths(out_dir)
    return int(paths[-1].stem.removeprefix(STATE_PREFIX)) if paths else 0
