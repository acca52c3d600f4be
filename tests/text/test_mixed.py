"""Mixed-language modes (upstream api_v2 `text_lang`) against upstream GPT-SoVITS.

Reference: tests/text/data/mixed_upstream.jsonl, produced by upstream's
`TextPreprocessor.get_phones_and_bert` (BERT features stubbed; ids and norm_text only) at commit 48b1a01.
"""

import json
from pathlib import Path

import pytest

from myna.errors import UnsupportedLanguageError
from myna.text import g2p, g2p_mixed
from myna.text.mixed import language_segments

CASES = [json.loads(line) for line in (Path(__file__).parent / "data/mixed_upstream.jsonl").open(encoding="utf-8")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['mode']}-{c['version']}-{c['text'][:20]}")
def test_matches_upstream(case):
    got = g2p_mixed(case["text"], case["mode"], case["version"])
    assert got.norm_text == case["norm_text"]
    assert got.ids == case["ids"]


def test_segments_add_up():
    result = g2p_mixed("我喜欢用iPhone工作。", "zh")
    assert [s.language for s in result.segments] == ["zh", "en", "zh"]
    assert sum(len(s.phones) for s in result.segments) == len(result.phones)
    assert result.word2ph is None  # an English run has no word2ph
    assert result.language == "mixed"


def test_pure_chinese_keeps_word2ph():
    result = g2p_mixed("今天天气很好。", "zh")
    assert result.word2ph == g2p("今天天气很好。", "zh").word2ph


def test_english_mode_is_one_segment():
    assert language_segments("你好 hello", "en") == [("en", "你好 hello")]


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(UnsupportedLanguageError, match="auto"):
        g2p_mixed("hello", "yue")
