"""Word segmentation (jieba_fast) and per-word pinyin (pypinyin), loaded once and memoised."""

from __future__ import annotations

import logging
from functools import cache, lru_cache
from types import ModuleType

from pypinyin import Style, lazy_pinyin

# A segmented word and its jieba part-of-speech tag, e.g. ("银行", "n").
Tagged = tuple[str, str]


@cache
def _jieba() -> ModuleType:
    """jieba_fast, with its dictionary loaded and its progress messages silenced."""
    import jieba_fast
    import jieba_fast.posseg  # noqa: F401  (registers the submodule on the package)

    # jieba_fast reports dictionary loading at DEBUG level to its own stderr handler.
    jieba_fast.setLogLevel(logging.WARNING)
    jieba_fast.initialize()
    return jieba_fast


def tag_words(text: str) -> list[Tagged]:
    """Split `text` into words with their part-of-speech tags (jieba_fast posseg, HMM on)."""
    return [(pair.word, pair.flag) for pair in _jieba().posseg.lcut(text)]


@lru_cache(maxsize=65536)
def search_split(word: str) -> tuple[str, ...]:
    """All dictionary sub-words of `word` as jieba's search-engine mode yields them."""
    return tuple(_jieba().cut_for_search(word))


@lru_cache(maxsize=65536)
def _read(word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    initials = lazy_pinyin(word, style=Style.INITIALS, neutral_tone_with_five=True)
    finals = lazy_pinyin(word, style=Style.FINALS_TONE3, neutral_tone_with_five=True)
    return tuple(initials), tuple(finals)


def initials_finals(word: str) -> tuple[list[str], list[str]]:
    """pypinyin's strict initials and tone-3 finals of `word` (neutral tone = 5), as fresh lists.

    Runs of characters without a reading (punctuation) come back as one item holding the run.
    """
    initials, finals = _read(word)
    return list(initials), list(finals)


def finals_of(word: str) -> tuple[str, ...]:
    """pypinyin's tone-3 finals of `word` (read-only)."""
    return _read(word)[1]
