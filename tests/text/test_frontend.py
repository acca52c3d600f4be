"""Whole per-language front-end (normalize + g2p + symbol ids) against upstream GPT-SoVITS.

Reference: tests/text/data/frontend_upstream.jsonl, produced by upstream's own cleaner
(`text.cleaner.clean_text` + `cleaned_text_to_sequence`) at commit 48b1a01; see data/README.md.
"""

import json
from pathlib import Path

import pytest

from myna.errors import InputError, UnsupportedLanguageError
from myna.text import Phonemes, g2p
from myna.text.frontend import MAX_TEXT_CHARS
from myna.text.symbols import symbols

CASES = [json.loads(line) for line in (Path(__file__).parent / "data/frontend_upstream.jsonl").open(encoding="utf-8")]


def _case_id(case: dict) -> str:
    return f"{case['lang']}-{case['version']}-{case['text'][:24]}"


def test_reference_covers_each_language():
    counts = {lang: sum(c["lang"] == lang and c["version"] == "v2" for c in CASES) for lang in ("zh", "en", "ja")}
    assert counts["zh"] >= 60 and counts["en"] >= 40 and counts["ja"] >= 20, counts


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_upstream(case):
    got = g2p(case["text"], case["lang"], case["version"])
    assert got.norm_text == case["norm_text"]
    if "known_divergence" in case:  # documented in the case; fails once the divergence is gone
        assert got.phones != case["phones"], "divergence fixed: drop its known_divergence marker"
        return
    assert got.phones == case["phones"]
    assert got.ids == case["ids"]
    assert got.word2ph == case["word2ph"]


def test_record_has_exactly_the_public_keys():
    record = g2p("你好", "zh").to_dict()
    assert set(record) == {"phones", "ids", "word2ph", "norm_text"}
    assert len(record["phones"]) == sum(record["word2ph"]) == len(record["ids"])


def test_pause_marks_become_pause_symbols():
    plain = g2p("你好，世界", "zh")
    marked = g2p("你好^世界", "zh")
    assert "SP3" in marked.phones and "," not in marked.phones
    assert [p for p in marked.phones if p != "SP3"] == [p for p in plain.phones if p != ","]
    assert "SP2" in g2p("你好￥世界", "zh").phones


def test_v1_ids_come_from_the_v1_table():
    # v1's table is a prefix of v2's: the difference is which symbols exist, not their ids.
    v1 = g2p("你好，Hello", "zh", "v1")
    assert v1.ids == [symbols("v1").index(p) for p in v1.phones]
    # Japanese pitch marks do not exist in v1's table: they become UNK there.
    ja = g2p("こんにちは、世界。", "ja", "v1")
    assert "[" not in ja.phones and "UNK" in ja.phones


@pytest.mark.parametrize("lang", ["fr", "ko", "", "ZH"])
def test_unsupported_language_is_a_clear_error(lang):
    with pytest.raises(UnsupportedLanguageError, match="unsupported language"):
        g2p("text", lang)


def test_unknown_version_is_a_clear_error():
    with pytest.raises(InputError, match="v1, v2"):
        g2p("hello", "en", "v3")


@pytest.mark.parametrize("lang", ["zh", "en", "ja"])
@pytest.mark.parametrize("text", ["", "。。。", "😊😊", "\x00\x07\x1b", "Ж ש ก"])
def test_odd_input_gives_a_result_not_a_crash(lang, text):
    result = g2p(text, lang)
    assert isinstance(result, Phonemes)
    assert len(result.ids) == len(result.phones)
    assert all(isinstance(i, int) for i in result.ids)


def test_control_characters_are_ignored():
    assert g2p("你\x00好\x07", "zh") == g2p("你好", "zh")
    assert g2p("Hello\x1b world", "en").phones == g2p("Hello world", "en").phones


def test_too_long_text_is_rejected_with_advice():
    with pytest.raises(InputError, match="split"):
        g2p("好" * (MAX_TEXT_CHARS + 1), "zh")


def test_non_string_is_rejected():
    with pytest.raises(InputError, match="str"):
        g2p(b"bytes", "en")
