"""Chinese text normalization against upstream GPT-SoVITS (commit 48b1a01) outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from myna.text.zh import numbers
from myna.text.zh.normalize import normalize, split_clauses
from myna.text.zh.verbalize import read_cardinal, read_clock_field, read_digits, read_number

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "zh_normalize_upstream.jsonl")
    .read_text("utf-8")
    .splitlines()
    if line.strip()
]


def test_enough_cases() -> None:
    assert len(CASES) >= 80
    assert {case["version"] for case in CASES} == {"v1", "v2"}


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i}:{c['version']}:{c['text'][:16]!r}" for i, c in enumerate(CASES)]
)
def test_matches_upstream(case: dict) -> None:
    got = normalize(case["text"], case["version"])
    assert got == case["norm_text"], (
        f"\n input:    {case['text']!r} ({case['version']})"
        f"\n upstream: {case['norm_text']!r}"
        f"\n myna:     {got!r}"
    )


@pytest.mark.parametrize(
    ("digits", "spoken"),
    [
        ("", ""),
        ("0", "零"),
        ("000", "零"),
        ("7", "七"),
        ("10", "十"),
        ("15", "十五"),
        ("110", "一百一十"),
        ("1005", "一千零五"),
        ("10105", "一万零一百零五"),
        ("100000000", "一亿"),
        ("100123456", "一亿零一十二万三千四百五十六"),
        ("10000000000000000", "一亿亿"),
        ("1400000000", "十四亿"),
    ],
)
def test_read_cardinal(digits: str, spoken: str) -> None:
    assert read_cardinal(digits) == spoken


def test_read_digits_and_numbers() -> None:
    assert read_digits("2024") == "二零二四"
    assert read_digits("110", alt_one=True) == "幺幺零"
    assert read_number("3.20") == "三点二零"
    assert read_number("3.000") == "三点零"
    assert read_number(".5") == "零点五"
    assert read_number("12.5") == "十二点五"
    assert read_clock_field("05") == "零五"
    assert read_clock_field("45") == "四十五"


def test_read_cardinal_very_long_number_is_linear() -> None:
    spoken = read_cardinal("1" + "0" * 80_000)
    assert spoken == "一" + "亿" * 10_000


def test_split_clauses() -> None:
    assert split_clauses("你好，世界！再见") == ["你好，", "世界！", "再见"]
    assert split_clauses("a b\n\n《c》") == ["ab", "c"]
    assert split_clauses("") == [""]


def test_arithmetic_chain_is_fully_read() -> None:
    assert numbers.spell_arithmetic("1+2+3+4") == "1加2加3加4"


def test_other_decimal_digits_are_read() -> None:
    # Upstream raises KeyError on non-ASCII decimal digits; myna reads them as their ASCII digits.
    assert normalize("٣个") == normalize("3个") == "三个"
    assert normalize("١٢٣") == "幺二三"


def test_control_characters_and_emoji_are_dropped() -> None:
    assert normalize("你\x00好\x1b😀\u200b！") == "你好!"


@pytest.mark.parametrize(
    "text",
    [
        "1234567890" * 20_000,
        "-" + "1234567890" * 20_000,
        "1." + "1234567890" * 20_000,
        "5m~6m2" + "3" * 200_000,
        "1+" * 50_000 + "1",
        "今天是2024年5月1日，气温-3℃~5℃，花了3.5元，增长了12.5%，电话13812345678。" * 2_000,
    ],
    ids=["digits", "negative", "decimal", "unit-range", "chain", "mixed"],
)
def test_long_input_is_not_quadratic(text: str) -> None:
    start = time.perf_counter()
    normalize(text)
    assert time.perf_counter() - start < 5.0
