"""The bundled reference clip: what pulled upstream models clone when `say` is given no `--ref`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "reference"


@dataclass(frozen=True)
class ReferenceClip:
    """A clip with its transcript and the transcript's language."""

    path: Path
    text: str
    lang: str


def bundled_reference() -> ReferenceClip:
    """The clip shipped in myna/assets/reference (flite's slt voice, CMU licence; see its README.md)."""
    record = json.loads((BUNDLED_DIR / "ref.json").read_text(encoding="utf-8"))
    return ReferenceClip(BUNDLED_DIR / record["clip"], record["text"], record["lang"])
