"""Chinese g2p against upstream GPT-SoVITS (commit 48b1a01, g2pW off) outputs."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

import pytest

from myna.errors import InputError
from myna.text.zh.g2p import g2p
from myna.text.zh.pinyin import syllable_table
from myna.text.zh.sandhi import word_lists

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "zh_g2p_upstream.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]

# sha256 of upstream's GPT_SoVITS/text/opencpop-strict.txt rewritten as sorted "pinyin\tinitial final"
# lines joined by newlines (upstream commit 48b1a01, 429 syllables).
UPSTREAM_TABLE_SHA256 = "02c99f358e3e307d21bf8b685ee907b57771edb2661665d33a3f7bf06e09e085"


def _rows(phones: list[str], word2ph: list[int], text: str) -> list[str]:
    """One line per character: the character and the phonemes it produced."""
    rows, start = [], 0
    for index, count in enumerate(word2ph):
        char = text[index] if index < len(text) else "?"
        rows.append(f"{char} {' '.join(phones[start : start + count])}")
        start += count
    if start < len(phones):
        rows.append(f"(extra) {' '.join(phones[start:])}")
    return rows


def test_enough_cases() -> None:
    assert len(CASES) >= 80
    assert {case["version"] for case in CASES} == {"v1", "v2"}


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i}:{c['version']}:{c['norm_text'][:16]}" for i, c in enumerate(CASES)]
)
def test_matches_upstream(case: dict) -> None:
    phones, word2ph = g2p(case["norm_text"], case["version"])
    expected = _rows(case["phones"], case["word2ph"], case["norm_text"])
    actual = _rows(phones, word2ph, case["norm_text"])
    diff = "\n".join(difflib.unified_diff(expected, actual, "upstream", "myna", lineterm=""))
    assert (phones, word2ph) == (case["phones"], case["word2ph"]), diff
    assert len(phones) == sum(word2ph)


def test_syllable_table_equals_upstream() -> None:
    table = syllable_table()
    canonical = "\n".join(f"{key}\t{initial} {final}" for key, (initial, final) in sorted(table.items()))
    assert len(table) == 429
    assert hashlib.sha256(canonical.encode()).hexdigest() == UPSTREAM_TABLE_SHA256


def test_word_lists_match_upstream_adjustments() -> None:
    lists = word_lists()
    assert len(lists.neutral) == 420 and len(lists.never_neutral) == 40
    assert {"不在", "学生", "情形", "打点", "老太", "老头"} <= lists.neutral
    assert not {"别人", "将军", "戏弄"} & lists.neutral
    assert len(lists.always_erhua) == 8 and len(lists.never_erhua) == 44


def test_erhua_only_in_v2() -> None:
    assert g2p("哪儿", "v2")[0] == ["n", "a3", "EE", "er3"]
    assert g2p("哪儿", "v1")[0] == ["n", "a3", "EE", "er2"]


def test_empty_and_punctuation_only() -> None:
    assert g2p("") == ([], [])
    assert g2p(",.") == ([",", "."], [1, 1])


@pytest.mark.parametrize("text", ["覅", "噷", "你好#"])
def test_unreadable_input_raises(text: str) -> None:
    # Upstream fails on these with an AssertionError or IndexError.
    with pytest.raises(InputError):
        g2p(text)


def test_unknown_version() -> None:
    with pytest.raises(InputError):
        g2p("你好", "v9")
