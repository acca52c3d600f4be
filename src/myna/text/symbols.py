"""Upstream GPT-SoVITS phoneme symbol tables (v1: 322 symbols, v2: 732) and id conversion.

The tables are facts of the checkpoint format: a phoneme's id is its index in the table the model
was trained with, so the order must never change. They live in `data/symbols.json`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from myna.errors import InputError

VERSIONS = ("v1", "v2")
# Punctuation marks that survive normalization as phonemes of their own (all languages).
PUNCTUATION = ("!", "?", "…", ",", ".", "-")
UNKNOWN = "UNK"
# Full-width (CJK) marks and the punctuation phoneme each becomes, in Chinese and Japanese alike.
CJK_MARK_TO_PHONE = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
}


@cache
def _tables() -> dict[str, tuple[str, ...]]:
    raw = json.loads(resources.files("myna.text").joinpath("data/symbols.json").read_text("utf-8"))
    return {version: tuple(raw[version]) for version in VERSIONS}


def check_version(version: str) -> str:
    """Return `version` if it names a symbol table, else raise an `InputError`."""
    if version not in VERSIONS:
        raise InputError(f"unknown symbol-table version {version!r}; expected one of {', '.join(VERSIONS)}")
    return version


def symbols(version: str = "v2") -> tuple[str, ...]:
    """The symbol table of `version`, in id order."""
    return _tables()[check_version(version)]


@cache
def symbol_to_id(version: str = "v2") -> dict[str, int]:
    """Map each symbol of `version` to its id."""
    return {symbol: index for index, symbol in enumerate(symbols(version))}


def to_ids(phones: list[str], version: str = "v2") -> list[int]:
    """Ids of `phones` in the `version` table; symbols outside it map to `UNK`."""
    table = symbol_to_id(version)
    unknown = table[UNKNOWN]
    return [table.get(phone, unknown) for phone in phones]
