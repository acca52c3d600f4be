"""Japanese front-end: normalization and grapheme-to-phoneme conversion with prosody marks.

Behaviour follows upstream GPT-SoVITS (v2 path): runs of Japanese characters go through OpenJTalk
(pyopenjtalk-plus) and come back as phonemes interleaved with accent marks (`[` rise, `]` fall,
`#` accent-phrase border, `_` pause); every other character is kept as a symbol of its own, with
full-width punctuation mapped to the shared ASCII punctuation set.
"""

from __future__ import annotations

import contextlib
import io
import re
from functools import cache
from types import ModuleType

from myna.errors import InputError
from myna.text.symbols import CJK_MARK_TO_PHONE, PUNCTUATION

# One character that OpenJTalk should read: ASCII letters, any Unicode decimal digit, the iteration
# mark, kana, CJK ideographs, full-width digits 1-9 and letters, half-width katakana.
_READABLE_CLASS = (
    r"A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
)
_READABLE = re.compile(f"[{_READABLE_CLASS}]")
_NOT_READABLE = re.compile(f"[^{_READABLE_CLASS}]")

_REPEATED_PUNCTUATION = re.compile("([{0}])[{0}]+".format("".join(re.escape(mark) for mark in PUNCTUATION)))

# Symbols spelled out before g2p.
_SPELLED_SYMBOLS = (("％", "パーセント"),)

# Marks that become one of the shared punctuation phonemes.
_MARK_TO_PHONE = {**CJK_MARK_TO_PHONE, "...": "…"}

# Phonemes after which an accent-phrase border is written (substring test, as upstream does).
_BORDER_PHONES = "aeiouAEIOUNcl"
_UNVOICED_VOWELS = "AEIOU"

_CURRENT_PHONE = re.compile(r"-(.*?)\+")
_ACCENT_TYPE = re.compile(r"/A:([0-9\-]+)\+")
_MORA_POSITION = re.compile(r"\+(\d+)\+")
_MORA_POSITION_BACKWARD = re.compile(r"\+(\d+)/")
_PHRASE_MORAS = re.compile(r"/F:(\d+)_")
_QUESTION_FLAG = re.compile(r"!(\d+)_")
_MISSING_FEATURE = -50


@cache
def _openjtalk() -> ModuleType:
    """Import pyopenjtalk once, keeping its import-time notice (ONNX Runtime missing) off stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    return pyopenjtalk


def normalize(text: str) -> str:
    """Collapse runs of punctuation marks to their first mark (the only Japanese normalization)."""
    return _REPEATED_PUNCTUATION.sub(r"\1", text)


def _feature(pattern: re.Pattern[str], label: str) -> int:
    match = pattern.search(label)
    return int(match.group(1)) if match else _MISSING_FEATURE


def _prosody_phones(text: str) -> list[str]:
    """Phonemes with prosody marks for one run of Japanese text, including the `^` and end marks."""
    jtalk = _openjtalk()
    labels = jtalk.make_label(jtalk.run_frontend(text))
    last = len(labels) - 1
    phones: list[str] = []
    for index, label in enumerate(labels):
        phone = _CURRENT_PHONE.search(label).group(1)
        if phone in _UNVOICED_VOWELS:
            phone = phone.lower()
        if phone == "sil":
            if index == 0:
                phones.append("^")
            elif index == last:
                question = _feature(_QUESTION_FLAG, label)
                if question == 0:
                    phones.append("$")
                elif question == 1:
                    phones.append("?")
            else:
                raise InputError(f"OpenJTalk produced a silence inside {text!r}; rephrase the text")
            continue
        if phone == "pau":
            phones.append("_")
            continue
        phones.append(phone)

        accent_type = _feature(_ACCENT_TYPE, label)
        position = _feature(_MORA_POSITION, label)
        position_backward = _feature(_MORA_POSITION_BACKWARD, label)
        phrase_moras = _feature(_PHRASE_MORAS, label)
        next_position = _feature(_MORA_POSITION, labels[index + 1])
        if position_backward == 1 and next_position == 1 and phone in _BORDER_PHONES:
            phones.append("#")
        elif accent_type == 0 and next_position == position + 1 and position != phrase_moras:
            phones.append("]")
        elif position == 1 and next_position == 2:
            phones.append("[")
    return phones


def g2p(norm_text: str) -> list[str]:
    """Phonemes (with prosody marks and punctuation) of normalized Japanese text."""
    text = norm_text
    for symbol, spelled in _SPELLED_SYMBOLS:
        text = text.replace(symbol, spelled)
    text = text.lower()
    runs = _NOT_READABLE.split(text)
    marks = _NOT_READABLE.findall(text)
    phones: list[str] = []
    for index, run in enumerate(runs):
        if _READABLE.match(run):
            phones.extend(_prosody_phones(run)[1:-1])
        if index < len(marks) and marks[index] != " ":
            phones.append(marks[index])
    return [_MARK_TO_PHONE.get(phone, phone) for phone in phones]
