"""Cut target text into the pieces synthesized one at a time, as upstream GPT-SoVITS does.

Six cutting methods exist under descriptive names; upstream's names `cut0`..`cut5` are accepted as
aliases. `prepare_segments` runs the whole target-text preparation: collapse repeated punctuation,
prefix a full stop when the first clause is very short, cut, drop empty and symbol-only pieces,
merge pieces shorter than five characters, end every piece with punctuation and split pieces that
are too long for BERT.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from myna.errors import InputError

# Marks that end a sentence (or clause) for the sentence-based methods.
SENTENCE_MARKS = frozenset("，。？！,.?!~:：—…")
# Pieces made only of these characters carry no speech and are dropped by the cutting methods.
_SILENT = frozenset("!?…,.- ")
# Marks the `punctuation` method cuts after.
_CLAUSE_MARKS = frozenset(",.;?!、，。？！：…")
# Marks whose repetitions are collapsed to one before cutting.
_REPEATABLE = "!?…,.-"

MAX_SEGMENT_CHARS = 510
_MIN_SEGMENT_CHARS = 5
_MIN_FIRST_CLAUSE_CHARS = 4

_SENTENCE_MARK_CLASS = "[" + "".join(re.escape(mark) for mark in sorted(SENTENCE_MARKS)) + "]"
_SENTENCE_MARK_SPLIT = re.compile(_SENTENCE_MARK_CLASS)
_SENTENCE_MARK_KEEP = re.compile(f"({_SENTENCE_MARK_CLASS})")
_REPEATED = re.compile("([{0}])[{0}]+".format(re.escape(_REPEATABLE)))
_EN_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")
_NON_WORD = re.compile(r"\W+")


def _is_silent(piece: str, marks: frozenset[str] = _SILENT) -> bool:
    return set(piece) <= marks


def _keep_spoken(pieces: list[str], marks: frozenset[str] = _SILENT) -> str:
    return "\n".join(piece for piece in pieces if not _is_silent(piece, marks))


def split_sentences(text: str) -> list[str]:
    """Cut `text` after every sentence mark, first ending it with `。` if it lacks one."""
    if not text:
        return []
    text = text.replace("……", "。").replace("——", "，")
    if text[-1] not in SENTENCE_MARKS:
        text += "。"
    sentences: list[str] = []
    start = 0
    for index, char in enumerate(text):
        if char in SENTENCE_MARKS:
            sentences.append(text[start : index + 1])
            start = index + 1
    return sentences


def cut_none(text: str) -> str:
    """Keep the text whole (a lone newline when it is only punctuation and spaces)."""
    return "\n" if _is_silent(text) else text


def cut_four_sentences(text: str) -> str:
    """Group sentences four by four; the remainder joins the last group."""
    text = text.strip("\n")
    sentences = split_sentences(text)
    starts = list(range(0, len(sentences), 4))
    if len(starts) > 1:
        bounds: list[int | None] = [*starts[:-1], None]
        groups = ["".join(sentences[begin:end]) for begin, end in zip(bounds, bounds[1:], strict=False)]
    else:
        groups = [text]
    return _keep_spoken(groups)


def cut_fifty_chars(text: str) -> str:
    """Group sentences until a group exceeds 50 characters; a short tail joins the group before."""
    text = text.strip("\n")
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return text
    groups: list[str] = []
    current = ""
    for sentence in sentences:
        current += sentence
        if len(current) > 50:
            groups.append(current)
            current = ""
    if current:
        groups.append(current)
    if len(groups) > 1 and len(groups[-1]) < 50:
        groups[-2:] = [groups[-2] + groups[-1]]
    return _keep_spoken(groups)


def cut_zh_period(text: str) -> str:
    """Cut at every Chinese full stop `。` (which is dropped)."""
    return _keep_spoken(text.strip("\n").strip("。").split("。"))


def cut_en_period(text: str) -> str:
    """Cut at every English period that is not a decimal point (the period is dropped)."""
    return _keep_spoken(_EN_PERIOD.split(text.strip("\n").strip(".")))


def cut_punctuation(text: str) -> str:
    """Cut after every clause mark, keeping the mark; a period between digits does not cut."""
    text = text.strip("\n")
    pieces: list[str] = []
    current: list[str] = []
    last = len(text) - 1
    for index, char in enumerate(text):
        current.append(char)
        if char not in _CLAUSE_MARKS:
            continue
        decimal_point = (
            char == "." and 0 < index < last and text[index - 1].isdigit() and text[index + 1].isdigit()
        )
        if not decimal_point:
            pieces.append("".join(current))
            current = []
    if current:
        pieces.append("".join(current))
    return _keep_spoken(pieces, _CLAUSE_MARKS)


METHODS: dict[str, Callable[[str], str]] = {
    "none": cut_none,
    "four_sentences": cut_four_sentences,
    "fifty_chars": cut_fifty_chars,
    "zh_period": cut_zh_period,
    "en_period": cut_en_period,
    "punctuation": cut_punctuation,
}
UPSTREAM_ALIASES = {
    "cut0": "none",
    "cut1": "four_sentences",
    "cut2": "fifty_chars",
    "cut3": "zh_period",
    "cut4": "en_period",
    "cut5": "punctuation",
}


def method_names() -> list[str]:
    """Names of the cutting methods (upstream's `cut0`..`cut5` are accepted too)."""
    return list(METHODS)


def get_method(name: str) -> Callable[[str], str]:
    """The cutting method called `name` (or its upstream alias); it returns pieces joined by newlines."""
    method = METHODS.get(UPSTREAM_ALIASES.get(name, name))
    if method is None:
        choices = ", ".join([*METHODS, *UPSTREAM_ALIASES])
        raise InputError(f"unknown text split method {name!r}; expected one of {choices}")
    return method


def split_long_text(text: str, max_len: int = MAX_SEGMENT_CHARS) -> list[str]:
    """Cut `text` at sentence marks into chunks of at most `max_len` characters where possible."""
    chunks: list[str] = []
    current = ""
    for part in _SENTENCE_MARK_KEEP.split(text):
        if len(current) + len(part) > max_len:
            # May emit an empty chunk when a single part is longer than max_len, as upstream does.
            chunks.append(current)
            current = part
        else:
            current += part
    if current:
        chunks.append(current)
    return chunks


def collapse_punctuation(text: str) -> str:
    """Replace each run of punctuation marks (`!?…,.-`) with its first mark."""
    return _REPEATED.sub(r"\1", text)


def first_clause(text: str) -> str:
    """The text before the first sentence mark, without surrounding whitespace."""
    return _SENTENCE_MARK_SPLIT.split(text, maxsplit=1)[0].strip()


def merge_short(pieces: list[str], threshold: int = _MIN_SEGMENT_CHARS) -> list[str]:
    """Join consecutive pieces until each has at least `threshold` characters; a short tail joins the last."""
    if len(pieces) < 2:
        return pieces
    merged: list[str] = []
    current = ""
    for piece in pieces:
        current += piece
        if len(current) >= threshold:
            merged.append(current)
            current = ""
    if current:
        if merged:
            merged[-1] += current
        else:
            merged.append(current)
    return merged


def _full_stop(lang: str) -> str:
    return "." if lang == "en" else "。"


def split_text(text: str, lang: str, method: str) -> list[str]:
    """Cut already punctuation-collapsed `text` into pieces (upstream's `pre_seg_text`)."""
    cut = get_method(method)
    text = text.strip("\n")
    if not text:
        return []
    if text[0] not in SENTENCE_MARKS and len(first_clause(text)) < _MIN_FIRST_CLAUSE_CHARS:
        text = _full_stop(lang) + text
    text = cut(text)
    while "\n\n" in text:
        text = text.replace("\n\n", "\n")
    lines = text.split("\n")
    if all(line in (" ", "\n", "") for line in lines):
        raise InputError("no text to synthesize: the input holds only punctuation or spaces; give some words")
    lines = merge_short([line for line in lines if line not in (" ", "")])
    pieces: list[str] = []
    for piece in lines:
        if not piece.strip() or not _NON_WORD.sub("", piece):
            continue
        if piece[-1] not in SENTENCE_MARKS:
            piece += _full_stop(lang)
        if len(piece) > MAX_SEGMENT_CHARS:
            pieces.extend(split_long_text(piece))
        else:
            pieces.append(piece)
    return pieces


def prepare_segments(text: str, lang: str, method: str = "punctuation") -> list[str]:
    """Target text -> the pieces to synthesize, as upstream prepares them (`[]` for blank text)."""
    return split_text(collapse_punctuation(text), lang, method)
