"""English text normalization, behaving like upstream GPT-SoVITS's `text.english.text_normalize`.

The rules are applied in a fixed order and each one sees the output of the previous one; several
of them have surprising effects that upstream-trained models are used to and that we therefore
keep on purpose (noted where they occur):

- ``"1990s"`` is read as a measurement, ``1990 seconds``;
- a number followed by ``". "`` becomes an ordinal (``"in 2020. Then"`` -> ``twenty twentieth,``);
- ``-`` between two single tokens is read as ``minus`` and a leading ``-5`` as ``negative 5``
  (swallowing the space before it);
- every capital letter that follows a non-space character is split off (``NASA`` -> ``N A S A``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

# Punctuation that counts as a phoneme in the v2 symbol table (ASCII dash included).
_PAUSE_MARKS = "!?…,.-"

# Full-width sentence marks folded to ASCII before anything else. Upstream's table also lists
# character classes for ; : ， and quotes, but escapes them, so only these literal bracketed
# strings are replaced; the lone characters are dropped later with everything else unsupported.
_FOLD = str.maketrans({"。": ".", "！": "!", "？": "?"})
_FOLD_LITERALS = (("[;:：，；]", ","), ('["’]', "'"))

# Upstream uses \d (any Unicode digit) only in the arithmetic and negative-number rules.
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_OPERAND = rf"(?:-?\d+(?:\.\d+)?[{_SUPERSCRIPTS}]*|\.\d+[{_SUPERSCRIPTS}]*|[A-Za-z][{_SUPERSCRIPTS}]*)"
_ARITHMETIC = re.compile(rf"({_OPERAND})\s+([-+×÷=])\s+({_OPERAND})")
_OPERATOR_WORDS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}

_LIST_NUMBER = re.compile(r"\b([0-9]+)\. ")
_LEADING_MINUS = re.compile(r"(?:^|\s+)-(\d+)")
_GROUPED_DIGITS = re.compile(r"[0-9][0-9,]+[0-9]")
_CLOCK = re.compile(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b")
_UNITS = {
    "m": ("meter", "meters"),
    "km": ("kilometer", "kilometers"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "ft": ("feet", "feet"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"),
}
# Alternatives in this order on purpose: the shorter unit is tried first and the word boundary
# after it forces backtracking to the longer one ("5min" -> "min", "5km/h" -> "km/h").
_MEASURE = re.compile(r"\b([0-9]+(\.[0-9]+)?(m|km|km/h|ft|L|tbsp|tsp|h|min|s|°C|°F))\b")
_POUNDS_BEFORE = re.compile(r"£([0-9.,]*[0-9]+)")
_POUNDS_AFTER = re.compile(r"([0-9.,]*[0-9]+)£")
_DOLLARS_BEFORE = re.compile(r"\$([0-9.,]*[0-9]+)")
_DOLLARS_AFTER = re.compile(r"([(0-9.,]*[0-9]+)\$")
_DECIMAL = re.compile(r"[0-9]+\.\s*[0-9]+")
_FRACTION = re.compile(r"[0-9]+/[0-9]+")
_ORDINAL = re.compile(r"[0-9]+(?:st|nd|rd|th)")
_DIGITS = re.compile(r"[0-9]+")
_NOT_KEPT = re.compile(r"[^ A-Za-z'.,?!\-]")
_THAT_IS = re.compile(r"i\.e\.", re.IGNORECASE)
_FOR_EXAMPLE = re.compile(r"e\.g\.", re.IGNORECASE)
_INNER_CAPITAL = re.compile(r"(?<=\S)([A-Z])")
_MARK_RUN = re.compile(rf"([{re.escape(_PAUSE_MARKS)}\s])[{re.escape(_PAUSE_MARKS)}]+")


@cache
def _engine() -> Any:
    """inflect's engine, imported on first use: importing inflect 7 takes seconds (typeguard)."""
    import inflect

    return inflect.engine()


def prepare() -> None:
    """Import inflect now, before threads synthesize (a server calls this at start-up).

    typeguard instruments inflect at import by parsing its source with `ast`, ~1.5 s, and CPython
    3.11's ast conversion is not thread-safe: a worker importing it while another thread parsed
    failed with "SystemError: AST constructor recursion depth mismatch" (a 500).
    """
    _engine()


def _words(number: int | str, **options: Any) -> str:
    """inflect's `number_to_words`; past its range (37 digits and more) the digits are read one by one.

    Upstream raises there; `number` may end in an ordinal suffix (``"21st"``), kept on the last digit.
    """
    from inflect import NumOutOfRangeError

    try:
        return _engine().number_to_words(number, **options)
    except NumOutOfRangeError:
        digits = str(number)
        head, last = re.fullmatch(r"(\d*)(\d\D*)", digits).groups()
        return " ".join([*(_engine().number_to_words(d) for d in head), _engine().number_to_words(last)])


def _list_number(match: re.Match[str]) -> str:
    return _engine().ordinal(match.group(1)) + ", "


