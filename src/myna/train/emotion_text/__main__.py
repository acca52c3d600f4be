"""`python -m myna.train.emotion_text`: choose settings on the development set, fit, write the model."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

from myna.text.emotion import LABELS, classify
from myna.text.emotion.evaluate import Report, evaluate, load_examples
from myna.text.emotion.model import EmotionModel
from myna.train.emotion_text.corpus import MODEL_LABELS, training_set
from myna.train.emotion_text.fit import FitSettings, fit

GRID = [FitSettings(ngrams=ngrams, l2=l2) for ngrams in (False, True) for l2 in (1e-4, 1e-3, 1e-2)]


def dev_report(model: EmotionModel) -> Report:
    """The full classifier (whisper rule included) with `model`, scored on the development set."""
    path = resources.files("myna.train.emotion_text").joinpath("dev.jsonl")
    return evaluate(load_examples(str(path)), lambda text, lang: classify(text, lang, model).label, LABELS)


def main(argv: list[str] | None = None) -> int:
    """Fit every candidate setting, report each on the development set, write the best."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path,
                        default=Path(str(resources.files("myna.text.emotion").joinpath("data", "model.json"))))
    parser.add_argument("--per-label", type=int, default=240, help="training sentences per label and language")
    parser.add_argument("--only", type=int, help="fit only this entry of the grid (0-based)")
    args = parser.parse_args(argv)
    examples = [example for lang in ("zh", "en", "ja") for example in training_set(lang, args.per_label)]
    print(f"training sentences: {len(examples)}")
    grid = GRID if args.only is None else [GRID[args.only]]
    best: tuple[float, EmotionModel, FitSettings] | None = None
    for settings in grid:
        model = fit(examples, MODEL_LABELS, settings)
        report = dev_report(model)
        score = report.macro_f1()
        print(f"ngrams={settings.ngrams!s:<5} l2={settings.l2:<7g} features={len(model.weights):>6} "
              f"dev acc zh={report.accuracy('zh'):.3f} en={report.accuracy('en'):.3f} "
              f"ja={report.accuracy('ja'):.3f} all={report.accuracy():.3f} macro-F1={score:.3f}")
        if best is None or score > best[0]:
            best = (score, model, settings)
    assert best is not None
    score, model, settings = best
    args.out.write_text(json.dumps(model.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n",
                        encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB): ngrams={settings.ngrams} "
          f"l2={settings.l2:g}, dev macro-F1 {score:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
