"""The English pronunciation lexicon: upstream GPT-SoVITS's dictionaries, our overrides, and g2p_en's homographs.

- `data/lexicon.txt.gz` holds the readings upstream's English front-end (commit 48b1a01) looks up:
  CMUdict 0.7b, completed by a 2021 CMUdict for words 0.7b lacks, one pronunciation per word
  (built by `tools/build_en_lexicon.py` from upstream's copies; licences in `data/NOTICE.txt`).
  It is sorted by word and searched by bisection, so loading it is a decompression (~0.2 s), not a
  parse of 126,000 entries.
- `data/hot.txt` overrides individual words (upstream's hot-word list); `REMOVED_WORDS` are
  dropped, as upstream drops them.
- `g2p_en` supplies the homograph table (`homographs.en`). The package is located without being
  imported, because importing it starts an nltk download.
"""

from __future__ import annotations

import bisect
import gzip
import importlib.util
from collections.abc import Iterator, Mapping
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


class Lexicon(Mapping[str, Pronunciation]):
    """Lower-cased word -> pronunciation, read from sorted `word PH PH ...` lines plus overrides."""

    def __init__(self, lines: list[str], overrides: Mapping[str, Pronunciation], removed: frozenset[str]):
        # The lines must be sorted by word; every word character sorts after the space that ends the
        # word, so the lines' own order is the words' order and a word's line is found by bisection.
        self._lines = lines
        self._overrides = {w: p for w, p in overrides.items() if w not in removed}
        # Words whose line is not used: removed ones, and overridden ones (read from the overrides).
        self._hidden = removed | frozenset(overrides)

    def _line(self, word: str) -> str | None:
        if word in self._hidden:
            return None
        key = word + " "
        index = bisect.bisect_left(self._lines, key)
        if index < len(self._lines) and self._lines[index].startswith(key):
            return self._lines[index]
        return None

    def __getitem__(self, word: str) -> Pronunciation:
        if word in self._overrides:
            return self._overrides[word]
        line = self._line(word)
        if line is None:
            raise KeyError(word)
        return tuple(line.split()[1:])

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and (word in self._overrides or self._line(word) is not None)

    def __iter__(self) -> Iterator[str]:
        yield from self._overrides
        for line in self._lines:
            word = line.split(" ", 1)[0]
            if word not in self._hidden:
                yield word

    def __len__(self) -> int:
        return sum(1 for _ in self)


def read_entry_lines(name: str) -> list[str]:
    """The sorted entry lines of the gzip'd lexicon file `data/<name>` (its `#` header skipped)."""
    raw = resources.files("myna.text.en").joinpath(f"data/{name}").read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").splitlines()
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    return lines[start:]


@cache
def lexicon() -> Lexicon:
    """Lower-cased word -> pronunciation (ARPAbet phones), loaded once."""
    return Lexicon(read_entry_lines("lexicon.txt.gz"), hot_entries(), REMOVED_WORDS)


@cache
def hot_entries() -> dict[str, Pronunciation]:
    """Our override entries from `data/hot.txt` (`WORD PH PH ...`, `#` comment lines)."""
    text = resources.files("myna.text.en").joinpath("data/hot.txt").read_text("utf-8")
    entries: dict[str, Pronunciation] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.startswith("#"):
            entries[fields[0].lower()] = tuple(fields[1:])
    return entries


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
