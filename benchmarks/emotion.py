"""Accuracy and speed of the offline text emotion classifier (`--emotion auto`).

    python benchmarks/emotion.py [CASES.jsonl] [--errors N] [--lang-auto]

Each case line holds `text`, `lang` and the gold `label` (default: benchmarks/data/emotion_eval.jsonl,
130 sentences per language written for this benchmark before the classifier existed and never used
to train or tune it: customer service, assistant replies, narration, news and dialogue, about a third
neutral). Prints accuracy and macro-F1 per language and overall, each language's confusion matrix,
the cold start (first call: lexicons and weights load) and sentences per second after it.
`--lang-auto` classifies with `lang="auto"` (script-based detection) instead of the case's language.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT = Path(__file__).parent / "data/emotion_eval.jsonl"


def main() -> None:
    """Classify every case and print the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--errors", type=int, default=0, help="misclassified cases to print per language")
    parser.add_argument("--lang-auto", action="store_true", help="let the classifier detect the language")
    args = parser.parse_args()

    start = time.perf_counter()
    from myna.text.emotion import LABELS, classify
    from myna.text.emotion.evaluate import evaluate, load_examples

    imported = time.perf_counter() - start
    examples = load_examples(args.cases)
    start = time.perf_counter()
    classify(examples[0].text, examples[0].lang)
    cold = time.perf_counter() - start

    errors: dict[str, list[str]] = {}

    def predict(text: str, lang: str) -> str:
        return classify(text, "auto" if args.lang_auto else lang).label

    start = time.perf_counter()
    report = evaluate(examples, predict, LABELS)
    elapsed = time.perf_counter() - start
    langs = sorted({example.lang for example in examples}, key=["zh", "en", "ja"].index)
    print(f"{'lang':<5}{'cases':>7}{'accuracy':>10}{'macro-F1':>10}")
    for lang in [*langs, "all"]:
        print(f"{lang:<5}{report.total(lang):>7}{report.accuracy(lang):>10.3f}{report.macro_f1(lang):>10.3f}")
    print("\nper-label F1 (all languages): " + "  ".join(f"{label} {report.f1(label):.2f}" for label in LABELS))
    for lang in langs:
        print(f"\nconfusion matrix, {lang}:\n{report.matrix(lang)}")
    print(f"\nimport {imported * 1000:.0f} ms, first call (loads lexicons and weights) {cold * 1000:.0f} ms, "
          f"then {len(examples) / elapsed:.0f} sentences/s ({elapsed / len(examples) * 1e6:.0f} us each)")
    if args.errors:
        for example in examples:
            guess = classify(example.text, "auto" if args.lang_auto else example.lang)
            if guess.label != example.label:
                errors.setdefault(example.lang, []).append(
                    f"  {example.label:>9} -> {guess.label:<9} {guess.confidence:.2f}  {example.text}")
        for lang in langs:
            print(f"\nmisclassified, {lang}:")
            print("\n".join(errors.get(lang, [])[: args.errors]))


if __name__ == "__main__":
    main()
