"""The trained weights (data/model.json) and the softmax over them; plain Python, no numpy needed.

The file is written by `python -m myna.train.emotion_text` (multinomial logistic regression over
the features of `features.py`); it holds the labels, a bias per label, and per feature one weight
per label.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

MODEL_FORMAT = "myna-text-emotion"
MODEL_VERSION = 1


@dataclass(frozen=True, eq=False)  # hashed by identity (it is cached, never compared)
class EmotionModel:
    """Linear weights over sparse features; `probabilities` is their softmax."""

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]
    ngrams: bool

    def probabilities(self, features: dict[str, float]) -> dict[str, float]:
        """Softmax of bias + weights . features, per label."""
        logits = list(self.bias)
        for name, value in features.items():
            row = self.weights.get(name)
            if row is None:
                continue
            for index, weight in enumerate(row):
                logits[index] += weight * value
        top = max(logits)
        exps = [math.exp(logit - top) for logit in logits]
        total = sum(exps)
        return {label: value / total for label, value in zip(self.labels, exps, strict=True)}

    def to_json(self) -> dict:
        """The JSON object stored in data/model.json."""
        return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "labels": list(self.labels),
                "ngrams": self.ngrams, "bias": list(self.bias),
                "weights": {name: list(row) for name, row in sorted(self.weights.items())}}


def model_from_json(data: dict) -> EmotionModel:
    """Build the model from the stored JSON object (checking its format and shape)."""
    if data.get("format") != MODEL_FORMAT or data.get("version") != MODEL_VERSION:
        raise ValueError(f"not a {MODEL_FORMAT} v{MODEL_VERSION} file")
    labels = tuple(data["labels"])
    weights = {name: tuple(row) for name, row in data["weights"].items()}
    if len(data["bias"]) != len(labels) or any(len(row) != len(labels) for row in weights.values()):
        raise ValueError("emotion model: every weight row needs one value per label")
    return EmotionModel(labels, tuple(data["bias"]), weights, bool(data["ngrams"]))


@cache
def bundled_model() -> EmotionModel:
    """The model shipped with myna (loaded once)."""
    raw = resources.files("myna.text.emotion").joinpath("data", "model.json").read_text(encoding="utf-8")
    return model_from_json(json.loads(raw))
