"""A plan (text spans and breaks, from plain text or SSML) -> the fragments the models speak.

Plain text is cut exactly as `textprep.split_fragments` cuts it, so a plan of plain text speaks as
before. Text whose spans differ in language, prosody or emphasis is cut at sentence marks; each span
inside a sentence is phonemized on its own and the pieces are joined into one fragment, so a marked
word stays in its sentence (one GPT pass) and its phonemes are known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from myna.engine.textprep import Fragment, check_language, phonemes_to_fragment
from myna.errors import InputError
from myna.features.bert import zero_features
from myna.text import g2p_mixed
from myna.text import symbols as sym
from myna.text.split import SENTENCE_MARKS, collapse_punctuation, split_text
from myna.text.ssml import Break, PlanItem, Span, Style
from myna.text.words import SILENT_PHONES, WordSpan, word_spans

# What each emphasis level does to its words: (gain dB, duration factor, pitch semitones).
EMPHASIS = {"strong": (6.0, 1.2, 2.0), "moderate": (3.0, 1.1, 1.0), "reduced": (-3.0, 0.9, -1.0),
            "none": (0.0, 1.0, 0.0)}


@dataclass(frozen=True)
class Part:
    """Phonemes `start:end` of a fragment spoken in `style`; `words` are the spans of its words."""

    start: int
    end: int
    style: Style
    words: tuple[WordSpan, ...] = ()


@dataclass
class PlannedFragment:
    """A fragment plus what the plan says about it: phonemes, words, styled parts, silence after it."""

    fragment: Fragment
    phones: list[str]
    words: list[WordSpan]
    parts: list[Part]
    pause_after: float

    @property
    def plain(self) -> bool:
        """True when every part is spoken as the model makes it."""
        return all(part.style.plain for part in self.parts)


@dataclass
class Layout:
    """The whole request: silence before the first fragment, then fragments (each with its pause)."""

    lead: float
    fragments: list[PlannedFragment] = field(default_factory=list)


def layout(items: list[PlanItem], lang: str, split: str, pause: float, version: str, bert, polyphones) -> Layout:
    """Turn plan items into fragments with their pauses; breaks replace the pause where they stand."""
    check_language(lang)
    entries: list[list[Span] | float] = []
    for item in items:
        if isinstance(item, Break):
            entries.append(item.seconds)
        elif entries and isinstance(entries[-1], list):
            entries[-1].append(item)
        else:
            entries.append([item])
    result = Layout(0.0)
    replaced = False  # has a break already replaced the pause after the last fragment?
    for entry in entries:
        if isinstance(entry, float):
            if not result.fragments:
                result.lead += entry
            else:
                last = result.fragments[-1]
                last.pause_after = (last.pause_after if replaced else 0.0) + entry
                replaced = True
            continue
        fragments = _block_fragments(entry, lang, split, version, bert, polyphones)
        for fragment in fragments:
            fragment.pause_after = pause
        if fragments:
            result.fragments += fragments
            replaced = False
    if not result.fragments:
        raise InputError("nothing to speak: the text holds no pronounceable words")
    return result


def _mode(span: Span, lang: str) -> str:
    return span.lang or lang


def _block_fragments(block: list[Span], lang: str, split: str, version: str, bert, polyphones) -> list[PlannedFragment]:
    first = block[0]
    uniform = all(s.phones is None and s.style == first.style and s.lang == first.lang for s in block)
    if uniform:
        return _split_uniform("".join(s.text for s in block), _mode(first, lang), first.style, split, version,
                              bert, polyphones)
    return [_join_parts(sentence, lang, version, bert, polyphones) for sentence in _sentences(block)]


def _split_uniform(text: str, mode: str, style: Style, split: str, version: str, bert, polyphones):
    """As `textprep.split_fragments`, keeping each fragment's phonemes and words."""
    if not text.strip():
        return []
    planned = []
    for piece in split_text(collapse_punctuation(text), mode, split):
        if not piece.strip():
            continue
        phonemes = g2p_mixed(piece, check_language(mode), version, polyphones)
        fragment = phonemes_to_fragment(phonemes, bert)
        if fragment.phone_ids.numel() and fragment.norm_text:
            words = word_spans(phonemes)
            planned.append(PlannedFragment(fragment, list(phonemes.phones), words,
                                           [Part(0, len(phonemes.phones), style, tuple(words))], 0.0))
    return planned


def _sentences(block: list[Span]) -> list[list[Span]]:
    """Cut a block of spans at sentence marks (inside text spans), keeping the spans' attributes."""
    sentences: list[list[Span]] = [[]]
    for span in block:
        if span.phones is not None:
            sentences[-1].append(span)
            continue
        start = 0
        for index, char in enumerate(span.text):
            if char in SENTENCE_MARKS and char not in ",，:：":
                sentences[-1].append(Span(span.text[start : index + 1], span.lang, span.style))
                sentences.append([])
                start = index + 1
        if span.text[start:]:
            sentences[-1].append(Span(span.text[start:], span.lang, span.style))
    return [s for s in sentences if any(p.phones is not None or p.text.strip() for p in s)]


def _join_parts(sentence: list[Span], lang: str, version: str, bert, polyphones) -> PlannedFragment:
    """One fragment from the spans of one sentence, each phonemized on its own."""
    ids: list[int] = []
    phones: list[str] = []
    features: list[torch.Tensor] = []
    parts: list[Part] = []
    words: list[WordSpan] = []
    texts: list[str] = []
    spans = [s for s in sentence if s.phones is not None or s.text.strip()]
    for index, span in enumerate(spans):
        if span.phones is not None:
            piece_phones = list(span.phones)
            piece_ids = sym.to_ids(piece_phones, version)
            piece_bert = zero_features(len(piece_phones))
            piece_words = [WordSpan(span.text.strip() or " ".join(span.phones), 0, len(piece_phones))]
            texts.append(span.text)
        else:
            text = span.text
            if index == len(spans) - 1 and text.rstrip()[-1:] not in SENTENCE_MARKS:
                text = text.rstrip() + ("." if _mode(span, lang) == "en" else "。")
            phonemes = g2p_mixed(text, check_language(_mode(span, lang)), version, polyphones)
            fragment = phonemes_to_fragment(phonemes, bert)
            piece_phones, piece_ids, piece_bert = list(phonemes.phones), list(phonemes.ids), fragment.bert
            piece_words = word_spans(phonemes)
            # the front-end puts a pause mark before very short text; inside a sentence it is not wanted
            drop = 0
            while len(spans) > 1 and drop < len(piece_phones) and piece_phones[drop] in (",", ".") \
                    and text.lstrip()[:1] not in ",.，。":
                drop += 1
            if drop:
                piece_phones, piece_ids, piece_bert = piece_phones[drop:], piece_ids[drop:], piece_bert[:, drop:]
                piece_words = [WordSpan(w.text, w.start - drop, w.end - drop) for w in piece_words if w.start >= drop]
            texts.append(text)
        offset = len(phones)
        shifted = tuple(WordSpan(w.text, w.start + offset, w.end + offset) for w in piece_words)
        parts.append(Part(offset, offset + len(piece_phones), span.style, shifted))
        words += shifted
        phones += piece_phones
        ids += piece_ids
        features.append(piece_bert)
    if not any(p not in SILENT_PHONES for p in phones):
        raise InputError(f"nothing to speak in {''.join(texts)[:80]!r}: it holds no pronounceable words")
    fragment = Fragment(torch.tensor(ids, dtype=torch.long), torch.cat(features, dim=1), "".join(texts))
    return PlannedFragment(fragment, phones, words, parts, 0.0)
