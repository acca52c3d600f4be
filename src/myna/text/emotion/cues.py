"""Emotion cue lexicons (data/cues_*.txt) and the matcher that finds their cues in a text.

A cue is a word or phrase that points to a label ("furious" -> angry, 担心 -> fearful). Matching
is greedy leftmost-longest, so a longer cue hides the shorter ones inside it (`don't worry` is a
calm cue, not a negated fearful one). Each match records whether it is negated (`not happy`, 不开心
without its own cue, 嬉しくない) and whether an intensifier strengthens it (`so happy`, 太开心,
とても嬉しい). English matches whole words; Chinese, Japanese and emoji match characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Labels a cue may point to; `neutral` cues mark plain informational speech.
CUE_LABELS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "calm", "whisper")

# Punctuation that ends the reach of a negator or an intensifier, and opens a clause for `^` cues.
_CLAUSE_BREAK = frozenset(",.!?;:、。()[]\"'“”「」『』《》〈〉—-~… \n\t")
# English words: letters/digits with inner apostrophes, or one punctuation mark.
_EN_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[!?,.;:]")
_EN_STOP = frozenset(",.;:!?")
_EN_SCOPE_END = frozenset({"but", "though", "although", "yet"})
# A negative ending after a Japanese cue: up to three kana of inflection, then ない/ません/ず.
_JA_NEGATED = re.compile(r"[\u3041-\u309f]{0,3}?(?:ない|なかっ|ません|ず(?![\u3041-\u309f]))")
# Intensifiers that follow the cue they strengthen (开心极了, 嬉しすぎる); they are consumed with it.
_POST_INTENSIFIERS = {"zh": ("极了", "死了", "坏了", "透了", "得很"), "ja": ("すぎ", "過ぎ")}
_NEGATION_REACH = {"en": 3, "zh": 2}  # words (en) or characters (zh) between negator and cue
_INTENSIFIER_REACH = {"en": 1, "zh": 1, "ja": 4}


@dataclass(frozen=True)
class CueMatch:
    """One cue found in a text: what it says, where, and how it is modified."""

    cue: str
    labels: tuple[str, ...]
    start: int
    end: int
    negated: bool = False
    intensified: bool = False


@dataclass(frozen=True, eq=False)  # hashed by identity: the match indexes are cached per lexicon
class Lexicon:
    """The cues of one language (`any` for emoji), plus its negators and intensifiers."""

    lang: str
    cues: dict[str, tuple[str, ...]]
    negators: frozenset[str]
    intensifiers: frozenset[str]
    # words that hold a negator without negating (特别 holds 别, 不过 is "but")
    not_negating: frozenset[str] = frozenset()

    def match(self, text: str) -> list[CueMatch]:
        """All cue matches in `text` (already normalized: NFKC, lowercase), left to right."""
        if self.lang == "en":
            return _match_words(self, text)
        return _match_chars(self, text)


def _parse(raw: str, lang: str) -> Lexicon:
    cues: dict[str, list[str]] = {}
    negators: set[str] = set()
    intensifiers: set[str] = set()
    not_negating: set[str] = set()
    section = None
    for line_number, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section not in (*CUE_LABELS, "negators", "intensifiers", "not negating"):
                raise ValueError(f"cues_{lang}.txt:{line_number}: unknown section [{section}]")
            continue
        entry = line.lower()
        if section == "negators":
            negators.add(entry)
        elif section == "intensifiers":
            intensifiers.add(entry)
        elif section == "not negating":
            not_negating.add(entry)
        elif section is not None:
            labels = cues.setdefault(entry, [])
            if section not in labels:
                labels.append(section)
        else:
            raise ValueError(f"cues_{lang}.txt:{line_number}: cue before any [section]")
    if lang == "ja":
        # a plain negative cue also matches its polite form: 我慢できない -> 我慢できません
        for cue, labels in list(cues.items()):
            if cue.endswith("ない"):
                cues.setdefault(cue[:-2] + "ません", labels)
    return Lexicon(lang, {cue: tuple(labels) for cue, labels in cues.items()},
                   frozenset(negators), frozenset(intensifiers), frozenset(not_negating))


@cache
def lexicon(lang: str) -> Lexicon:
    """The bundled lexicon of `lang` (zh, en, ja, or `any` for emoji and emoticons)."""
    raw = resources.files("myna.text.emotion").joinpath("data", f"cues_{lang}.txt").read_text(encoding="utf-8")
    return _parse(raw, lang)


# --- English: whole words ---------------------------------------------------------------------


@dataclass(frozen=True)
class _WordIndex:
    exact: dict[str, list[tuple[tuple[str, ...], str]]]  # first word -> (words, cue), longest first
    prefix: dict[str, list[tuple[tuple[str, ...], str]]]  # stem of a one-word `stem*` cue
    negators: frozenset[str]
    intensifiers: frozenset[str]


@cache
def _word_index(lex: Lexicon) -> _WordIndex:
    exact: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    prefix: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for cue in lex.cues:
        words = tuple(_EN_TOKEN.findall(cue.replace("*", "")))
        if not words:
            continue
        if cue.endswith("*") and len(words) == 1:
            prefix.setdefault(words[0], []).append((words, cue))
        else:
            exact.setdefault(words[0], []).append((words, cue))
    for table in (exact, prefix):
        for entries in table.values():
            entries.sort(key=lambda entry: -len(entry[0]))
    return _WordIndex(exact, prefix, lex.negators, lex.intensifiers)


def _words_match(tokens: list[str], at: int, words: tuple[str, ...], wildcard: bool) -> bool:
    if at + len(words) > len(tokens):
        return False
    for offset, word in enumerate(words):
        token = tokens[at + offset]
        last = offset == len(words) - 1
        if not (token == word or (wildcard and last and token.startswith(word))):
            return False
    return True


def _match_words(lex: Lexicon, text: str) -> list[CueMatch]:
    index = _word_index(lex)
    tokens = _EN_TOKEN.findall(text.replace("’", "'"))
    matches: list[CueMatch] = []
    at = 0
    while at < len(tokens):
        token = tokens[at]
        candidates = list(index.exact.get(token, ()))
        for length in range(len(token), 1, -1):
            candidates.extend(index.prefix.get(token[:length], ()))
        found = None
        for words, cue in sorted(candidates, key=lambda entry: -len(entry[0])):
            if _words_match(tokens, at, words, cue.endswith("*")):
                found = (words, cue)
                break
        if found is None:
            at += 1
            continue
        words, cue = found
        end = at + len(words)
        matches.append(CueMatch(cue, lex.cues[cue], at, end, _en_negated(index, tokens, at),
                                _en_intensified(index, tokens, at)))
        at = end
    return matches


def _en_negated(index: _WordIndex, tokens: list[str], at: int) -> bool:
    for back in range(1, _NEGATION_REACH["en"] + 1):
        if at - back < 0:
            return False
        token = tokens[at - back]
        if token in _EN_STOP or token in _EN_SCOPE_END:
            return False
        if token in index.negators or token.endswith("n't"):
            return True
    return False


def _en_intensified(index: _WordIndex, tokens: list[str], at: int) -> bool:
    return any(at - back >= 0 and tokens[at - back] in index.intensifiers
               for back in range(1, _INTENSIFIER_REACH["en"] + 1))


# --- Chinese, Japanese, emoji: characters ------------------------------------------------------


@cache
def _char_index(lex: Lexicon) -> dict[str, list[tuple[str, str, bool]]]:
    """First character -> (text to match, cue, must open a clause), longest first."""
    index: dict[str, list[tuple[str, str, bool]]] = {}
    for cue in lex.cues:
        anchored = cue.startswith("^") and len(cue) > 1
        body = cue[1:] if anchored else cue
        index.setdefault(body[0], []).append((body, cue, anchored))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    return index


def _opens_clause(text: str, at: int) -> bool:
    return at == 0 or text[at - 1] in _CLAUSE_BREAK


def _match_chars(lex: Lexicon, text: str) -> list[CueMatch]:
    index = _char_index(lex)
    post = _POST_INTENSIFIERS.get(lex.lang, ())
    masked = _not_negating_positions(lex, text)
    matches: list[CueMatch] = []
    at = 0
    while at < len(text):
        found = None
        if at in masked and at - 1 in masked:  # inside 特别: 别怕 does not start here
            at += 1
            continue
        for body, cue, anchored in index.get(text[at], ()):
            if text.startswith(body, at) and (not anchored or _opens_clause(text, at)):
                found = (body, cue)
                break
        if found is None:
            at += 1
            continue
        body, cue = found
        end = at + len(body)
        intensified = _cjk_intensified(lex, text, at)
        for suffix in post:
            if text.startswith(suffix, end):
                end += len(suffix)
                intensified = True
                break
        negated = _cjk_negated(lex, text, at, at + len(body), masked)
        matches.append(CueMatch(cue, lex.cues[cue], at, end, negated, intensified))
        at = end
    return matches


def _not_negating_positions(lex: Lexicon, text: str) -> set[int]:
    """Positions covered by words that hold a negator without negating."""
    positions: set[int] = set()
    for word in lex.not_negating:
        at = text.find(word)
        while at >= 0:
            positions.update(range(at, at + len(word)))
            at = text.find(word, at + 1)
    return positions


def _cjk_negated(lex: Lexicon, text: str, start: int, end: int, masked: set[int]) -> bool:
    if lex.lang == "ja":
        return bool(_JA_NEGATED.match(text, end))
    for gap in range(_NEGATION_REACH.get(lex.lang, 0) + 1):
        stop = start - gap
        if stop <= 0 or any(char in _CLAUSE_BREAK for char in text[stop:start]):
            break
        for negator in lex.negators:
            if text.endswith(negator, 0, stop) and (stop - 1) not in masked:
                return True
    return False


def _cjk_intensified(lex: Lexicon, text: str, start: int) -> bool:
    reach = _INTENSIFIER_REACH.get(lex.lang, 0)
    for gap in range(reach + 1):
        stop = start - gap
        if stop <= 0 or any(char in _CLAUSE_BREAK for char in text[stop:start]):
            break
        if any(text.endswith(word, 0, stop) for word in lex.intensifiers):
            return True
    return False
