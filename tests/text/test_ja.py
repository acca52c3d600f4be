"""Japanese normalization and g2p against upstream GPT-SoVITS (commit 48b1a01) outputs."""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from myna.text import ja

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "ja_upstream.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]


def _diff(expected: list[str], actual: list[str]) -> str:
    return "\n".join(difflib.unified_diff(expected, actual, "upstream", "myna", lineterm=""))


def test_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['text'][:20]}" for i, c in enumerate(CASES)])
def test_matches_upstream(case: dict) -> None:
    norm_text = ja.normalize(case["text"])
    assert norm_text == case["norm_text"]
    phones = ja.g2p(norm_text)
    assert phones == case["phones"], _diff(case["phones"], phones)


def test_import_prints_nothing_on_stdout() -> None:
    code = "from myna.text import ja; ja.g2p(ja.normalize('こんにちは。'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == ""


def test_g2p_writes_nothing_to_stdout() -> None:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        ja.g2p("テスト")
    assert buffer.getvalue() == ""
