"""English tokens: normalized text is split exactly as nltk's TweetTokenizer splits it, without importing nltk."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from nltk.tokenize import TweetTokenizer

from myna.text.en import g2p
from myna.text.en.normalize import normalize

DATA = Path(__file__).parent / "data"
# Pieces that exercise every rule: domains (node.js, a.b.cd), apostrophes, dashes, ellipses, long runs.
PIECES = ["a", "Ab", "node", "js", "com", "x", "ok", "I", "isn't", "rock-n-roll", "o'clock", "'", "-", ".", ",",
          "?", "!", " ", "  ", "...", ". .", "....", "!!!!", "----", "''''", "     ", "e.g", "U.S.A", "ab.cd",
          "well-", "-known", "z'", "abcdefghijklmnop"]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcXYZ '.,?!-"
    texts = []
    for _ in range(count):
        if rng.random() < 0.5:
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))))
        else:
            texts.append("".join(rng.choice(PIECES) + rng.choice(["", " ", ".", "-"]) for _ in range(rng.randint(1, 8))))
    return texts


def test_normalized_text_gives_tweet_tokenizers_tokens() -> None:
    reference = TweetTokenizer().tokenize
    real = [json.loads(line)["norm_text"] for line in (DATA / "en_upstream.jsonl").read_text().splitlines()]
    texts = real + [normalize(t) for t in real] + _random_texts(4000, seed=5)
    assert sum(g2p._NORMALIZED.fullmatch(t) is not None for t in texts) == len(texts)
    for text in texts:
        assert g2p.tokenize(text) == reference(text), text


def test_other_characters_still_go_through_nltk() -> None:
    for text in ("3.5 apples", "see https://example.com/a_b", "tab\there", "café", "a@b.com :)"):
        assert g2p._NORMALIZED.fullmatch(text) is None
        assert g2p.tokenize(text) == TweetTokenizer().tokenize(text)


def test_english_phonemes_do_not_import_nltk() -> None:
    text = "Well... it is node.js, isn't it? Rock-n-roll!!!!"
    code = ("import sys; from myna.text import g2p; "
            f"p = g2p({text!r}, 'en'); "
            "assert p.phones and 'nltk' not in sys.modules and 'scipy' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
