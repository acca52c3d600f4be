"""SSML `<say-as>`: rewrite characters, numbers, dates and phone numbers as the words to read.

The result is ordinary text for the language's front-end (which then normalizes it as usual): English
gets words, Chinese and Japanese get digits in the form their normalizers read the intended way.
"""

from __future__ import annotations

import re

from myna.errors import InputError

KINDS = ("characters", "cardinal", "ordinal", "date", "telephone")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_PHONE_DIGITS = "零幺二三四五六七八九"  # 1 is read yao in phone numbers
_JA_DIGITS = ("ゼロ", "イチ", "ニー", "サン", "ヨン", "ゴー", "ロク", "ナナ", "ハチ", "キュー")
_DATE_FORMATS = ("ymd", "mdy", "dmy", "ym", "my", "md", "dm", "y")


def interpret(text: str, kind: str, lang: str, date_format: str | None = None) -> str:
    """The words to speak for `text` read as `kind` in `lang` (en, zh or ja)."""
    text = text.strip()
    if not text:
        raise InputError(f"say-as {kind} holds no text")
    if kind == "characters":
        return _characters(text, lang)
    if kind == "cardinal":
        return _cardinal(_integer(text, kind), lang)
    if kind == "ordinal":
        return _ordinal(_integer(text, kind), lang)
    if kind == "date":
        return _date(text, date_format, lang)
    if kind == "telephone":
        return _telephone(text, lang)
    raise InputError(f"say-as interpret-as {kind!r} is not one of {', '.join(KINDS)}")


def _integer(text: str, kind: str) -> int:
    digits = re.sub(r"[,\s_]", "", text)
    if not re.fullmatch(r"-?\d{1,15}", digits):
        raise InputError(f"say-as {kind} needs a whole number (up to 15 digits), got {text!r}")
    return int(digits)


def _characters(text: str, lang: str) -> str:
    chars = [c for c in text if not c.isspace()]
    if lang == "en":
        from myna.text.en.normalize import _words

        return " ".join(_words(int(c)) if c.isdigit() else c.upper() for c in chars)
    if lang == "zh":
        return "".join(_ZH_DIGITS[int(c)] if c.isdigit() else c for c in chars)
    return "、".join(_JA_DIGITS[int(c)] if c.isdigit() else c for c in chars)


def _cardinal(value: int, lang: str) -> str:
    if lang == "en":
        from myna.text.en.normalize import _words

        words = _words(abs(value), andword="")
        return ("minus " if value < 0 else "") + words
    return ("负" if lang == "zh" else "マイナス") + str(-value) if value < 0 else str(value)


def _ordinal(value: int, lang: str) -> str:
    if value < 0:
        raise InputError(f"say-as ordinal needs a number of zero or more, got {value}")
    if lang == "en":
        from myna.text.en.normalize import _engine, _words

        return _words(_engine().ordinal(value))
    return f"第{value}" if lang == "zh" else f"{value}番目"


def _date(text: str, date_format: str | None, lang: str) -> str:
    numbers = [int(n) for n in re.split(r"[-/.\s]+", text.strip()) if n.isdigit()]
    if date_format is None:
        date_format = "ymd" if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text) else ""
    if date_format not in _DATE_FORMATS:
        raise InputError(f"say-as date needs format= one of {', '.join(_DATE_FORMATS)} (or an ISO date "
                         f"YYYY-MM-DD), got {date_format or 'none'}")
    if len(numbers) != len(date_format) or not re.fullmatch(r"[\d\s./-]+", text):
        raise InputError(f"say-as date {text!r} does not match format {date_format}")
    parts = dict(zip(date_format, numbers, strict=True))
    if not 1 <= parts.get("m", 1) <= 12 or not 1 <= parts.get("d", 1) <= 31:
        raise InputError(f"say-as date {text!r} has no such month or day")
    year, month, day = parts.get("y"), parts.get("m"), parts.get("d")
    if lang == "en":
        from myna.text.en.normalize import _engine, _words, spell_number

        words = []
        if month is not None:
            words.append(_MONTHS[month - 1])
        if day is not None:
            words.append(_words(_engine().ordinal(day)))
        if year is not None:
            if words:
                words[-1] += ","
            words.append(spell_number(year))
        return " ".join(words)
    text = ""
    if year is not None:
        text += f"{year}年"
    if month is not None:
        text += f"{month}月"
    if day is not None:
        text += f"{day}日"
    return text


def _telephone(text: str, lang: str) -> str:
    groups = [g for g in re.split(r"[^\d+]+", text) if g]
    if not groups or not all(re.fullmatch(r"\+?\d+", g) for g in groups):
        raise InputError(f"say-as telephone needs digits (with spaces, dashes or dots between groups), got {text!r}")
    spoken = []
    for group in groups:
        plus, digits = group.startswith("+"), group.lstrip("+")
        if lang == "en":
            from myna.text.en.normalize import _words

            words = " ".join(_words(int(d)) if d != "0" else "oh" for d in digits)
            spoken.append(("plus " if plus else "") + words)
        elif lang == "zh":
            spoken.append(("加" if plus else "") + "".join(_ZH_PHONE_DIGITS[int(d)] for d in digits))
        else:
            spoken.append(("プラス" if plus else "") + "".join(_JA_DIGITS[int(d)] for d in digits))
    return {"en": ", ", "zh": "，", "ja": "、"}[lang].join(spoken)
