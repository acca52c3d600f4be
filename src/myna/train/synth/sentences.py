"""A deterministic generator of varied English sentences for the synthetic corpus, and the held-out list.

Sentences are built from templates written for myna (statements, questions, commands, exclamations,
numbers, money, dates, percentages) over the word lists in `words.py`, and joined into longer ones.
`generate_wide_sentences` uses the same templates with most nouns, adjectives and places drawn from a
wide vocabulary instead (`wide_vocabulary`: ~16,600 common English words), so that a model trained on
them meets most words of new text: over the 586 words of the lists alone, 255 of the 329 distinct words of
the held-out sentences were never spoken in training, and a small GPT learnt the list's words, not reading.
The held-out sentences (`heldout.txt`) belong to the quality benchmark: the generators never emit one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources

from myna.train.synth import words as w

_KEY_DROP = re.compile(r"[^a-z0-9 ]+")


def sentence_key(text: str) -> str:
    """Case- and punctuation-insensitive form of a sentence, for comparing sentences."""
    return " ".join(_KEY_DROP.sub(" ", text.lower()).split())


@cache
def heldout_sentences() -> tuple[str, ...]:
    """The benchmark-only sentences (never used for training), in file order."""
    raw = resources.files("myna.train.synth").joinpath("heldout.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in raw.splitlines() if line.strip() and not line.startswith("#"))


def _third_person(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "z")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


@cache
def wide_vocabulary() -> tuple[str, ...]:
    """Common English words, most frequent first: the whole-word entries (3-12 lower-case letters) of Whisper's
    byte-pair vocabulary (bundled with the ASR model; the merges' order follows the frequency in its training
    text) that the English lexicon can pronounce (fragments such as "wor" or "destro" have no entry)."""
    from myna.features.asr import bundled_model_dir
    from myna.text.en.lexicon import lexicon

    path = bundled_model_dir() / "vocabulary.txt"
    words = lexicon()
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line[1:]  # a token that starts a word begins with U+0120 ("Ġ")
        if line.startswith("\u0120") and _WORD.fullmatch(word) and word in words:
            found.append(word)
    return tuple(dict.fromkeys(found))[_FUNCTION_WORDS:]


_WORD = re.compile(r"[a-z]{3,12}")
_FUNCTION_WORDS = 100  # the vocabulary's most frequent words ("the", "and", "that"...) fill no noun's place
_WIDE_SHARE = 0.8  # of the nouns, adjectives and places of a wide sentence


class _Maker:
    """Template functions over one random generator; each returns a clause without final punctuation.
    With `wide` words, most nouns, adjectives and places come from that list instead of `words.py`'s."""

    def __init__(self, rng: random.Random, wide: tuple[str, ...] = ()) -> None:
        self.r = rng
        self.wide = wide
        self.open_classes = (w.NOUNS, w.ADJECTIVES, w.PLACES) if wide else ()

    def pick(self, items):  # noqa: ANN001, ANN201 - tiny helper over tuples/lists of str
        if any(items is open_class for open_class in self.open_classes) and self.r.random() < _WIDE_SHARE:
            # frequent words more often, as in real text: the rank is uniform in its square root
            return self.wide[int(len(self.wide) * self.r.random() ** 2)]
        return self.r.choice(items)

    def verb(self) -> tuple[str, str]:
        base, past = self.pick(w.VERBS).split("/")
        return base, past

    def thing(self) -> str:
        noun = self.pick(w.NOUNS)
        return f"{self.pick(w.ADJECTIVES)} {noun}" if self.r.random() < 0.6 else noun

    def number(self) -> int:
        scale = self.pick((10, 100, 1000, 100000))
        return self.r.randint(2, scale)

    def statement(self) -> str:
        _, past = self.verb()
        return f"{self.pick(w.NAMES)} {past} the {self.thing()} in the {self.pick(w.PLACES)} {self.pick(w.TIMES)}"

    def habit(self) -> str:
        base, _ = self.verb()
        return f"{self.pick(w.NAMES)} {self.pick(w.ADVERBS)} {_third_person(base)} {_article(self.thing())}"

    def description(self) -> str:
        return f"the {self.pick(w.NOUNS)} near the {self.pick(w.PLACES)} looked {self.pick(w.ADJECTIVES)}"

    def feeling(self) -> str:
        return f"{self.pick(w.NAMES)} was {self.pick(w.FEELINGS)} to find {_article(self.thing())} there"

    def count(self) -> str:
        unit = self.pick(w.UNITS)
        return f"there were {self.number():,} {unit} between the {self.pick(w.PLACES)} and the {self.pick(w.PLACES)}"

    def money(self) -> str:
        cents = self.r.choice((0, 5, 25, 49, 99, self.r.randint(1, 98)))
        price = f"${self.r.randint(1, 500)}" + (f".{cents:02d}" if cents else "")
        return f"the {self.thing()} cost {price} at the {self.pick(w.PLACES)}"

    def percent(self) -> str:
        return f"about {self.r.randint(2, 98)}% of the {self.pick(w.UNITS)} were {self.pick(w.ADJECTIVES)}"

    def date(self) -> str:
        day = self.r.randint(1, 28)
        suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(day, "th")
        year = self.r.randint(1850, 2049)
        return f"{self.pick(w.NAMES)} reached the {self.pick(w.PLACES)} on {self.pick(w.MONTHS)} {day}{suffix}, {year}"

    def decimal(self) -> str:
        return f"the {self.pick(w.NOUNS)} weighs {self.r.randint(0, 60)}.{self.r.randint(1, 9)} kilograms"

    def yes_no(self) -> str:
        base, _ = self.verb()
        return f"did {self.pick(w.NAMES)} {base} the {self.thing()} {self.pick(w.TIMES)}"

    def wh_question(self) -> str:
        base, _ = self.verb()
        wh = self.pick(("why", "when", "where", "how"))
        return f"{wh} would anyone {base} {_article(self.thing())} in the {self.pick(w.PLACES)}"

    def how_many(self) -> str:
        return f"how many {self.pick(w.UNITS)} are left in the {self.pick(w.PLACES)}"

    def command(self) -> str:
        base, _ = self.verb()
        return f"please {base} the {self.thing()} {self.pick(w.ADVERBS)}"

    def directions(self) -> str:
        turn = self.pick(("left", "right"))
        return f"turn {turn} at the {self.pick(w.PLACES)} and walk {self.r.randint(2, 90)} metres"


