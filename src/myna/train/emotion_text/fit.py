"""Fit the text emotion model: multinomial logistic regression over sparse features, in numpy.

Full-batch Adam on the L2-regularized mean cross-entropy, a fixed number of steps from zero
weights, so the result depends only on the training sentences and the settings. Small enough
that a hand-written loop beats a new dependency (no scikit-learn in myna's environment).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from myna.text.emotion.evaluate import Example
from myna.text.emotion.features import extract
from myna.text.emotion.model import EmotionModel


@dataclass(frozen=True)
class FitSettings:
    """What the fit may vary: n-gram features, their minimum count, L2 strength, steps."""

    ngrams: bool = True
    min_count: int = 2
    l2: float = 1e-3
    steps: int = 400
    learning_rate: float = 0.05
    prune: float = 0.02  # weight rows whose largest magnitude is below this are not stored


def _vocabulary(rows: list[dict[str, float]], min_count: int) -> dict[str, int]:
    counts = Counter(name for row in rows for name in row)
    # n-grams need `min_count` sentences; lexicon and shape features count from one
    keep = sorted(name for name, count in counts.items() if not name.startswith("g:") or count >= min_count)
    return {name: index for index, name in enumerate(keep)}


def fit(examples: Sequence[Example], labels: Sequence[str], settings: FitSettings = FitSettings()) -> EmotionModel:
    """Train weights on `examples` (each label must be one of `labels`)."""
    rows = [extract(example.text, example.lang, ngrams=settings.ngrams) for example in examples]
    vocabulary = _vocabulary(rows, settings.min_count)
    row_ids, col_ids, values = [], [], []
    for row_index, row in enumerate(rows):
        for name, value in row.items():
            column = vocabulary.get(name)
            if column is not None:
                row_ids.append(row_index)
                col_ids.append(column)
                values.append(value)
    row_ids_a = np.asarray(row_ids, dtype=np.int64)
    col_ids_a = np.asarray(col_ids, dtype=np.int64)
    values_a = np.asarray(values, dtype=np.float64)[:, None]
    # sparse products as segment sums: entries come row by row; a stable sort groups them by column
    # (every row has a feature and every kept feature occurs, so no segment is empty)
    row_starts = np.flatnonzero(np.r_[True, row_ids_a[1:] != row_ids_a[:-1]])
    by_column = np.argsort(col_ids_a, kind="stable")
    column_starts = np.flatnonzero(np.r_[True, np.diff(col_ids_a[by_column]) != 0])
    n_rows, n_labels = len(rows), len(labels)
    target = np.zeros((n_rows, n_labels))
    target[np.arange(n_rows), [labels.index(example.label) for example in examples]] = 1.0
    # each label weighs the same in the loss, however many sentences it has
    label_weight = n_rows / (n_labels * np.maximum(target.sum(axis=0), 1.0))
    sample_weight = (target * label_weight).sum(axis=1, keepdims=True) / n_rows

    weights = np.zeros((len(vocabulary), n_labels))
    bias = np.zeros(n_labels)
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros_like(bias), np.zeros_like(bias)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, settings.steps + 1):
        logits = bias + np.add.reduceat(values_a * weights[col_ids_a], row_starts)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        error = (probabilities - target) * sample_weight
        contributions = (values_a * error[row_ids_a])[by_column]
        grad_weights = np.add.reduceat(contributions, column_starts) + settings.l2 * weights
        grad_bias = error.sum(axis=0)
        for param, grad, first, second in ((weights, grad_weights, moments[0], moments[1]),
                                           (bias, grad_bias, moments[2], moments[3])):
            first *= beta1
            first += (1 - beta1) * grad
            second *= beta2
            second += (1 - beta2) * grad * grad
            corrected = first / (1 - beta1**step)
            param -= settings.learning_rate * corrected / (np.sqrt(second / (1 - beta2**step)) + eps)

    names = sorted(vocabulary, key=vocabulary.get)
    stored = {name: tuple(round(float(w), 3) for w in weights[vocabulary[name]])
              for name in names if np.abs(weights[vocabulary[name]]).max() >= settings.prune}
    return EmotionModel(tuple(labels), tuple(round(float(b), 3) for b in bias), stored, settings.ngrams)
