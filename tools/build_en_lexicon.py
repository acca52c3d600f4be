"""Build myna's English lexicon (src/myna/text/en/data/lexicon.txt.gz) from an upstream GPT-SoVITS checkout.

    python tools/build_en_lexicon.py UPSTREAM [--out PATH]

UPSTREAM is a GPT-SoVITS source tree (or a directory holding one as `gsv/`, as the upstream
reference set-up makes), at the commit whose readings myna follows (48b1a01). Its two dictionary
files are read as upstream's English front-end reads them:

- `GPT_SoVITS/text/cmudict.rep` (CMUdict 0.7b): entries from line 57 on, `WORD  PH PH ...` (two
  spaces after the word); a later line for the same word replaces an earlier one;
- `GPT_SoVITS/text/cmudict-fast.rep` (a 2021 CMUdict from cmusphinx): `WORD PH PH ...`, only for
  words 0.7b lacks, the first line of a word winning.

Words are lower-cased. Kept: words that a token of normalized English text can be (letters and
' . , ? ! -), which leaves out 0.7b's numbered alternates (`WORD(1)`) and entries such as
`#HASH-MARK`. Empty phone fields (from three spaces in a few 0.7b lines) and cmudict-fast's
trailing `# ...` comments are dropped. Upstream's hot-word overrides and removed acronyms are
applied at run time by myna (`data/hot.txt`, `lexicon.REMOVED_WORDS`), not here.

The output is gzip'd text, sorted by word (the loader bisects it), deterministic (mtime 0), with
CMUdict's copyright notice as leading `#` lines, as its licence asks.
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/myna/text/en/data/lexicon.txt.gz"
FIRST_ENTRY_LINE = 57  # upstream starts reading cmudict.rep here, after its comment header
REACHABLE = re.compile(r"[a-z'.,?!\-]+")
HEADER = """\
# English pronunciations (ARPAbet) as upstream GPT-SoVITS (commit 48b1a01) reads them: CMUdict 0.7b,
# then, for words it lacks, a 2021 CMUdict (cmusphinx). Built by tools/build_en_lexicon.py.
# Copyright (C) 1993-2015 Carnegie Mellon University. All rights reserved.
# Use and redistribution under the licence in NOTICE.txt next to this file (BSD-style, CMU);
# as selected and distributed by GPT-SoVITS, Copyright (c) 2024 RVC-Boss (MIT).
"""


def source_dir(upstream: Path) -> Path:
    """The directory holding upstream's English dictionaries."""
    for candidate in (upstream / "GPT_SoVITS/text", upstream / "gsv/GPT_SoVITS/text"):
        if (candidate / "cmudict.rep").is_file():
            return candidate
    raise SystemExit(f"no GPT_SoVITS/text/cmudict.rep under {upstream}")


def read_entries(text_dir: Path) -> dict[str, list[str]]:
    """Word -> phones, merged as upstream merges its two dictionary files."""
    entries: dict[str, list[str]] = {}
    lines = (text_dir / "cmudict.rep").read_text("utf-8", errors="replace").splitlines()
    for line in lines[FIRST_ENTRY_LINE - 1 :]:
        word, _, phones = line.strip().partition("  ")
        entries[word.lower()] = [phone for phone in phones.split(" ") if phone]
    for line in (text_dir / "cmudict-fast.rep").read_text("utf-8", errors="replace").splitlines():
        word, *phones = line.split("#", 1)[0].split()
        if phones and word.lower() not in entries:
            entries[word.lower()] = phones
    return entries


def render(entries: dict[str, list[str]]) -> bytes:
    """The lexicon file's bytes: header, then `word PH PH ...` lines sorted by word."""
    kept = sorted((w, p) for w, p in entries.items() if REACHABLE.fullmatch(w) and p)
    body = "".join(f"{word} {' '.join(phones)}\n" for word, phones in kept)
    return gzip.compress((HEADER + body).encode("utf-8"), compresslevel=9, mtime=0)


def main() -> None:
    """Read upstream's dictionaries and write the lexicon file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path, help="GPT-SoVITS checkout (or the reference workdir)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    entries = read_entries(source_dir(args.upstream))
    data = render(entries)
    args.out.write_bytes(data)
    print(f"{args.out}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
