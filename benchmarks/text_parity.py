"""Front-end parity with upstream GPT-SoVITS, and front-end speed.

    python benchmarks/text_parity.py [CASES.jsonl ...] [--show N]

Each case line holds the input `text`, `lang`, `version` and upstream's `phones`, `ids`, `word2ph`,
`norm_text`, produced by upstream commit 48b1a01's clean_text with g2pW off and POS tags NN. Default
sets, sentences the front-end was not tuned on: benchmarks/data/text_heldout_upstream.jsonl (zh, en,
ja) and benchmarks/data/en_heldout_upstream.jsonl (English; its sentences are en_heldout_sentences.txt,
recorded by tools/make_en_heldout.py). Prints per set and language: exact-match rate of the whole
record, of the phonemes alone, the first call's time in this process (cold: imports and data loads)
and lines/s after warm-up.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from myna.text import g2p

DATA = Path(__file__).parent / "data"
DEFAULTS = [DATA / "text_heldout_upstream.jsonl", DATA / "en_heldout_upstream.jsonl"]


def main() -> None:
    """Compare myna with the upstream records and print the match rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", type=Path, default=DEFAULTS)
    parser.add_argument("--show", type=int, default=5, help="divergent cases to print per language")
    args = parser.parse_args()
    sets: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in args.cases:
        for line in path.open(encoding="utf-8"):
            case = json.loads(line)
            sets[path.name, case["lang"]].append(case)
    print(f"{'lang':<5}{'set':<30}{'cases':>7}{'exact':>9}{'phones':>9}{'cold s':>8}{'lines/s':>9}")
    for (name, lang), cases in sets.items():
        start = time.perf_counter()
        g2p(cases[0]["text"], lang, cases[0]["version"])
        cold = time.perf_counter() - start
        start = time.perf_counter()
        results = [g2p(c["text"], lang, c["version"]) for c in cases]
        rate = len(cases) / (time.perf_counter() - start)
        exact = phones_ok = 0
        shown = []
        for case, got in zip(cases, results, strict=True):
            same_phones = got.phones == case["phones"] and got.ids == case["ids"]
            phones_ok += same_phones
            if same_phones and got.norm_text == case["norm_text"] and got.word2ph == case["word2ph"]:
                exact += 1
            elif len(shown) < args.show:
                shown.append((case, got))
        n = len(cases)
        print(f"{lang:<5}{name:<30}{n:>7}{exact / n:>9.1%}{phones_ok / n:>9.1%}{cold:>8.2f}{rate:>9.0f}")
        for case, got in shown:
            print(f"   {case['text']!r}\n     upstream {case['norm_text']!r} {' '.join(case['phones'])}"
                  f"\n     myna     {got.norm_text!r} {' '.join(got.phones)}")


if __name__ == "__main__":
    main()
