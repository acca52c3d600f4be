"""Chinese grapheme-to-phoneme conversion, matching GPT-SoVITS (jieba_fast + pypinyin, or g2pW).

Input is normalized text (hanzi plus the punctuation marks in `PUNCTUATION`). Output is the
phoneme list and, per input character, how many phonemes it produced (`word2ph`): two for a
syllable (initial, final+tone), one for a punctuation mark.

Readings come from pypinyin word by word (upstream with g2pW off), or, given a `G2PW` predictor,
from the model sentence by sentence plus its word dictionaries (upstream's default g2pW branch).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

from myna.errors import InputError
from myna.text.symbols import PUNCTUATION, check_version
from myna.text.zh.erhua import apply_erhua
from myna.text.zh.pinyin import syllable_phones
from myna.text.zh.sandhi import apply_sandhi, merge_words
from myna.text.zh.words import initials_finals, tag_words

if TYPE_CHECKING:
    from myna.text.zh.g2pw import G2PW

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


def _split_reading(reading: str) -> tuple[str, str]:
    """(strict initial, tone-3 final) of one pinyin reading such as "hang2"; other marks twice."""
    if reading[:1].isalpha():
        return to_initials(reading), to_finals_tone3(reading, neutral_tone_with_five=True)
    return reading, reading


def _predicted_syllables(piece: str, readings: list[str], polyphones: G2PW) -> list[tuple[str, str]]:
    """(initial, tone-3 final) per character of `piece` from its predicted readings (v2 rules)."""
    syllables: list[tuple[str, str]] = []
    start = 0
    for word, pos in merge_words(tag_words(piece)):
        end = start + len(word)
        word_readings, start = readings[start:end], end
        if pos == "eng":
            continue
        pairs = [_split_reading(reading) for reading in polyphones.correct(word, word_readings)]
        initials = [initial for initial, _ in pairs]
        finals = apply_erhua(word, pos, apply_sandhi(word, pos, [final for _, final in pairs]))
        syllables.extend(zip(initials, finals, strict=False))
    return syllables


def _all_syllables(norm_text: str, version: str, polyphones: G2PW | None) -> list[tuple[str, str]]:
    """(initial, tone-3 final) pairs of every piece of `norm_text`, Latin letters dropped."""
    # Latin letters are dropped here; mixed text reaches the English front-end separately.
    pieces = [_LATIN.sub("", piece) for piece in sentences(norm_text)]
    if polyphones is None or version == "v1":  # upstream's v1 module has no g2pW branch
        return [pair for piece in pieces for pair in _syllables(piece, erhua=version != "v1")]
    predicted = iter(polyphones([piece for piece in pieces if piece]))
    return [
        pair for piece in pieces if piece for pair in _predicted_syllables(piece, next(predicted), polyphones)
    ]


def g2p(norm_text: str, version: str = "v2", polyphones: G2PW | None = None) -> tuple[list[str], list[int]]:
    """Phonemes and per-character phoneme counts (word2ph) of normalized Chinese text.

    `polyphones`: a `myna.text.zh.g2pw.G2PW` predictor to read characters as upstream's g2pW
    branch does (v2 only; v1 upstream has no such branch); None = pypinyin readings.
    """
    check_version(version)
    phones: list[str] = []
    word2ph: list[int] = []
    for initial, final in _all_syllables(norm_text, version, polyphones):
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
