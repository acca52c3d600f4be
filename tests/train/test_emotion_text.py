"""Training of the text emotion classifier: its sentences stay apart from the test sets, and it learns."""

import re
from pathlib import Path

from myna.text.emotion import LABELS, classify
from myna.text.emotion.evaluate import load_examples
from myna.text.emotion.model import model_from_json
from myna.train.emotion_text.__main__ import dev_report
from myna.train.emotion_text.corpus import MODEL_LABELS, training_set, written
from myna.train.emotion_text.fit import FitSettings, fit

ROOT = Path(__file__).resolve().parents[2]
DEV_SET = ROOT / "src" / "myna" / "train" / "emotion_text" / "dev.jsonl"
EVAL_SET = ROOT / "benchmarks" / "data" / "emotion_eval.jsonl"


def _key(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


def test_training_set_is_seeded_balanced_and_filled():
    first, again = training_set("zh", per_label=100), training_set("zh", per_label=100)
    assert first == again
    assert {label: sum(e.label == label for e in first) for label in MODEL_LABELS} == dict.fromkeys(MODEL_LABELS, 100)
    assert not any("{" in example.text for example in first)
    assert training_set("zh", per_label=100, seed=1) != first


def test_no_development_or_evaluation_sentence_is_trained_on():
    held_out = {_key(example.text) for path in (DEV_SET, EVAL_SET) for example in load_examples(path)}
    assert len(held_out) == 144 + 390
    written_keys = {_key(sentence) for lang in ("zh", "en", "ja")
                    for sentences in written(lang).sentences.values() for sentence in sentences}
    assert written_keys.isdisjoint(held_out)


def test_fit_learns_and_round_trips_through_json():
    examples = [e for lang in ("en", "ja") for e in training_set(lang, per_label=40)]
    model = fit(examples, MODEL_LABELS, FitSettings(ngrams=False, steps=150))
    accuracy = sum(classify(e.text, e.lang, model).label == e.label for e in examples) / len(examples)
    assert accuracy > 0.6  # from 1/7 (all neutral) untrained
    assert model_from_json(model.to_json()).weights == model.weights
    untrained = fit(examples[:7], MODEL_LABELS, FitSettings(ngrams=False, steps=0))
    assert dev_report(model).accuracy("en") > dev_report(untrained).accuracy("en")


def test_model_labels_leave_whisper_to_cues():
    assert set(MODEL_LABELS) == set(LABELS) - {"whisper"}
