"""Emotion labels, inline tags and the instructions -> label rules."""

import pytest

from myna.errors import InputError
from myna.text.emotion_markup import (
    COMMON_LABELS,
    TaggedRun,
    check_label,
    has_tags,
    label_from_instructions,
    parse_tags,
    tag_items,
)
from myna.text.ssml import Break, Span, Style


def test_labels_are_free_words_lowercased():
    assert check_label("Happy") == "happy"
    assert check_label(" sleepy_2 ") == "sleepy_2"
    assert check_label("auto", allow_auto=True) == "auto"
    for bad in ("", "2happy", "very happy", "x" * 33, "开心", "auto"):
        with pytest.raises(InputError):
            check_label(bad)


def test_tags_switch_until_the_next_tag():
    runs = parse_tags("Hello. [happy] Great news! It works. [SAD] But not for everyone. [auto] Anyway.")
    assert runs == [TaggedRun("Hello.", None), TaggedRun("Great news! It works.", "happy"),
                    TaggedRun("But not for everyone.", "sad"), TaggedRun("Anyway.", "auto")]


def test_text_without_tags_is_one_unchanged_run():
    text = "  Footnote [1] and [ ] stay text.\n"
    assert not has_tags(text)
    assert parse_tags(text) == [TaggedRun(text, None)]


def test_tags_without_text_between_them_leave_no_empty_runs():
    assert parse_tags("[happy][ sad ] Hi.") == [TaggedRun("Hi.", "sad")]
    assert parse_tags("[calm]") == []


@pytest.mark.parametrize(("instructions", "label"), [
    ("Speak in a calm, soothing voice.", "calm"),
    ("Sound cheerful and upbeat!", "happy"),
    ("Read it angrily, like you are furious.", "angry"),
    ("Whisper this part.", "whisper"),
    ("say it under your breath", "whisper"),
    ("Be calm, not angry.", "calm"),
    ("Don't sound sad, be happy", "happy"),
    ("You are terrified of the dark.", "fearful"),
    ("Act surprised.", "surprised"),
    ("A flat, matter-of-fact delivery.", "neutral"),
    ("excited", "excited"),                       # one word: a free label as it is
    ("auto", "auto"),
    ("用开心的语气说", "happy"),
    ("不要生气，温柔一点", "calm"),
    ("小声说", "whisper"),
    ("悲しそうに読んで", "sad"),
    ("落ち着いた声で", "calm"),
    ("Use a British accent.", None),
    ("", None),
    (None, None),
])
def test_instructions_map_to_labels(instructions, label):
    assert label_from_instructions(instructions) == label


def test_common_labels_are_valid_labels():
    assert [check_label(label) for label in COMMON_LABELS] == list(COMMON_LABELS)


def test_tag_items_cut_a_plan_of_spans_and_breaks():
    loud = Style(volume=6.0)
    items = [Break(0.2), Span("Hi [happy] there ", "en", loud), Break(0.5), Span("[sad] bye."), Break(0.1)]
    assert tag_items(items) == [
        (None, [Break(0.2), Span("Hi", "en", loud)]),
        ("happy", [Span("there ", "en", loud), Break(0.5)]),
        ("sad", [Span("bye."), Break(0.1)]),
    ]
    # a tag before anything spoken relabels the group; a plan without tags is returned as it is
    assert tag_items([Break(0.2), Span("[calm] Hello.")]) == [("calm", [Break(0.2), Span("Hello.")])]
    plain = [Span("No tags here."), Break(0.3), Span("Still none [1].")]
    assert tag_items(plain) == [(None, plain)]
