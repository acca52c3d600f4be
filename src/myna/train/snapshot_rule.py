"""The default voice's snapshot rule: which measured point of a work folder enters the committed snapshot.

Progress enters the repository only when it is measured to improve on what is committed (snapshot history
is budgeted at 250 MB):

- the decoder, at its kept training state of lowest held-out resynthesis WER over SNAPSHOT_CLIPS clips, when
  that beats the committed snapshot's WER by at least MIN_WER_GAIN (a first snapshot must show that the decoder
  hears words at all: WER <= FIRST_SNAPSHOT_WER), with the newest GPT riding along;
- else the GPT alone, at its kept training state of lowest held-out teacher-forced loss, when that beats the
  committed GPT's by at least MIN_LOSS_GAIN: the decoder's WER may stall while the GPT still learns to read, and
  that progress must survive the machine too.

Only a WER over SNAPSHOT_CLIPS held-out clips counts: over the resynth stage's default 30 the figure moves by
~0.04 between neighbouring steps (0.374, 0.438, 0.372, 0.407 at steps 12,504-13,804), so a lucky 30-clip point
would win. The GPT's measure is its held-out loss because its text-following margins move ~0.1 between runs.
The weights come from the work folder's training states (myna.train.default_recipe.Recipe), the format is
myna.train.snapshot's.
"""

from __future__ import annotations

from pathlib import Path

from myna.train.default_recipe import NETWORKS, PRESET, SOVITS_SETTINGS, TOKENIZER_KEYS, Recipe
from myna.train.snapshot import Snapshot

FIRST_SNAPSHOT_WER = 0.9
SNAPSHOT_CLIPS = 120
# Gains worth the budget. A decoder snapshot costs ~26 MB of history (generator, discriminator) and a GPT-only one
# ~9 MB, against ~78 MB left at the sixth snapshot. Neighbouring 120-clip WERs of one decoder run move by ~0.02
# (0.415, 0.436, 0.429, 0.411 at steps 11,500-13,804), so a smaller gain may be noise; the held-out loss is
# deterministic, and 0.05 is ~600 steps of the GPT's progress at its last measured rate (0.084 a 1,000 steps).
MIN_WER_GAIN = 0.02
MIN_LOSS_GAIN = 0.05


def _gained(gain: float, least: float) -> bool:
    """Whether `gain` reaches `least`; the figures are recorded rounded, so 0.411 - 0.391 counts as 0.02."""
    return round(gain, 6) >= least


def snapshot_verdict(point: dict | None, committed_wer: float | None) -> str | None:
    """None when the measured curve `point` earns a snapshot over the committed one's WER, else why not."""
    if point is None or "resynth_wer" not in point:
        return (f"no resynthesis WER over {SNAPSHOT_CLIPS} held-out clips measured at a kept SoVITS training state: "
                f"run the resynth stage first (--clips {SNAPSHOT_CLIPS})")
    if committed_wer is None and point["resynth_wer"] > FIRST_SNAPSHOT_WER:
        return (f"resynthesis WER {point['resynth_wer']:.3f} at SoVITS step {point['sovits_step']} is above the "
                f"first snapshot's bar, {FIRST_SNAPSHOT_WER}")
    if committed_wer is not None and not _gained(committed_wer - point["resynth_wer"], MIN_WER_GAIN):
        return (f"resynthesis WER {point['resynth_wer']:.3f} at SoVITS step {point['sovits_step']} does not beat "
                f"the committed snapshot's {committed_wer:.3f} by {MIN_WER_GAIN}")
    return None


def gpt_snapshot_verdict(point: dict | None, committed_loss: float | None) -> str | None:
    """None when the measured curve `point` earns the GPT alone a snapshot, else why not. With no loss recorded
    for the committed GPT, any measured point earns it."""
    if point is None or "gpt_heldout_loss" not in point:
        return "no held-out GPT loss measured at a kept GPT training state: run the heldout stage first"
    if committed_loss is not None and not _gained(committed_loss - point["gpt_heldout_loss"], MIN_LOSS_GAIN):
        return (f"held-out GPT loss {point['gpt_heldout_loss']:.3f} at GPT step {point['gpt_step']} does not beat "
                f"the committed GPT's {committed_loss:.3f} by {MIN_LOSS_GAIN}")
    return None


def best_point(recipe: Recipe) -> dict | None:
    """The curve's point of lowest resynthesis WER over SNAPSHOT_CLIPS (or more) held-out clips whose SoVITS
    training state is still kept."""
    kept = recipe.kept_steps("sovits")
    points = [p for p in recipe.curve() if "resynth_wer" in p and p.get("sovits_step") in kept
              and p.get("resynth_clips", 0) >= SNAPSHOT_CLIPS]
    return min(points, key=lambda p: p["resynth_wer"], default=None)


