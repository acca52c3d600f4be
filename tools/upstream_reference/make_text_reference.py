"""Regenerate the text front-end's reference data (tests/text/data/*_upstream.jsonl) with upstream GPT-SoVITS.

    WORKDIR/venv/bin/python tools/upstream_reference/make_text_reference.py WORKDIR [NAME ...] [--out DIR]

NAME is one of the data sets below (default: all of them); WORKDIR an upstream workdir (README.md).
The inputs are the rows of the committed files themselves: each row's input fields are run through
upstream, the fields upstream produces are written anew and any other field (a hand-written note such
as `known_divergence`) is kept as it is. To add a case, append a row holding only its input fields
(e.g. {"text": "...", "lang": "en", "version": "v2"}) and run the script again. `--out DIR` writes
the files there instead of over the committed ones.

    frontend       text.cleaner.clean_text + cleaned_text_to_sequence, per language and version
    en             text.english.text_normalize, then text.english.g2p on its output
    ja             text.japanese.text_normalize, then text.japanese.g2p (v2, prosody marks)
    zh_normalize   text.chinese2.text_normalize (v2) or text.chinese.text_normalize (v1)
    zh_g2p         text.chinese2.g2p (v2) or text.chinese.g2p (v1) on already normalized text
    langseg        text.LangSegmenter.LangSegmenter.getTexts(text, default_lang)
    split          TextPreprocessor.pre_seg_text after replace_consecutive_punctuation ("prepare"),
                   one cut method ("cut"), split_big_text ("big")
    mixed          TextPreprocessor.get_phones_and_bert per api_v2 language mode (BERT features zero)
    zh_g2pw        text.chinese2 with g2pW on: upstream's g2pW converter on the self-made model in
                   g2pw_dummy/ (word dictionary g2pw_dummy/G2PWModel/polyphonic*.rep); `readings` is
                   the converter's raw output per sentence (built last: it turns g2pW on)
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

import upstream

DATA = Path(__file__).resolve().parents[2] / "tests" / "text" / "data"


def frontend(fe, row: dict) -> dict:
    phones, word2ph, norm_text = fe.clean_text(row["text"], row["lang"], row["version"])
    return {"phones": list(phones), "ids": fe.to_ids(phones, row["version"]),
            "word2ph": list(word2ph) if word2ph is not None else None, "norm_text": norm_text}


def english(fe, row: dict) -> dict:
    norm_text = fe.english.text_normalize(row["text"])
    return {"norm_text": norm_text, "phones": fe.english.g2p(norm_text)}


def japanese(fe, row: dict) -> dict:
    norm_text = fe.japanese.text_normalize(row["text"])
    return {"norm_text": norm_text, "phones": fe.japanese.g2p(norm_text)}


def zh_normalize(fe, row: dict) -> dict:
    module = fe.chinese if row["version"] == "v1" else fe.chinese2
    return {"norm_text": module.text_normalize(row["text"])}


def zh_g2p(fe, row: dict) -> dict:
    module = fe.chinese if row["version"] == "v1" else fe.chinese2
    phones, word2ph = module.g2p(row["norm_text"])
    return {"phones": phones, "word2ph": word2ph}


def langseg(fe, row: dict) -> dict:
    pieces = fe.LangSegmenter.getTexts(row["text"], row["default_lang"])
    return {"segments": [[piece["lang"], piece["text"]] for piece in pieces]}


@functools.cache
def _preprocessor():
    import torch
    from TTS_infer_pack.text_segmentation_method import get_method, split_big_text
    from TTS_infer_pack.TextPreprocessor import TextPreprocessor

    processor = TextPreprocessor(None, None, torch.device("cpu"))
    # the BERT features do not reach the recorded fields: zeros of the right shape stand in for them
    processor.get_bert_feature = lambda text, word2ph: torch.zeros(1024, sum(word2ph))
    return processor, get_method, split_big_text


def split(fe, row: dict) -> dict:
    processor, get_method, split_big_text = _preprocessor()
    if row["function"] == "cut":
        return {"result": get_method(row["method"])(row["text"])}
    if row["function"] == "big":
        return {"result": split_big_text(row["text"])}
    try:
        text = processor.replace_consecutive_punctuation(row["text"])
        return {"segments": processor.pre_seg_text(text, row["lang"], row["method"])}
    except ValueError as error:
        return {"error": type(error).__name__}


def mixed(fe, row: dict) -> dict:
    processor, _, _ = _preprocessor()
    ids, _, norm_text = processor.get_phones_and_bert(row["text"], row["mode"], row["version"])
    return {"ids": ids, "norm_text": norm_text}


def zh_g2pw(fe, row: dict) -> dict:
    converter = fe.chinese2.g2pw._g2pw
    readings = []

    def recording(sentences):
        result = converter(sentences)
        readings.extend(result)
        return result

    fe.chinese2.g2pw._g2pw = recording
    try:
        norm_text = fe.chinese2.text_normalize(row["text"])
        phones, word2ph = fe.chinese2.g2p(norm_text)
    finally:
        fe.chinese2.g2pw._g2pw = converter
    return {"norm_text": norm_text, "phones": phones, "word2ph": word2ph, "readings": readings}


# name: (how one row is computed, its input fields, the fields upstream produces), each in file order
DATASETS: dict[str, tuple[Callable, tuple[str, ...], tuple[str, ...]]] = {
    "frontend": (frontend, ("text", "lang", "version"), ("phones", "ids", "word2ph", "norm_text")),
    "en": (english, ("text",), ("norm_text", "phones")),
    "ja": (japanese, ("text",), ("norm_text", "phones")),
    "zh_normalize": (zh_normalize, ("text", "version"), ("norm_text",)),
    "zh_g2p": (zh_g2p, ("norm_text", "version"), ("phones", "word2ph")),
    "langseg": (langseg, ("text", "default_lang"), ("segments",)),
    "split": (split, ("function", "text", "lang", "method"), ("segments", "error", "result")),
    "mixed": (mixed, ("text", "mode", "version"), ("ids", "norm_text")),
    "zh_g2pw": (zh_g2pw, ("text",), ("norm_text", "phones", "word2ph", "readings")),
}


def regenerate(fe, name: str, source: Path, target: Path) -> int:
    """Recompute every row of `source` into `target`; returns how many rows changed."""
    compute, inputs, outputs = DATASETS[name]
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    changed, lines = 0, []
    for row in rows:
        with upstream.quiet():
            produced = compute(fe, row)
        new = {key: row[key] for key in inputs if key in row}
        new.update({key: produced[key] for key in outputs if key in produced})
        new.update({key: value for key, value in row.items() if key not in inputs and key not in outputs})
        changed += new != row
        lines.append(json.dumps(new, ensure_ascii=False))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream workdir (gsv/, venv/, pylib/, nltk_data/)")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"data sets to rebuild: {', '.join(DATASETS)} "
                        "(default: all)")
    parser.add_argument("--out", type=Path, help="write here instead of over the committed files")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in DATASETS]
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; expected {', '.join(DATASETS)}")
    out = (args.out or DATA).resolve()
    names = sorted(args.names or DATASETS, key=list(DATASETS).index)  # zh_g2pw (g2pW on) last
    upstream.enter(args.workdir)
    fe = upstream.front_end()
    for name in names:
        if name == "zh_g2pw":
            dummy = DATA / "g2pw_dummy"
            fe = upstream.front_end(dummy / "G2PWModel", dummy / "bert", dummy / "G2PWModel")
        filename = f"{name}_upstream.jsonl"
        changed = regenerate(fe, name, DATA / filename, out / filename)
        print(f"{out / filename}: {changed} row(s) differ from the committed file")


if __name__ == "__main__":
    main()
