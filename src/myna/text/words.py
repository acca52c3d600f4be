"""Which phonemes belong to which word: the word spans of a `Phonemes` result (for timing and emphasis).

English words are the tokens the g2p reads, Chinese words are jieba's words over the normalized text
(with upstream's per-character phoneme counts), Japanese words are OpenJTalk's words matched to the
phonemes by their morae. Where a count does not add up, the phonemes are shared out over the words of
the normalized text in proportion to their length, so every input still gets one span per word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from myna.text.frontend import Phonemes
from myna.text.symbols import PUNCTUATION

# Phonemes that are pauses or prosody marks, never part of a word.
SILENT_PHONES = frozenset({*PUNCTUATION, "SP", "SP2", "SP3", "UNK", "[", "]", "#", "_", "^", "$"})
_WORD = re.compile(r"[A-Za-z0-9']+|[^\W\d_A-Za-z]", re.UNICODE)
_JA_MORA_END = frozenset("aiueoAIUEO") | {"N", "cl"}


@dataclass(frozen=True)
class WordSpan:
    """A word of the text and its phonemes `start:end` in the phoneme list."""

    text: str
    start: int
    end: int


def word_spans(phonemes: Phonemes) -> list[WordSpan]:
    """One span per spoken word of `phonemes`, in order, indices into `phonemes.phones`."""
    spans: list[WordSpan] = []
    offset = 0
    for run in phonemes.segments or [phonemes]:
        spans += [WordSpan(s.text, s.start + offset, s.end + offset) for s in _run_spans(run)]
        offset += len(run.phones)
    if offset != len(phonemes.phones):  # a prefix was added around the runs (short text): realign at the end
        shift = len(phonemes.phones) - offset
        spans = [WordSpan(s.text, s.start + shift, s.end + shift) for s in spans]
    return spans


def _run_spans(run: Phonemes) -> list[WordSpan]:
    try:
        if run.language == "en":
            spans = _english(run)
        elif run.language == "zh":
            spans = _chinese(run)
        elif run.language == "ja":
            spans = _japanese(run)
        else:
            spans = None
    except Exception:  # noqa: BLE001 - any mismatch falls back to the proportional split below
        spans = None
    return spans if spans is not None else proportional_spans(run.norm_text, run.phones)


def _counted(words: list[tuple[str, int, bool]], phones: list[str]) -> list[WordSpan] | None:
    """Spans from (text, phoneme count, is a word) in order, or None if the counts miss the phonemes."""
    total = sum(count for _, count, _ in words)
    lead = len(phones) - total
    if lead < 0 or any(p not in SILENT_PHONES for p in phones[:lead]):
        return None
    spans, index = [], lead
    for text, count, is_word in words:
        if is_word and count:
            spans.append(WordSpan(text, index, index + count))
        index += count
    return spans


def _english(run: Phonemes) -> list[WordSpan] | None:
    from myna.text.en import g2p as en

    table = en.symbol_to_id("v2")
    words = []
    for token in en.tokenize(run.norm_text):
        count = 0
        for phone in en.token_phones(token):
            if phone in en._DROPPED:
                continue
            phone = {"<unk>": "UNK", "'": "-"}.get(phone, phone)
            count += phone in table
        words.append((token, count, bool(re.search("[A-Za-z]", token))))
    return _counted(words, run.phones)


def _chinese(run: Phonemes) -> list[WordSpan] | None:
    if run.word2ph is None or len(run.word2ph) != len(run.norm_text):
        return None
    import jieba_fast

    words, index = [], 0
    for word in jieba_fast.lcut(run.norm_text):
        count = sum(run.word2ph[index : index + len(word)])
        index += len(word)
        words.append((word, count, bool(_WORD.search(word))))
    return _counted(words, run.phones)


def _japanese(run: Phonemes) -> list[WordSpan] | None:
    from myna.text import ja

    text = run.norm_text.lower()
    words: list[tuple[str, int]] = []  # (text, morae); punctuation gets -1 (one phoneme of its own)
    for index, piece in enumerate(ja._NOT_READABLE.split(text)):
        if ja._READABLE.match(piece):
            words += [(w["string"], int(w["mora_size"])) for w in ja._openjtalk().run_frontend(piece)]
        marks = ja._NOT_READABLE.findall(text)
        if index < len(marks) and marks[index] != " ":
            words.append((marks[index], -1))
    spans, position = [], 0
    phones = run.phones
    for word, morae in words:
        while position < len(phones) and phones[position] in SILENT_PHONES and morae != -1:
            position += 1
        if morae == -1:
            position += 1
            continue
        start = position
        while morae > 0 and position < len(phones):
            if phones[position] in _JA_MORA_END:
                morae -= 1
            position += 1
        if morae:
            return None
        if position > start:
            spans.append(WordSpan(word, start, position))
    return spans if spans else None


def proportional_spans(norm_text: str, phones: list[str]) -> list[WordSpan]:
    """Share the spoken phonemes out over the words of `norm_text` in proportion to their length."""
    words = _WORD.findall(norm_text)
    spoken = [i for i, p in enumerate(phones) if p not in SILENT_PHONES]
    if not words or not spoken:
        return []
    total = sum(len(w) for w in words)
    spans, done = [], 0
    for k, word in enumerate(words):
        first = round(done * len(spoken) / total)
        done += len(word)
        last = round(done * len(spoken) / total) if k < len(words) - 1 else len(spoken)
        if last > first:
            spans.append(WordSpan(word, spoken[first], spoken[last - 1] + 1))
    return spans