def gpt_point(recipe: Recipe) -> dict | None:
    """The curve's point of lowest held-out teacher-forced GPT loss whose GPT training state is still kept."""
    kept = recipe.kept_steps("gpt")
    points = [p for p in recipe.curve() if "gpt_heldout_loss" in p and p.get("gpt_step") in kept]
    return min(points, key=lambda p: p["gpt_heldout_loss"], default=None)


def take_snapshot(recipe: Recipe, force: bool = False) -> tuple[Path, dict]:
    """Apply the rule to `recipe`'s work folder: write the decoder's best point (with the newest GPT) when it earns
    it (`force`: whenever one was measured), else the GPT's best point alone when it does; the manifest written
    and the figures that earned it. SystemExit, saying why, when neither does."""
    committed = recipe.snapshot().notes
    point = best_point(recipe)
    reason = snapshot_verdict(point, committed.get("resynth_wer"))
    if reason is None or (force and point is not None):
        return write_snapshot(recipe, point), {k: point[k] for k in ("sovits_step", "resynth_wer")}
    point = gpt_point(recipe)
    gpt_reason = gpt_snapshot_verdict(point, committed.get("gpt_heldout_loss"))
    if gpt_reason is not None:
        raise SystemExit(f"no snapshot: {reason}; {gpt_reason}")
    return write_gpt_snapshot(recipe, point), {k: point[k] for k in ("gpt_step", "gpt_heldout_loss")}


def write_snapshot(recipe: Recipe, point: dict) -> Path:
    """The weights of the stages trained so far (SoVITS at the measured curve `point`; the newest GPT) into the
    snapshot folder, with the committed curve extended by the work folder's points."""
    snapshot = _open_for_writing(recipe)
    weights, step = recipe.training_weights("sovits", point["sovits_step"])
    stale = snapshot.put("sovits", step, weights[NETWORKS["sovits"][0]], recipe.config.to_dict(), exact=TOKENIZER_KEYS)
    if step >= SOVITS_SETTINGS.discriminator_start_step and "discriminator" in weights:
        stale += snapshot.put("discriminator", step, weights["discriminator"], recipe.discriminator_config())
    else:  # an older one fits no generator here
        stale += snapshot.drop("discriminator")
    snapshot.notes.update(design=recipe.design, tokens=recipe.tokens, resynth_wer=point["resynth_wer"])
    try:
        stale += _put_gpt(recipe, snapshot, None)
    except SystemExit:
        pass  # no GPT trained here: the committed one (if any) stays, with its figure
    return _save(snapshot, stale)


def write_gpt_snapshot(recipe: Recipe, point: dict) -> Path:
    """The GPT's training state at the measured curve `point` into the snapshot folder beside its decoder (which
    stays as committed), with the committed curve extended by the work folder's points."""
    snapshot = _open_for_writing(recipe)
    if "sovits" not in snapshot.stages:
        raise SystemExit(f"the snapshot in {recipe.snapshot_dir} has no decoder for a GPT to join: snapshot the "
                         "decoder first")
    return _save(snapshot, _put_gpt(recipe, snapshot, point["gpt_step"]))


def _save(snapshot: Snapshot, stale: list[Path]) -> Path:
    """Write the manifest, then delete the `stale` files it no longer names; the manifest's path."""
    manifest = snapshot.save()
    for path in stale:
        path.unlink(missing_ok=True)
    return manifest


def _open_for_writing(recipe: Recipe) -> Snapshot:
    """The committed snapshot (refused when it holds other tokens), its curve extended by the work folder's points
    and its CPU time brought up to date."""
    snapshot = recipe.snapshot()
    if snapshot.stages and snapshot.notes.get("tokens") != recipe.tokens:
        raise SystemExit(f"the snapshot in {recipe.snapshot_dir} holds {snapshot.notes.get('tokens')} tokens, "
                         f"not {recipe.tokens}")
    recipe.snapshot_dir.mkdir(parents=True, exist_ok=True)
    snapshot.curve = snapshot.curve + [p for p in recipe.curve() if p not in snapshot.curve]
    snapshot.notes["cpu_seconds"] = recipe.progress()
    return snapshot


def _put_gpt(recipe: Recipe, snapshot: Snapshot, step: int | None) -> list[Path]:
    """The GPT's training state at `step` (default: the newest) into `snapshot`, with its measured held-out loss in
    the notes (or none, when it was not measured at that step); the files to delete after saving (Snapshot.put)."""
    weights, step = recipe.training_weights("gpt", step)
    stale = snapshot.put("gpt", step, weights[NETWORKS["gpt"][0]], PRESET.gpt.to_dict())
    snapshot.notes.pop("gpt_heldout_loss", None)
    losses = [p["gpt_heldout_loss"] for p in recipe.curve() if p.get("gpt_step") == step and "gpt_heldout_loss" in p]
    if losses:  # the newest measurement at that step
        snapshot.notes["gpt_heldout_loss"] = losses[-1]
    return stale