_STATEMENTS = ("statement", "habit", "description", "feeling", "count", "money", "percent", "date", "decimal")
_QUESTIONS = ("yes_no", "wh_question", "how_many")
_COMMANDS = ("command", "directions")


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def _compose(make: _Maker) -> str:
    """One sentence: a statement (possibly joined with more clauses), a question, a command or an exclamation."""
    r = make.r
    kind = r.random()
    if kind < 0.18:
        return _capitalize(getattr(make, r.choice(_QUESTIONS))()) + "?"
    if kind < 0.30:
        body = _capitalize(getattr(make, r.choice(_COMMANDS))())
        return body + ("!" if r.random() < 0.3 else ".")
    if kind < 0.36:
        return f"{r.choice(w.INTERJECTIONS)}, {getattr(make, r.choice(_STATEMENTS))()}!"
    clauses = [getattr(make, r.choice(_STATEMENTS))()]
    for _ in range(r.choice((0, 0, 1, 1, 1, 2))):
        clauses.append(r.choice(w.CONNECTIVES) + " " + getattr(make, r.choice(_STATEMENTS))())
    text = "".join(clauses)
    if r.random() < 0.2:
        text = f"{r.choice(w.OPENERS)} {text}"
    return _capitalize(text) + "."


def generate_sentences(count: int, seed: int = 0, max_words: int = 26,
                       heldout: Iterable[str] | None = None) -> list[str]:
    """`count` distinct sentences (same seed, same list), none of them held out; at most `max_words` words.

    `heldout` defaults to `heldout_sentences()`; the benchmark's sentences are always excluded too.
    """
    return _distinct(_stream(seed), count, max_words, heldout)


def generate_wide_sentences(count: int, seed: int = 0, max_words: int = 26,
                            heldout: Iterable[str] | None = None, vocabulary: tuple[str, ...] | None = None
                            ) -> list[str]:
    """As `generate_sentences`, from another stream whose nouns, adjectives and places come mostly from
    `vocabulary` (default: `wide_vocabulary()`)."""
    if count <= 0:
        return []
    words = vocabulary if vocabulary is not None else wide_vocabulary()
    if not words:
        raise ValueError("no words to draw wide sentences from")
    return _distinct(_stream(seed, words), count, max_words, heldout)


def _distinct(stream: Iterator[str], count: int, max_words: int, heldout: Iterable[str] | None) -> list[str]:
    if count <= 0:
        return []
    held = {sentence_key(s) for s in heldout_sentences()} | {sentence_key(s) for s in heldout or ()}
    seen: set[str] = set()
    out: list[str] = []
    for sentence in stream:
        key = sentence_key(sentence)
        if key in seen or key in held or len(sentence.split()) > max_words:
            continue
        seen.add(key)
        out.append(sentence)
        if len(out) == count:
            return out
    raise AssertionError("unreachable: the sentence stream is infinite")


def _stream(seed: int, wide: tuple[str, ...] = ()) -> Iterator[str]:
    name = f"myna-synth-wide-sentences-{seed}" if wide else f"myna-synth-sentences-{seed}"
    make = _Maker(random.Random(name), wide)
    while True:
        yield _compose(make)
