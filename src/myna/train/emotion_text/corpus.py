"""Training sentences for the text emotion classifier: the written sentences and their variants.

data/train_{zh,en,ja}.txt hold sentences written for myna, per label, plus openers and slot
fillers. `training_set` returns every written sentence once (slots filled) and then seeded variants
(another filler, an opener, a neutral sentence appended, the final mark changed or dropped) until
each label has `per_label` sentences. The development set (dev.jsonl) and the benchmark's
evaluation set are separate files, never read here.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from myna.text.emotion.evaluate import Example

MODEL_LABELS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "calm")
_SLOT = re.compile(r"\{(\w+)\}")
_FINAL_SWAP = {"en": {"!": ".", ".": "!"}, "zh": {"！": "。", "。": "！"}, "ja": {"！": "。", "。": "！"}}
_SEPARATOR = {"en": " ", "zh": "", "ja": ""}


@dataclass
class WrittenCorpus:
    """The sections of one language's training file."""

    lang: str
    sentences: dict[str, list[str]] = field(default_factory=dict)
    openers: dict[str, list[str]] = field(default_factory=dict)
    slots: dict[str, list[str]] = field(default_factory=dict)


@cache
def written(lang: str) -> WrittenCorpus:
    """Parse data/train_LANG.txt."""
    raw = resources.files("myna.train.emotion_text").joinpath("data", f"train_{lang}.txt").read_text(encoding="utf-8")
    corpus = WrittenCorpus(lang)
    target: list[str] | None = None
    for line_number, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            kind, _, name = line[1:-1].partition(" ")
            if kind in MODEL_LABELS and not name:
                target = corpus.sentences.setdefault(kind, [])
            elif kind == "opener":
                target = corpus.openers.setdefault(name, [])
            elif kind == "slot":
                target = corpus.slots.setdefault(name, [])
            else:
                raise ValueError(f"train_{lang}.txt:{line_number}: unknown section {line}")
            continue
        if target is None:
            raise ValueError(f"train_{lang}.txt:{line_number}: text before any section")
        target.append(line)
    return corpus


def _fill(text: str, corpus: WrittenCorpus, rng: random.Random) -> str:
    return _SLOT.sub(lambda slot: rng.choice(corpus.slots[slot.group(1)]), text)


def _join_opener(opener: str, sentence: str, lang: str) -> str:
    if lang != "en":
        return opener + sentence
    if not (sentence.startswith(("I ", "I'")) or sentence[:1].isupper() and sentence[1:2].isupper()):
        sentence = sentence[:1].lower() + sentence[1:]
    return f"{opener} {sentence}"


def _variant(sentence: str, label: str, corpus: WrittenCorpus, rng: random.Random) -> str:
    lang = corpus.lang
    text = _fill(sentence, corpus, rng)
    if rng.random() < 0.3:
        openers = corpus.openers.get(label, []) + corpus.openers.get("any", [])
        text = _join_opener(_fill(rng.choice(openers), corpus, rng), text, lang)
    roll = rng.random()
    if roll < 0.12 and text[-1] in _FINAL_SWAP[lang]:
        text = text[:-1] + _FINAL_SWAP[lang][text[-1]]
    elif roll < 0.2 and text[-1] in _FINAL_SWAP[lang]:
        text = text[:-1]
    if rng.random() < 0.25:
        tail = _fill(rng.choice(corpus.sentences["neutral"]), corpus, rng)
        text = text + _SEPARATOR[lang] + tail if rng.random() < 0.7 else tail + _SEPARATOR[lang] + text
    return text


def training_set(lang: str, per_label: int = 240, seed: int = 0) -> list[Example]:
    """Written sentences of `lang` and their seeded variants: `per_label` per model label (or all
    written sentences of a label that has more)."""
    corpus = written(lang)
    rng = random.Random(f"{seed}:{lang}")
    examples: list[Example] = []
    for label in MODEL_LABELS:
        sentences = corpus.sentences[label]
        texts = [_fill(sentence, corpus, rng) for sentence in sentences]
        while len(texts) < per_label:
            texts.append(_variant(sentences[len(texts) % len(sentences)], label, corpus, rng))
        examples.extend(Example(text, lang, label) for text in texts)
    return examples
