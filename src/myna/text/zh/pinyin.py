"""Mandarin syllables -> GPT-SoVITS phoneme pairs (initial symbol, final symbol).

Upstream ships this mapping as a table (opencpop "strict" spelling). It is systematic, so it is
generated here: an inventory of the syllables that exist, plus spelling rules for the symbols.
"""

from __future__ import annotations

from functools import cache

from myna.errors import InputError

# Finals shared by several initials, in pinyin spelling (after the initial letter(s)).
_VELAR = "a ai an ang ao e ei en eng ong ou u ua uai uan uang ui un uo"
_PALATAL = "i ia ian iang iao ie in ing iong iu u uan ue un v van ve vn"
_DENTAL = "a ai an ang ao e ei en eng i ong ou u uan ui un uo"

# Which finals each initial combines with. "" is the zero initial (syllables starting with a vowel);
# y and w are the spelling initials of i-, u- and ü- syllables. ü is written v; the palatals (and y)
# also accept the plain u spelling.
_INVENTORY: dict[str, str] = {
    "": "a ai an ang ao e ei en eng er o ou",
    "b": "a ai an ang ao ei en eng i ian iao ie in ing o u",
    "p": "a ai an ang ao ei en eng i ian iao ie in ing o ou u",
    "m": "a ai an ang ao e ei en eng i ian iao ie in ing iu o ou u",
    "f": "a an ang ei en eng o ou u",
    "d": "a ai an ang ao e ei en eng i ia ian iao ie ing iu ong ou u uan ui un uo",
    "t": "a ai an ang ao e ei eng i ian iao ie ing ong ou u uan ui un uo",
    "n": "a ai an ang ao e ei en eng i ian iang iao ie in ing iu ong ou u uan un uo v ve",
    "l": "a ai an ang ao e ei eng i ia ian iang iao ie in ing iu o ong ou u uan un uo v ve",
    "g": _VELAR,
    "k": _VELAR,
    "h": _VELAR,
    "j": _PALATAL,
    "q": _PALATAL,
    "x": _PALATAL,
    "zh": _VELAR + " i",
    "ch": _VELAR.replace(" ei ", " ") + " i",
    "sh": _VELAR.replace(" ong ", " ") + " i",
    "r": "an ang ao e en eng i ong ou u ua uan ui un uo",
    "z": _DENTAL,
    "c": _DENTAL,
    "s": _DENTAL.replace(" ei ", " "),
    "y": "a an ang ao e i in ing o ong ou u v uan van ue ve un vn",
    "w": "a ai an ang ei en eng o u",
}

# Symbol for the zero initial, by the syllable's first letter.
_GLOTTAL = {"a": "AA", "e": "EE", "o": "OO"}
# After y the vowel symbols differ from the spelling: ü is spelt u, "yan" is [En], "ye" is [E].
_AFTER_Y = {"an": "En", "e": "E"}


def _final_symbol(initial: str, rest: str) -> str:
    """The final symbol of the syllable `initial + rest`."""
    if initial in ("j", "q", "x", "y") and rest.startswith("u"):
        return "v" + rest[1:]
    if initial == "y":
        return _AFTER_Y.get(rest, rest)
    if rest == "i" and initial in ("z", "c", "s"):
        return "i0"
    if rest == "i" and initial in ("zh", "ch", "sh", "r"):
        return "ir"
    return rest


@cache
def syllable_table() -> dict[str, tuple[str, str]]:
    """Every known toneless syllable (e.g. "zhi") -> (initial symbol, final symbol)."""
    table: dict[str, tuple[str, str]] = {}
    for initial, finals in _INVENTORY.items():
        for rest in finals.split():
            symbol = _GLOTTAL[rest[0]] if initial == "" else initial
            table[initial + rest] = (symbol, _final_symbol(initial, rest))
    return table


# pypinyin's strict finals write some syllables in their full form; the table uses the short one.
_CONTRACTED = {"uei": "ui", "iou": "iu", "uen": "un"}
# Zero-initial syllables whose strict final is rewritten as a whole ...
_WHOLE_SPELLING = {"i": "yi", "in": "yin", "ing": "ying", "u": "wu"}
# ... or by replacing the medial with y/w (ü -> yu).
_MEDIAL_SPELLING = {"i": "y", "u": "w", "v": "yu"}


def spell(initial: str, final: str) -> str:
    """Standard pinyin spelling of pypinyin's strict (initial, toneless final) pair."""
    if initial:
        return initial + _CONTRACTED.get(final, final)
    if final in _WHOLE_SPELLING:
        return _WHOLE_SPELLING[final]
    if final[:1] in _MEDIAL_SPELLING:
        return _MEDIAL_SPELLING[final[0]] + final[1:]
    return final


def syllable_phones(initial: str, final_with_tone: str) -> tuple[str, str]:
    """Phoneme pair for one syllable given pypinyin's strict initial and tone-3 final (e.g. "uei4")."""
    tone = final_with_tone[-1:]
    if tone not in ("1", "2", "3", "4", "5"):
        raise InputError(
            f"pinyin {initial + final_with_tone!r} has no tone 1-5; cannot convert it to phonemes"
        )
    spelling = spell(initial, final_with_tone[:-1])
    pair = syllable_table().get(spelling)
    if pair is None:
        raise InputError(
            f"pinyin syllable {spelling!r} is not in the Mandarin phoneme table; rewrite the character that reads so"
        )
    return pair[0], pair[1] + tone
