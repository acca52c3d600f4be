"""Units after numbers in Chinese text: temperatures, metric abbreviations, unit ranges with ~."""

import re

from myna.text.zh.verbalize import read_number

# Unit abbreviations a `~` range may carry on both ends; order matters (first alternative wins).
_RANGE_UNITS = (
    "%",
    "°C",
    "℃",
    "度",
    "摄氏度",
    "cm2",
    "cm²",
    "cm3",
    "cm³",
    "cm",
    "db",
    "ds",
    "kg",
    "km",
    "m2",
    "m²",
    "m³",
    "m3",
    "ml",
    "m",
    "mm",
    "s",
)
_UNIT_CHOICE = "(?:" + "|".join(re.escape(unit) for unit in _RANGE_UNITS) + ")"

# The look-behind only skips starts inside a digit run (never the first match there), which keeps
# the search linear on long digit runs; `m2`/`m3` may end a previous match right before a digit.
_LEFT_NUMBER = r"(?:-?(?:(?<![0-9])|(?<=m[23]))[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_RIGHT_NUMBER = r"(?:-?[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"

# 10%~20%, 5m~10m, -3℃~5℃: the ~ is read 至 (a bare 3~5 is handled later as a number range).
UNIT_RANGE = re.compile(_LEFT_NUMBER + _UNIT_CHOICE + "~" + _RIGHT_NUMBER + _UNIT_CHOICE)

TEMPERATURE = re.compile(r"(?P<minus>-?)(?<![0-9])(?P<value>[0-9]+(?:\.[0-9]+)?)(?:°C|℃|度|摄氏度)")

# Abbreviation -> reading, replaced anywhere in this order (so "mm" is never reached: 米米).
_MEASURES = (
    ("cm2", "平方厘米"),
    ("cm²", "平方厘米"),
    ("cm3", "立方厘米"),
    ("cm³", "立方厘米"),
    ("cm", "厘米"),
    ("db", "分贝"),
    ("ds", "毫秒"),
    ("kg", "千克"),
    ("km", "千米"),
    ("m2", "平方米"),
    ("m²", "平方米"),
    ("m³", "立方米"),
    ("m3", "立方米"),
    ("ml", "毫升"),
    ("m", "米"),
    ("mm", "毫米"),
    ("s", "秒"),
)


def say_unit_range(found: re.Match[str]) -> str:
    """Spoken form of a UNIT_RANGE match: only its ~ changes, to 至."""
    return found.group().replace("~", "至")


def say_temperature(found: re.Match[str]) -> str:
    """Spoken form of a TEMPERATURE match: -3℃ -> 零下三度.

    Every unit, 摄氏度 included, is read 度: upstream tests the wrong group for 摄氏度.
    """
    return ("零下" if found["minus"] else "") + read_number(found["value"]) + "度"


def spell_measures(sentence: str) -> str:
    """Replace metric abbreviations anywhere in the sentence (even inside Latin words, as upstream)."""
    for abbreviation, reading in _MEASURES:
        sentence = sentence.replace(abbreviation, reading)
    return sentence
