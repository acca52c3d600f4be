"""Proofreading: the review operations a terminal (and later a web view) calls, and `myna data review`."""

from __future__ import annotations

import io
import json
import sys

import pytest
import soundfile

from myna.errors import InputError
from myna.train.listfile import read_list
from myna.train.review import Review

RATE = 32000


@pytest.fixture
def dataset(speech, tmp_path):
    folder = tmp_path / "data"
    (folder / "wavs").mkdir(parents=True)
    lines, words = [], {}
    for i, (audio, text) in enumerate(zip(speech["audio"][:3], speech["texts"][:3], strict=True)):
        path = folder / "wavs" / f"clip{i}.wav"
        soundfile.write(path, audio, RATE)
        lines.append(f"{path}|anna|EN|{text}")
        probability = 0.3 if i == 1 else 0.95  # Whisper doubted one word of clip1
        words[path.name] = {"confidence": 0.8 if i == 1 else 0.95,
                            "words": [[w, probability if j == 2 else 0.95] for j, w in enumerate(text.split())]}
    (folder / "dataset.list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "transcripts.json").write_text(json.dumps(words), encoding="utf-8")
    return folder / "dataset.list"


def test_review_operations_edit_the_list_and_keep_a_backup(dataset, speech):
    review = Review(dataset)
    original = dataset.read_text(encoding="utf-8")
    assert [i.index for i in review.flagged()] == [1] and review.item(1).doubtful_words == ["sea"]
    assert review.item(0).seconds == pytest.approx(speech["audio"][0].shape[0] / RATE, abs=0.01)

    assert not review.edit(1, "She sells sea shells.").flagged  # a proofread line is no longer doubted
    merged = review.merge(0)
    assert merged.text.startswith("The quick brown fox") and merged.text.endswith("sea shells.")
    joined = speech["audio"][0].shape[0] + speech["audio"][1].shape[0]
    assert soundfile.info(merged.audio).frames == joined
    left, right = review.split(0, 1.0, "The quick", "brown fox and the rest.")
    assert soundfile.info(left.audio).frames == RATE and soundfile.info(right.audio).frames == joined - RATE
    review.drop(2)
    entries, _ = read_list(dataset)
    assert [e.text for e in entries] == ["The quick", "brown fox and the rest."]
    assert review.backup.read_text(encoding="utf-8") == original
    with pytest.raises(InputError, match="outside the clip"):
        review.split(0, 99.0, "a", "b")
    with pytest.raises(InputError, match="no line 9"):
        review.drop(8)


def test_data_review_in_the_terminal(dataset, monkeypatch):
    from myna.cli import main

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"f\ne Proofread text.\nd\nq\n")))
    assert main(["data", "review", str(dataset)]) == 0
    shown = out.getvalue()
    assert "?[2/3] clip1.wav" in shown and "doubtful: sea" in shown
    assert [e.text for e in read_list(dataset)[0]][:1] == ["The quick brown fox jumps over the lazy dog."]
    assert len(read_list(dataset)[0]) == 2 and "Proofread text." not in dataset.read_text()  # edited, then dropped
    flagged = io.StringIO()
    monkeypatch.setattr(sys, "stdout", flagged)
    assert main(["data", "review", str(dataset), "--flagged"]) == 0
    assert flagged.getvalue() == ""
