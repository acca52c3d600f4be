"""Scoring a classifier against labelled sentences: accuracy per language, macro-F1, confusions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Example:
    """One labelled sentence."""

    text: str
    lang: str
    label: str


@dataclass
class Report:
    """Counts of (gold, predicted) pairs, per language and overall."""

    labels: tuple[str, ...]
    confusion: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)

    def add(self, lang: str, gold: str, predicted: str) -> None:
        """Count one prediction."""
        for key in (lang, "all"):
            table = self.confusion.setdefault(key, {})
            table[(gold, predicted)] = table.get((gold, predicted), 0) + 1

    def total(self, lang: str = "all") -> int:
        """How many sentences were scored (in `lang`)."""
        return sum(self.confusion.get(lang, {}).values())

    def accuracy(self, lang: str = "all") -> float:
        """Share of sentences whose predicted label is the gold label."""
        table = self.confusion.get(lang, {})
        total = sum(table.values())
        return sum(count for (gold, predicted), count in table.items() if gold == predicted) / total if total else 0.0

    def f1(self, label: str, lang: str = "all") -> float:
        """F1 of one label (0 when it is neither predicted nor present)."""
        table = self.confusion.get(lang, {})
        hit = table.get((label, label), 0)
        predicted = sum(count for (_, guess), count in table.items() if guess == label)
        gold = sum(count for (truth, _), count in table.items() if truth == label)
        return 2 * hit / (predicted + gold) if predicted + gold else 0.0

    def macro_f1(self, lang: str = "all") -> float:
        """Mean F1 over the labels present in the gold data of `lang`."""
        table = self.confusion.get(lang, {})
        present = [label for label in self.labels if any(gold == label for gold, _ in table)]
        return sum(self.f1(label, lang) for label in present) / len(present) if present else 0.0

    def matrix(self, lang: str = "all") -> str:
        """The confusion matrix as text: rows are gold labels, columns predictions."""
        table = self.confusion.get(lang, {})
        short = [label[:5] for label in self.labels]
        lines = ["gold\\pred  " + " ".join(f"{name:>5}" for name in short)]
        for gold in self.labels:
            row = [table.get((gold, predicted), 0) for predicted in self.labels]
            if any(row) or any(truth == gold for truth, _ in table):
                lines.append(f"{gold:<10} " + " ".join(f"{count:>5}" for count in row))
        return "\n".join(lines)


def load_examples(path: str | Path) -> list[Example]:
    """Read a JSONL file of {"text", "lang", "label"} objects."""
    examples = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            examples.append(Example(record["text"], record["lang"], record["label"]))
    return examples


def evaluate(examples: Iterable[Example], predict: Callable[[str, str], str], labels: tuple[str, ...]) -> Report:
    """Run `predict(text, lang)` over the examples and count the outcomes."""
    report = Report(labels)
    for example in examples:
        report.add(example.lang, example.label, predict(example.text, example.lang))
    return report
