"""English grapheme-to-phoneme conversion, behaving like upstream GPT-SoVITS's `text.english.g2p`.

Each token of the normalized text is read by the first rule that applies:

1. no letter: the token itself (punctuation);
2. a single letter: its dictionary reading, except a capital ``A`` which is ``EY1``;
3. a homograph: g2p_en's table, choosing by POS tag. Every token is tagged ``NN`` because nltk's
   tagger needs downloaded data (the upstream reference runs the same way);
4. the dictionary (words of two letters or more);
5. up to three characters: spelled letter by letter (``a`` -> ``EY1``);
6. ``word's``: the word, then ``S``, ``AH0 Z`` or ``Z`` after its last phoneme;
7. a compound that wordsegment splits: each part by rules 4-8;
8. the neural model in `oov`.

Upstream also consults a list of names for title-case words its dictionaries lack; that list was
made from leaked personal records and is not shipped (see `data/README.md`), so such names go to
rules 5-8 here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from myna.text.en import oov
from myna.text.en.lexicon import homograph_reading, lexicon
from myna.text.symbols import symbol_to_id

POS_TAG = "NN"
_HAS_LETTER = re.compile("[a-z]")
_POSSESSIVE = re.compile(r"[a-z]+'s")
# The last phoneme of a word decides how a possessive 's sounds.
_VOICELESS = frozenset({"P", "T", "K", "F", "TH", "HH"})
_SIBILANT = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})
# Model outputs and separators that never reach the phoneme sequence.
_DROPPED = frozenset({"<pad>", "UW", "</s>", "<s>"})


# Normalized text holds only these characters (normalize.py drops the rest). On them, nltk's
# TweetTokenizer reduces to the alternatives below, tried in its order: naked domain names
# ("example.com", "Mr.smith"), words with inner apostrophes or dashes, plain words, spaced ellipsis
# dots, any other character; runs of 4+ equal non-letters are first cut to 3. Tokenizing them
# without nltk saves its import (~2 s, it imports scipy); tests compare both on random strings.
_NORMALIZED = re.compile(r"[ A-Za-z'.,?!\-]*")
_TOKEN = re.compile(
    r"""
      [A-Za-z]+(?:[.\-][A-Za-z]+){0,126}\.[A-Za-z]{2,13}\b
    | [A-Za-z][A-Za-z'\-]+[A-Za-z]
    | [A-Za-z]+
    | \.(?:\ *\.)+
    | \S
    """,
    re.VERBOSE,
)
_REPEATS = re.compile(r"([^A-Za-z])\1{3,}")


@cache
def _tweet_tokenizer() -> Callable[[str], list[str]]:
    from nltk.tokenize import TweetTokenizer

    return TweetTokenizer().tokenize


@cache
def _segmenter() -> Any:
    """wordsegment's segmenter with its unigram/bigram tables loaded (own instance, not the module's)."""
    from wordsegment import Segmenter

    segmenter = Segmenter()
    segmenter.load()
    return segmenter


def _spell(word: str) -> list[str]:
    """Letter-by-letter reading of a short unknown word; other characters pass through."""
    words = lexicon()
    phones: list[str] = []
    for ch in word:
        if ch == "a":
            phones.append("EY1")
        elif ch in words:
            phones.extend(words[ch])
        else:
            phones.append(ch)
    return phones


def _possessive(stem_phones: list[str]) -> list[str]:
    last = stem_phones[-1] if stem_phones else ""
    if last in _VOICELESS:
        return [*stem_phones, "S"]
    if last in _SIBILANT:
        return [*stem_phones, "AH0", "Z"]
    return [*stem_phones, "Z"]


def lookup_word(token: str) -> list[str]:
    """Phonemes of a word token by dictionary, spelling, possessive, compound split or the model."""
    word = token.lower()
    words = lexicon()
    if len(word) > 1 and word in words:
        return list(words[word])
    if len(word) <= 3:
        return _spell(word)
    if _POSSESSIVE.fullmatch(word):
        return _possessive(lookup_word(word[:-2]))
    parts = _segmenter().segment(word)
    if len(parts) == 1:
        return oov.predict(word)
    return [phone for part in parts for phone in lookup_word(part)]


def token_phones(token: str, tag: str = POS_TAG) -> list[str]:
    """Raw phonemes of one token (before filtering to the symbol table)."""
    word = token.lower()
    if _HAS_LETTER.search(word) is None:
        return [word]
    if len(word) == 1:
        return ["EY1"] if token == "A" else list(lexicon()[word])
    reading = homograph_reading(word, tag)
    if reading is not None:
        return list(reading)
    return lookup_word(token)


def tokenize(norm_text: str) -> list[str]:
    """Split normalized text into words and punctuation, as nltk's TweetTokenizer does."""
    if _NORMALIZED.fullmatch(norm_text):
        return _TOKEN.findall(_REPEATS.sub(r"\1\1\1", norm_text))
    return _tweet_tokenizer()(norm_text)


def g2p(norm_text: str) -> list[str]:
    """ARPAbet phonemes and punctuation of normalized English text, as v2 symbols."""
    table = symbol_to_id("v2")
    phones: list[str] = []
    for token in tokenize(norm_text):
        for phone in token_phones(token):
            if phone in _DROPPED:
                continue
            if phone == "<unk>":
                phone = "UNK"
            elif phone == "'":
                phone = "-"
            if phone in table:
                phones.append(phone)
    return phones
