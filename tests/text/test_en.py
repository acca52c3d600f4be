"""English front-end: normalization and g2p against upstream GPT-SoVITS (commit 48b1a01) outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import myna.text.en.g2p as g2p_module
from myna.text.en import oov
from myna.text.en.g2p import g2p, lookup_word, token_phones
from myna.text.en.lexicon import REMOVED_WORDS, homograph_reading, hot_entries, lexicon
from myna.text.en.normalize import collapse_marks, expand, normalize, spell_number, strip_accents
from myna.text.symbols import symbols

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "en_upstream.jsonl").read_text("utf-8").splitlines()
]
EXACT = [case for case in CASES if "known_divergence" not in case]
DIVERGENT = [case for case in CASES if "known_divergence" in case]


def test_reference_data_is_mostly_exact() -> None:
    assert len(CASES) >= 80
    assert len(DIVERGENT) <= 8


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["text"][:40])
def test_normalize_matches_upstream(case: dict) -> None:
    assert normalize(case["text"]) == case["norm_text"]


@pytest.mark.parametrize("case", EXACT, ids=lambda case: case["text"][:40])
def test_g2p_matches_upstream(case: dict) -> None:
    assert g2p(case["norm_text"]) == case["phones"]


@pytest.mark.parametrize("case", DIVERGENT, ids=lambda case: case["text"][:40])
def test_known_divergence_is_only_the_dictionary(case: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = g2p(case["norm_text"])
    assert ours == case["myna_phones"]
    assert ours != case["phones"]
    # With upstream's readings of just the listed words, the rest of the pipeline gives upstream's output.
    patched = dict(lexicon())
    patched.update({word: tuple(phones) for word, phones in case["upstream_words"].items()})
    monkeypatch.setattr(g2p_module, "lexicon", lambda: patched)
    assert g2p(case["norm_text"]) == case["phones"]


def test_phones_are_v2_symbols() -> None:
    table = set(symbols("v2"))
    for case in CASES:
        assert set(g2p(case["norm_text"])) <= table


# Recorded with g2p_en 2.1.0's G2p.predict (upstream venv).
OOV_REFERENCE = {
    "blorptastic": ["B", "L", "AO2", "R", "P", "T", "AE1", "S", "T", "IH0", "K"],
    "fleembobs": ["F", "L", "IY1", "M", "B", "AE2", "B", "Z"],
    "quibbleflax": ["K", "W", "IH1", "B", "AH0", "L", "F", "AE2", "K", "S"],
    "zorked": ["Z", "AO1", "R", "K", "T"],
    "o'brien": ["OW0", "B", "R", "AY1", "N"],
    "x-ray": ["Z", "EH1", "R", "K", "EY2"],
    "a1b": ["EY1", "B", "IY1"],
    "schwarzenegger": ["SH", "W", "AO1", "R", "Z", "AH0", "N", "EY2", "G", "ER0"],
    "qwertyuiopasdfghjklzxcvbnm": [
        "V", "ER2", "T", "IY0", "V", "AO1", "K", "S", "P", "R", "AH0", "JH", "AH0", "N", "S", "T",
    ],
    "wjpfxbctrmbhx": ["T", "AH1", "G", "F", "IH2", "NG", "K", "P", "B", "R", "AE2", "K", "S", "T"],
}


@pytest.mark.parametrize("word", sorted(OOV_REFERENCE))
def test_oov_model_matches_g2p_en(word: str) -> None:
    assert oov.predict(word) == OOV_REFERENCE[word]


def test_oov_output_is_bounded() -> None:
    assert len(oov.predict("a" * 60)) <= oov.MAX_PHONEMES
    assert oov.predict("") != []


def test_lexicon_overrides_and_removals() -> None:
    words = lexicon()
    assert set(hot_entries()) == {"chatgpt", "json", "conda"}
    assert words["json"] == ("JH", "EY1", "S", "AH0", "N")
    assert not REMOVED_WORDS & set(words)
    assert all(letter in words for letter in "abcdefghijklmnopqrstuvwxyz")


def test_homographs_with_noun_tag() -> None:
    assert homograph_reading("read", "NN") == ("R", "EH1", "D")
    assert homograph_reading("read", "VBP") == ("R", "IY1", "D")
    assert homograph_reading("complex", "JJ")[1] == "AH0"
    assert homograph_reading("hello", "NN") is None


def test_word_rules() -> None:
    assert token_phones("A") == ["EY1"]
    assert token_phones("a") == ["AH0"]
    assert token_phones("...") == ["..."]
    assert lookup_word("ai") == ["EY1", "AY1"]
    # Possessives of words without their own entry: 's after the stem's last phoneme.
    assert "bus's" not in lexicon() and "wrench's" not in lexicon()
    assert lookup_word("bus's") == ["B", "AH1", "S", "AH0", "Z"]
    assert lookup_word("wrench's")[-3:] == ["CH", "AH0", "Z"]
    assert lookup_word("bluecheck's") == lookup_word("bluecheck") + ["S"]
    assert lookup_word("xyz's") == ["EH1", "K", "S", "W", "AY1", "Z", "IY1", "Z"]
    # A compound wordsegment splits is read part by part.
    assert lookup_word("sunflowerfield") == lookup_word("sunflower") + lookup_word("field")


def test_g2p_filters_symbols() -> None:
    assert g2p("") == []
    assert g2p("it ' s") == ["IH1", "T", "-", "EH1", "S"]


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        (7, "seven"),
        (101, "one hundred one"),
        (1984, "nineteen eighty-four"),
        (1905, "nineteen oh five"),
        (1900, "nineteen hundred"),
        (2000, "two thousand"),
        (2007, "two thousand seven"),
        (2024, "twenty twenty-four"),
        (3000, "three thousand"),
    ],
)
def test_spell_number(value: int, spoken: str) -> None:
    assert spell_number(value) == spoken


def test_normalization_helpers() -> None:
    assert strip_accents("Café naïve") == "Cafe naive"
    assert collapse_marks("wait... what?!") == "wait. what?"
    assert collapse_marks("a , b") == "a  b"
    assert expand("$3.50") == "three dollars and fifty cents"
    assert expand("£1") == "one pound"
    assert expand("1/2 and 3/4") == "one half and three fourths"
    assert expand("3:30") == "three thirty a.m."
    assert expand("5km") == "five kilometers"
    assert expand("NASA") == "N A S A"
    assert expand("e.g.") == "for example"
    assert normalize("好！") == "!"