def _arithmetic(match: re.Match[str]) -> str:
    return match.group(1) + _OPERATOR_WORDS[match.group(2)] + match.group(3)


def _clock(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    half = "a.m." if hour < 12 else "p.m."
    if hour > 12:
        hour -= 12
    words = _words(hour)
    if minute == 0:
        return f"{words} o'clock {half}"
    return f"{words} {_words(minute)} {half}"


def _measure(match: re.Match[str]) -> str:
    whole, fraction, unit = match.group(1), match.group(2), match.group(3)
    amount = int(whole.replace(unit, "").replace(".", ""))
    singular, plural = _UNITS[unit]
    name = singular if fraction is None and amount == 1 else plural
    return whole.replace(unit, " " + name)


def _currency(amount: str, major: tuple[str, str], minor: tuple[str, str]) -> str:
    """Spell `amount` (digits, optionally one decimal point) as major and minor units."""
    pieces = amount.split(".")
    if len(pieces) > 2:
        return f"{amount} {major[1]}"
    # Upstream raises on a comma or parenthesis left in a piece (",5"); its digits are read instead.
    pieces = [re.sub(r"\D", "", piece) for piece in pieces]
    units = int(pieces[0]) if pieces[0] else 0
    cents = int(pieces[1].ljust(2, "0")) if len(pieces) > 1 and pieces[1] else 0
    spoken = []
    if units:
        spoken.append(f"{units} {major[0] if units == 1 else major[1]}")
    if cents:
        spoken.append(f"{cents} {minor[0] if cents == 1 else minor[1]}")
    return " and ".join(spoken) if spoken else f"zero {major[1]}"


def _pounds(match: re.Match[str]) -> str:
    return _currency(match.group(1), ("pound", "pounds"), ("penny", "pence"))


def _dollars(match: re.Match[str]) -> str:
    return _currency(match.group(1), ("dollar", "dollars"), ("cent", "cents"))


def _decimal(match: re.Match[str]) -> str:
    integer, digits = match.group(0).split(".")
    return integer + " point " + " ".join(digits)


def _fraction(match: re.Match[str]) -> str:
    top, bottom = (int(part) for part in match.group(0).split("/"))
    top_words = _words(top)
    if bottom == 1:
        return top_words
    if bottom == 2:
        return f"{top_words} {'half' if top == 1 else 'halves'}"
    bottom_words = _engine().ordinal(_words(bottom))
    return f"{top_words} {bottom_words}{'s' if top > 1 else ''}"


def _ordinal(match: re.Match[str]) -> str:
    return _words(match.group(0))


def spell_number(value: int) -> str:
    """Read an integer as upstream does: 1001-2999 like a year, everything else as a cardinal."""
    engine = _engine()
    if not 1000 < value < 3000:
        return _words(value, andword="")
    if value == 2000:
        return "two thousand"
    if 2000 < value < 2010:
        return "two thousand " + engine.number_to_words(value % 100)
    if value % 100 == 0:
        return engine.number_to_words(value // 100) + " hundred"
    return engine.number_to_words(value, andword="", zero="oh", group=2).replace(", ", " ")


def _number(match: re.Match[str]) -> str:
    return spell_number(int(match.group(0)))


def strip_accents(text: str) -> str:
    """Drop combining marks after canonical decomposition (é -> e)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def expand(text: str) -> str:
    """Spell out numbers, money, times, units and abbreviations; drop unsupported characters."""
    text = _LIST_NUMBER.sub(_list_number, text)
    while _ARITHMETIC.search(text):
        text = _ARITHMETIC.sub(_arithmetic, text)
    text = _LEADING_MINUS.sub(lambda m: "negative " + m.group(1), text)
    text = _GROUPED_DIGITS.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _CLOCK.sub(_clock, text)
    text = _MEASURE.sub(_measure, text)
    text = _POUNDS_BEFORE.sub(_pounds, text)
    text = _POUNDS_AFTER.sub(_pounds, text)
    text = _DOLLARS_BEFORE.sub(_dollars, text)
    text = _DOLLARS_AFTER.sub(_dollars, text)
    text = _DECIMAL.sub(_decimal, text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(_ordinal, text)
    text = _DIGITS.sub(_number, text)
    text = strip_accents(text)
    text = text.replace("%", " percent")
    text = _NOT_KEPT.sub("", text)
    text = _THAT_IS.sub("that is", text)
    text = _FOR_EXAMPLE.sub("for example", text)
    return _INNER_CAPITAL.sub(r" \1", text)


def collapse_marks(text: str) -> str:
    """Keep only the first of a run of pause marks (a run after a space loses all its marks)."""
    return _MARK_RUN.sub(r"\1", text)


def normalize(text: str) -> str:
    """Normalize English `text` exactly as upstream's `text_normalize` does."""
    for literal, replacement in _FOLD_LITERALS:
        text = text.replace(literal, replacement)
    return collapse_marks(expand(text.translate(_FOLD)))
