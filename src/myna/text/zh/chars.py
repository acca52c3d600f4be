"""Character-level tables for Chinese normalization: script, width and symbol conversions."""

import functools
import json
import re
import string
import unicodedata
from importlib import resources

_FULLWIDTH_OFFSET = 0xFEE0  # U+FF01..U+FF5E mirror ASCII U+0021..U+007E


@functools.cache
def traditional_to_simplified_table() -> dict[int, str]:
    """Translation table (for `str.translate`) from traditional to simplified characters."""
    raw = resources.files("myna.text.zh").joinpath("data/t2s.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return {ord(trad): simp for trad, simp in zip(data["traditional"], data["simplified"], strict=True)}


@functools.cache
def halfwidth_table() -> dict[int, str]:
    """Translation table folding full-width ASCII letters and digits to ASCII.

    Upstream also means to fold the ideographic space U+3000, but its table is keyed by the string
    rather than the code point, so `str.translate` ignores it; U+3000 is kept (and dropped later).
    """
    return {ord(ch) + _FULLWIDTH_OFFSET: ch for ch in string.ascii_letters + string.digits}


def ascii_digits(text: str) -> str:
    """Replace every non-ASCII Unicode decimal digit (Arabic-Indic, Devanagari, ...) by its ASCII digit.

    Upstream raises on such digits; folding them changes no output upstream does produce.
    """
    return _OTHER_DECIMAL_DIGIT.sub(lambda found: str(unicodedata.decimal(found.group())), text)


_OTHER_DECIMAL_DIGIT = re.compile(r"(?![0-9])\d")


# Spoken names of symbols still left after the numeric rules, and marks dropped at that point.
_SYMBOL_READINGS: dict[str, str] = {
    "/": "每",
    **{circled: spoken for circled, spoken in zip("①②③④⑤⑥⑦⑧⑨⑩", "一二三四五六七八九十", strict=True)},
    "α": "阿尔法",
    "β": "贝塔",
    "γΓ": "伽玛",
    "δΔ": "德尔塔",
    "ε": "艾普西龙",
    "ζ": "捷塔",
    "η": "依塔",
    "θΘ": "西塔",
    "ι": "艾欧塔",
    "κ": "喀帕",
    "λΛ": "拉姆达",
    "μ": "缪",
    "ν": "拗",
    "ξΞ": "克西",
    "ο": "欧米克伦",
    "πΠ": "派",
    "ρ": "肉",
    "ςΣσ": "西格玛",
    "τ": "套",
    "υ": "宇普西龙",
    "φΦ": "服艾",
    "χ": "器",
    "ψΨ": "普赛",
    "ωΩ": "欧米伽",
    "+": "加",
    "-": "减",
    "×": "乘",
    "÷": "除",
    "=": "等",
}
_DROPPED_AFTER_NUMBERS = "—《》【】<>{}()（）#&@“”^_|\\"


@functools.cache
def symbol_table() -> dict[int, str | None]:
    """Translation table that names Greek letters, circled numbers and operators, and drops brackets."""
    table: dict[int, str | None] = {ord(ch): None for ch in _DROPPED_AFTER_NUMBERS}
    for symbols, reading in _SYMBOL_READINGS.items():
        for ch in symbols:
            table[ord(ch)] = reading
    return table
