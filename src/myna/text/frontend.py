"""Text -> phonemes for one language, the way upstream GPT-SoVITS's per-language cleaner does it.

`g2p(text, "zh")` gives exactly the phonemes upstream's `clean_text` gives, so upstream checkpoints
see the ids they were trained on. Mixed-language input is handled in `myna.text.mixed`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from myna.errors import InputError, UnsupportedLanguageError
from myna.text import symbols as sym

if TYPE_CHECKING:
    from myna.text.zh.g2pw import G2PW

LANGUAGES = ("zh", "en", "ja")
MAX_TEXT_CHARS = 100_000
# Upstream turns these marks, in Chinese text only, into special pause symbols (every comma of the
# text then becomes that pause symbol too, as upstream does).
_PAUSE_MARKS = {"￥": "SP2", "^": "SP3"}
# English phoneme sequences shorter than this get a leading comma (as upstream).
_MIN_EN_PHONES = 4


@dataclass(frozen=True)
class Phonemes:
    """Phonemes of one text: symbols, their ids, per-character counts (zh only) and normalized text."""

    phones: list[str]
    ids: list[int]
    word2ph: list[int] | None
    norm_text: str
    language: str = "zh"
    version: str = "v2"
    segments: list[Phonemes] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The four public fields as plain JSON-ready values (the `myna phonemes` record)."""
        return {"phones": self.phones, "ids": self.ids, "word2ph": self.word2ph, "norm_text": self.norm_text}


def check_language(language: str) -> str:
    """Return `language` if a per-language front-end exists for it, else raise."""
    if language not in LANGUAGES:
        raise UnsupportedLanguageError(
            f"unsupported language {language!r}; expected one of {', '.join(LANGUAGES)} "
            "(or a mixed mode: auto, all_zh, all_ja; see myna.text.mixed)"
        )
    return language


def clean_input(text: str) -> str:
    """Drop control characters (except tab and newline) and check the length limit."""
    if not isinstance(text, str):
        raise InputError(f"text must be a str, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"text is {len(text):,} characters; the limit for one call is {MAX_TEXT_CHARS:,}. "
            "Split long input first (myna.text.split)."
        )
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cs"))


def g2p(text: str, language: str, version: str = "v2", polyphones: G2PW | None = None) -> Phonemes:
    """Phonemize `text` in one language (zh, en, ja) exactly as upstream's cleaner does.

    `polyphones`: an optional `myna.text.zh.g2pw.G2PW` for Chinese readings (upstream's g2pW branch).
    """
    check_language(language)
    sym.check_version(version)
    text = clean_input(text)
    if language == "zh":
        for mark, pause in _PAUSE_MARKS.items():
            if mark in text:
                return _zh_with_pause(text, mark, pause, version, polyphones)
        phones, word2ph, norm_text = _zh(text, version, polyphones)
    elif language == "en":
        phones, word2ph, norm_text = _en(text)
    else:
        phones, word2ph, norm_text = _ja(text)
    return _finish(phones, word2ph, norm_text, language, version)


def _finish(phones: list[str], word2ph: list[int] | None, norm_text: str, language: str, version: str) -> Phonemes:
    known = sym.symbol_to_id(version)
    phones = [p if p in known else sym.UNKNOWN for p in phones]
    return Phonemes(phones, sym.to_ids(phones, version), word2ph, norm_text, language, version)


def _zh(text: str, version: str, polyphones: G2PW | None = None) -> tuple[list[str], list[int], str]:
    from myna.text.zh import g2p as zh_g2p
    from myna.text.zh import normalize as zh_normalize

    norm_text = zh_normalize.normalize(text, version)
    phones, word2ph = zh_g2p.g2p(norm_text, version, polyphones)
    return phones, word2ph, norm_text


def _zh_with_pause(text: str, mark: str, pause: str, version: str, polyphones: G2PW | None) -> Phonemes:
    phones, word2ph, norm_text = _zh(text.replace(mark, ","), version, polyphones)
    phones = [pause if p == "," else p for p in phones]
    return _finish(phones, word2ph, norm_text, "zh", version)


def _en(text: str) -> tuple[list[str], None, str]:
    from myna.text.en import g2p as en_g2p
    from myna.text.en import normalize as en_normalize

    norm_text = en_normalize.normalize(text)
    phones = en_g2p.g2p(norm_text)
    if len(phones) < _MIN_EN_PHONES:
        phones = [","] + phones
    return phones, None, norm_text


def _ja(text: str) -> tuple[list[str], None, str]:
    from myna.text import ja

    norm_text = ja.normalize(text)
    return ja.g2p(norm_text), None, norm_text
