"""Chinese text normalization, identical in output to upstream GPT-SoVITS's `text_normalize`.

The text is cut after clause punctuation, each piece is converted (traditional -> simplified,
full-width -> half-width, numbers, dates, units and symbols read out in hanzi), then punctuation is
mapped onto the few marks the phoneme set has, everything else but hanzi is dropped and runs of
punctuation collapse to their first mark. Upstream v1 (`text.chinese`) and v2+ (`text.chinese2`)
normalize identically.
"""

import re
from collections.abc import Callable

from myna.text.symbols import CJK_MARK_TO_PHONE
from myna.text.symbols import PUNCTUATION as _PUNCTUATION_MARKS
from myna.text.zh import dates, numbers, units
from myna.text.zh.chars import ascii_digits, halfwidth_table, symbol_table, traditional_to_simplified_table

# Marks the phoneme inventory keeps (see myna.text.symbols); all else except hanzi is dropped.
PUNCTUATION = "".join(_PUNCTUATION_MARKS)

_DROPPED_BEFORE_SPLIT = re.compile(r"[—《》【】<>{}()（）#&@“”^_|\\]")
_CLAUSE_END = re.compile(r"[：、，；。？！,;?!][”’]?")
_LINE_BREAKS = re.compile(r"\n+")
_DIGIT = re.compile("[0-9]")

_PUNCTUATION_MAP = str.maketrans(
    {
        **CJK_MARK_TO_PHONE,
        "$": ".",
        "/": ",",
        "—": "-",
        "~": "…",
        "～": "…",
        "嗯": "恩",
        "呣": "母",
    }
)
_NOT_KEPT = re.compile(f"[^\u4e00-\u9fa5{re.escape(PUNCTUATION)}]+")
_PUNCTUATION_RUN = re.compile(f"([{re.escape(PUNCTUATION)}])[{re.escape(PUNCTUATION)}]+")

_Substitution = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

# Rules applied in order to every clause; each needs a digit to match. Spelling out measures,
# arithmetic operators and powers (which add digits: x² -> x的2次方) runs between the two groups.
_DATE_AND_UNIT_SUBSTITUTIONS: tuple[_Substitution, ...] = (
    (dates.DATE_WITH_CHARS, dates.say_date_with_chars),
    (dates.DATE_WITH_SEPARATORS, dates.say_date_with_separators),
    (dates.CLOCK_RANGE, dates.say_clock_range),
    (dates.CLOCK_TIME, dates.say_clock_time),
    (units.UNIT_RANGE, units.say_unit_range),
    (units.TEMPERATURE, units.say_temperature),
)
_NUMBER_SUBSTITUTIONS: tuple[_Substitution, ...] = (
    (numbers.FRACTION, numbers.say_fraction),
    (numbers.PERCENTAGE, numbers.say_percentage),
    (numbers.MOBILE_PHONE, numbers.say_mobile_phone),
    (numbers.LANDLINE_PHONE, numbers.say_landline_phone),
    (numbers.SERVICE_PHONE, numbers.say_landline_phone),
    (numbers.NUMBER_RANGE, numbers.say_number_range),
    (numbers.NEGATIVE_INTEGER, numbers.say_negative_integer),
    (numbers.VERSION, numbers.say_version),
    (numbers.DECIMAL, numbers.say_number),
    (numbers.COUNTED, numbers.say_counted),
    (numbers.DIGIT_STRING, numbers.say_digit_string),
    (numbers.NUMBER, numbers.say_number),
)


def _apply(substitutions: tuple[_Substitution, ...], clause: str) -> str:
    """Run substitutions in order; skipped when the clause has no digit, as none could match."""
    if _DIGIT.search(clause):
        for pattern, spoken in substitutions:
            clause = pattern.sub(spoken, clause)
    return clause


def split_clauses(text: str) -> list[str]:
    """Cut text after clause punctuation and at line breaks, once spaces and brackets are removed."""
    text = _DROPPED_BEFORE_SPLIT.sub("", text.replace(" ", ""))
    text = _CLAUSE_END.sub(lambda found: found.group() + "\n", text).strip()
    return [clause.strip() for clause in _LINE_BREAKS.split(text)]


def normalize_clause(clause: str) -> str:
    """Convert one clause to simplified hanzi with numbers, units and symbols spelled out."""
    clause = clause.translate(traditional_to_simplified_table()).translate(halfwidth_table())
    clause = ascii_digits(clause)
    clause = _apply(_DATE_AND_UNIT_SUBSTITUTIONS, clause)
    clause = units.spell_measures(clause)
    clause = numbers.spell_arithmetic(clause)
    clause = numbers.POWER.sub(numbers.say_power, clause)
    clause = _apply(_NUMBER_SUBSTITUTIONS, clause)
    return clause.translate(symbol_table())


def map_punctuation(clause: str) -> str:
    """Map punctuation onto `PUNCTUATION` and drop every character that is neither it nor hanzi."""
    clause = clause.replace("...", "…")  # before the one-character map, which can create "..."
    return _NOT_KEPT.sub("", clause.translate(_PUNCTUATION_MAP))


def normalize(text: str, version: str = "v2") -> str:
    """Normalize Chinese text for g2p exactly as upstream GPT-SoVITS (all model versions) does."""
    del version  # v1 and v2+ share upstream's normalizer; kept for a uniform front-end signature
    spoken = "".join(map_punctuation(normalize_clause(clause)) for clause in split_clauses(text))
    return _PUNCTUATION_RUN.sub(r"\1", spoken)
