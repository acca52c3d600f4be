"""Record upstream GPT-SoVITS's English front-end on a list of sentences, for benchmarks/text_parity.py.

    python tools/make_en_heldout.py WORKDIR [--sentences FILE] [--out FILE]

WORKDIR holds an upstream checkout as `gsv/` (commit 48b1a01), a Python environment with upstream's
requirements as `venv/`, and `nltk_data/` with nltk's `cmudict` corpus (g2p_en refuses to import
without it). Each sentence (one per line of FILE, default benchmarks/data/en_heldout_sentences.txt)
goes through upstream's `text.cleaner.clean_text(text, "en", "v2")` and
`text.cleaned_text_to_sequence` in a child process run by WORKDIR's Python; each output line is
`{"text", "lang", "version", "phones", "ids", "word2ph", "norm_text"}` (default
benchmarks/data/en_heldout_upstream.jsonl).

Run offline, as myna runs: nltk downloads are turned off, and because nltk's POS tagger needs
downloaded data every token is tagged `NN` (only g2p_en's homographs consult the tag).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "benchmarks/data"

# Runs inside WORKDIR's Python: reads sentences as JSON lines on stdin, writes records on stdout.
CHILD = r"""
import contextlib, io, json, sys
import nltk
nltk.download = lambda *args, **kwargs: False
with contextlib.redirect_stdout(io.StringIO()):
    from text import cleaned_text_to_sequence
    from text.cleaner import clean_text
    import text.english
text.english.pos_tag = lambda tokens: [(token, "NN") for token in tokens]
for line in sys.stdin:
    sentence = json.loads(line)
    with contextlib.redirect_stdout(io.StringIO()):
        phones, word2ph, norm_text = clean_text(sentence, "en", "v2")
    record = {"phones": list(phones), "ids": cleaned_text_to_sequence(phones, "v2"),
              "word2ph": word2ph, "norm_text": norm_text}
    print(json.dumps(record, ensure_ascii=False), flush=True)
"""


def run_upstream(workdir: Path, sentences: list[str]) -> list[dict]:
    """Upstream's records for `sentences`, in order."""
    python = workdir / "venv/bin/python"
    source = workdir / "gsv"
    if not python.is_file() or not (source / "GPT_SoVITS/text/cleaner.py").is_file():
        sys.exit(f"{workdir}: expected venv/bin/python and gsv/GPT_SoVITS/text/cleaner.py")
    env = dict(os.environ)
    env["NLTK_DATA"] = str(workdir / "nltk_data")
    env["PYTHONPATH"] = os.pathsep.join([str(source / "GPT_SoVITS"), str(source)])
    env["version"] = "v2"  # upstream's text modules read it from the environment
    stdin = "".join(json.dumps(s) + "\n" for s in sentences)
    done = subprocess.run(
        [str(python), "-c", CHILD],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=source,
        env=env,
        check=False,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    if done.returncode != 0 or len(records) != len(sentences):
        sys.exit(
            f"upstream failed after {len(records)} of {len(sentences)} sentences:\n{done.stderr[-3000:]}"
        )
    return records


def main() -> None:
    """Read the sentences, run upstream on them and write the records."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream reference directory (gsv/, venv/, nltk_data/)")
    parser.add_argument("--sentences", type=Path, default=DATA / "en_heldout_sentences.txt")
    parser.add_argument("--out", type=Path, default=DATA / "en_heldout_upstream.jsonl")
    args = parser.parse_args()
    sentences = [line for line in args.sentences.read_text("utf-8").splitlines() if line.strip()]
    records = run_upstream(args.workdir.resolve(), sentences)
    with args.out.open("w", encoding="utf-8") as out:
        for sentence, record in zip(sentences, records, strict=True):
            row = {"text": sentence, "lang": "en", "version": "v2", **record}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(records)} records")


if __name__ == "__main__":
    main()
