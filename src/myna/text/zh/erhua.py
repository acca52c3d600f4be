"""Erhua (儿化) tone handling for v2: a word-final 儿 takes the tone of the syllable before it."""

from __future__ import annotations

from myna.text.zh.sandhi import word_lists

# Tags whose 儿 is left alone: adjectives, abbreviations, person names.
_UNTOUCHED_TAGS = frozenset({"a", "j", "nr"})


def apply_erhua(word: str, pos: str, finals: list[str]) -> list[str]:
    """Tone-3 finals of `word` with its final 儿 retoned as GPT-SoVITS v2 does (syllables are kept)."""
    finals = list(finals)
    last = len(finals) - 1
    # A first-tone 儿 at the end (pypinyin's reading of a lone 儿) is read in the second tone.
    if last >= 0 and word[last] == "儿" and finals[last] == "er1":
        finals[last] = "er2"
    lists = word_lists()
    if word not in lists.always_erhua and (word in lists.never_erhua or pos in _UNTOUCHED_TAGS):
        return finals
    if len(finals) != len(word) or len(finals) < 2:
        return finals
    if word[-1] == "儿" and finals[-1] in ("er2", "er5") and word[-2:] not in lists.never_erhua:
        finals[-1] = "er" + finals[-2][-1]
    return finals
