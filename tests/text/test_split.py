"""Target-text splitting against upstream GPT-SoVITS (commit 48b1a01) text_segmentation_method.py
and TextPreprocessor (replace_consecutive_punctuation + pre_seg_text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myna.errors import InputError
from myna.text import split

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "split_upstream.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]
PREPARE = [case for case in CASES if case["function"] == "prepare"]
CUT = [case for case in CASES if case["function"] == "cut"]
BIG = [case for case in CASES if case["function"] == "big"]


def _case_id(case: dict) -> str:
    return f"{case.get('method', '')}:{case.get('lang', '')}:{case['text'][:16]!r}"


def _show(pieces: list[str]) -> str:
    return "\n".join(f"  {piece!r}" for piece in pieces)


def test_enough_cases() -> None:
    assert len(PREPARE) >= 30
    assert {case["method"] for case in PREPARE} == set(split.UPSTREAM_ALIASES)
    assert {"zh", "en"} <= {case["lang"] for case in PREPARE}


@pytest.mark.parametrize("case", PREPARE, ids=[_case_id(c) for c in PREPARE])
def test_prepare_matches_upstream(case: dict) -> None:
    if "error" in case:
        with pytest.raises(InputError, match="no text to synthesize"):
            split.prepare_segments(case["text"], case["lang"], case["method"])
        return
    actual = split.prepare_segments(case["text"], case["lang"], case["method"])
    assert actual == case["segments"], f"upstream:\n{_show(case['segments'])}\nmyna:\n{_show(actual)}"


@pytest.mark.parametrize("case", CUT, ids=[_case_id(c) for c in CUT])
def test_cut_method_matches_upstream(case: dict) -> None:
    assert split.get_method(case["method"])(case["text"]) == case["result"]


@pytest.mark.parametrize("case", BIG, ids=[_case_id(c) for c in BIG])
def test_split_long_text_matches_upstream(case: dict) -> None:
    assert split.split_long_text(case["text"]) == case["result"]


def test_descriptive_names_are_the_upstream_methods() -> None:
    for alias, name in split.UPSTREAM_ALIASES.items():
        assert split.get_method(alias) is split.get_method(name)
    assert split.method_names() == list(split.UPSTREAM_ALIASES.values())


def test_unknown_method_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown text split method"):
        split.prepare_segments("你好。", "zh", "cut9")


def test_blank_text_gives_no_segments() -> None:
    assert split.prepare_segments("\n\n", "zh", "cut5") == []
