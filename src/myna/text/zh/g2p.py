"""Chinese grapheme-to-phoneme conversion, matching GPT-SoVITS (pypinyin + jieba_fast, g2pW off).

Input is normalized text (hanzi plus the punctuation marks in `PUNCTUATION`). Output is the
phoneme list and, per input character, how many phonemes it produced (`word2ph`): two for a
syllable (initial, final+tone), one for a punctuation mark.
"""

from __future__ import annotations

import re
from functools import cache

from myna.errors import InputError
from myna.text.symbols import PUNCTUATION, check_version
from myna.text.zh.erhua import apply_erhua
from myna.text.zh.pinyin import syllable_phones
from myna.text.zh.sandhi import apply_sandhi, merge_words
from myna.text.zh.words import initials_finals, tag_words

_LATIN = re.compile("[a-zA-Z]+")


@cache
def _after_punctuation() -> re.Pattern[str]:
    marks = "".join(re.escape(mark) for mark in PUNCTUATION)
    return re.compile(f"(?<=[{marks}])\\s*")


def sentences(norm_text: str) -> list[str]:
    """Pieces of `norm_text` ending after each punctuation mark (blank pieces dropped)."""
    return [piece for piece in _after_punctuation().split(norm_text) if piece.strip()]


def _syllables(piece: str, erhua: bool) -> list[tuple[str, str]]:
    """(initial, tone-3 final) per syllable of `piece`, after regrouping and tone sandhi."""
    syllables: list[tuple[str, str]] = []
    for word, pos in merge_words(tag_words(piece)):
        if pos == "eng":
            continue
        initials, finals = initials_finals(word)
        finals = apply_sandhi(word, pos, finals)
        if erhua:
            finals = apply_erhua(word, pos, finals)
        syllables.extend(zip(initials, finals, strict=False))
    return syllables


def g2p(norm_text: str, version: str = "v2") -> tuple[list[str], list[int]]:
    """Phonemes and per-character phoneme counts (word2ph) of normalized Chinese text."""
    check_version(version)
    phones: list[str] = []
    word2ph: list[int] = []
    for piece in sentences(norm_text):
        # Latin letters are dropped here; mixed text reaches the English front-end separately.
        piece = _LATIN.sub("", piece)
        for initial, final in _syllables(piece, erhua=version != "v1"):
            if initial == final:
                if initial not in PUNCTUATION:
                    raise InputError(
                        f"cannot read {initial!r} in Chinese text {norm_text!r}; "
                        "normalize the text first (only hanzi and , . ! ? … - are accepted)"
                    )
                phones.append(initial)
                word2ph.append(1)
            else:
                phones.extend(syllable_phones(initial, final))
                word2ph.append(2)
    return phones, word2ph
