"""Word spans: which phonemes belong to which word, per language and for mixed text."""

import pytest

from myna.text import g2p_mixed
from myna.text.words import SILENT_PHONES, proportional_spans, word_spans


@pytest.mark.parametrize(("text", "mode", "words"), [
    ("Hello there, world! It is 2024.", "en", ["Hello", "there", "world", "It", "is", "twenty", "twenty-four"]),
    ("你好，世界。今天是晴天。", "zh", ["你好", "世界", "今天", "是", "晴天"]),
    ("こんにちは、世界。", "ja", ["こんにちは", "世界"]),
    ("我爱 Python 编程。", "auto", ["我", "爱", "Python", "编程"]),
])
def test_spans_cover_the_spoken_phonemes_in_order(text, mode, words):
    phonemes = g2p_mixed(text, mode)
    spans = word_spans(phonemes)
    assert [s.text for s in spans] == words
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    covered = {i for s in spans for i in range(s.start, s.end)}
    spoken = {i for i, p in enumerate(phonemes.phones) if p not in SILENT_PHONES}
    assert spoken <= covered  # every spoken phoneme belongs to a word


def test_english_words_get_their_own_phonemes():
    phonemes = g2p_mixed("Hello world.", "en")
    spans = word_spans(phonemes)
    assert [phonemes.phones[s.start:s.end] for s in spans] == [["HH", "AH0", "L", "OW1"], ["W", "ER1", "L", "D"]]


def test_proportional_fallback_shares_phonemes_by_length():
    spans = proportional_spans("ab abcd", ["a", "b", ",", "c", "d", "e", "f"])
    assert [(s.text, s.start, s.end) for s in spans] == [("ab", 0, 2), ("abcd", 3, 7)]
    assert proportional_spans("", ["a"]) == []
