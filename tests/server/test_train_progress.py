"""Reading a training run's progress: from the trainers' own progress lines and tqdm bars in a log, and
from a run's status files when it writes them."""

from __future__ import annotations

import io
import json

from tqdm import tqdm

from myna.server.train_progress import MAX_POINTS, last_message, read_progress
from myna.server.transcripts import correct, read_list
from myna.train.loop import Progress


def _log(tmp_path, text: str):
    path = tmp_path / "run.log"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_trainers_progress_lines_give_stage_step_eta_and_loss_history(tmp_path):
    stream = io.StringIO()
    for bar in (tqdm(range(3), desc="features", unit="utt", file=stream, mininterval=0),):
        list(bar)
    sovits = Progress(total=4, label="SoVITS", stream=stream)
    for step in range(1, 5):
        sovits.update(step, 0, {"mel": 30.0 - step, "kl": 1.5 / step}, force=True)
    gpt = Progress(total=6, label="GPT", stream=stream)
    for step in range(1, 4):
        gpt.update(step, step // 2, {"loss": 7.0 - 0.1 * step, "acc": 0.1 * step}, force=True)
    progress = read_progress(_log(tmp_path, stream.getvalue()), None)
    assert (progress.stage, progress.step, progress.total, progress.epoch) == ("GPT", 3, 6, 2)
    assert progress.losses == {"loss": 6.7, "acc": 0.3} and progress.eta_s is not None
    sovits_points = [p for p in progress.history if p["stage"] == "SoVITS"]
    assert [p["step"] for p in sovits_points] == [1, 2, 3, 4]
    assert sovits_points[-1]["losses"] == {"mel": 26.0, "kl": 0.375}


def test_a_resumed_run_replaces_the_steps_it_redoes_and_tqdm_shows_the_current_stage(tmp_path):
    stream = io.StringIO()
    first = Progress(total=10, label="SoVITS", stream=stream)
    for step in range(1, 6):
        first.update(step, 0, {"mel": float(step)}, force=True)
    stream.write("\nmyna train: interrupted; run the same command again to resume from the last checkpoint\n")
    resumed = Progress(total=10, label="SoVITS", stream=stream, first_step=3)
    for step in range(4, 7):
        resumed.update(step, 0, {"mel": 100.0 + step}, force=True)
    progress = read_progress(_log(tmp_path, stream.getvalue()), None)
    assert [(p["step"], p["losses"]["mel"]) for p in progress.history] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (4, 104.0), (5, 105.0), (6, 106.0)]
    # a data-preparation bar after the training lines names the current stage
    tail = io.StringIO()
    list(tqdm(range(5), desc="transcribing", unit="utt", file=tail, mininterval=0))
    preparing = read_progress(_log(tmp_path, stream.getvalue() + tail.getvalue()), None)
    assert (preparing.stage, preparing.step, preparing.total) == ("transcribing", 5, 5)
    assert last_message(tmp_path / "run.log") == ("interrupted; run the same command again to resume from the "
                                                  "last checkpoint")


def test_a_status_file_wins_over_the_log_and_long_histories_are_thinned(tmp_path):
    run = tmp_path / "work"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({
        "format": 1, "name": "anna", "state": "training", "stage": "GPT", "step": 40, "total": 90, "epoch": 3,
        "epochs": 6, "losses": {"loss": 2.5}, "eta_s": 125.0}))
    lines = [json.dumps({"stage": "SoVITS", "step": s, "epoch": 1, "time": 0, "losses": {"mel": 1.0 / s}})
             for s in range(1, 2001)]
    lines.append('{"stage": "GPT", "step": 1, "epo')  # cut short by a crash: skipped
    (run / "losses.jsonl").write_text("\n".join(lines) + "\n")
    progress = read_progress(_log(tmp_path, "SoVITS [#...] 1/9 ep 1 mel=3.000 eta 0:05"), run)
    assert progress.source == "status"
    assert (progress.stage, progress.step, progress.total, progress.eta_s) == ("GPT", 40, 90, 125.0)
    with open(run / "losses.jsonl", "a") as history:  # a step newer than the status file's last rewrite
        history.write(json.dumps({"stage": "GPT", "step": 41, "epoch": 3, "time": 0, "losses": {"loss": 2.4}}) + "\n")
    newer = read_progress(tmp_path / "run.log", run)
    assert (newer.step, newer.losses) == (41, {"loss": 2.4})
    assert len(progress.history) == MAX_POINTS and progress.history[-1]["step"] == 2000
    assert [p["stage"] for p in progress.history] == ["SoVITS"] * MAX_POINTS
    (run / "status.json").write_text(json.dumps({"state": "exporting", "stage": "GPT", "step": 90, "total": 90}))
    assert read_progress(tmp_path / "run.log", run).stage == "exporting"


def test_transcripts_are_corrected_in_place(tmp_path):
    listing = tmp_path / "dataset.list"
    listing.write_text("/d/wavs/a.wav|anna|EN|Center number one.\n/d/wavs/b.wav|anna|EN|Second clip.\n")
    items = correct(listing, {0: "  Sentence   number one. "})
    assert [u.text for u in items] == ["Sentence number one.", "Second clip."]
    assert listing.read_text().splitlines()[0] == "/d/wavs/a.wav|anna|EN|Sentence number one."
    for bad, reason in (({1: "a|b"}, "'|'"), ({1: "   "}, "empty"), ({5: "x"}, "no utterance 5")):
        try:
            correct(listing, bad)
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            assert reason in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    assert [u.text for u in read_list(listing)] == ["Sentence number one.", "Second clip."]
