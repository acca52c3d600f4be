"""`myna phonemes`: text -> upstream GPT-SoVITS phonemes as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from myna.errors import MynaError

_EMPTY_RECORD = {"phones": [], "ids": [], "word2ph": None, "norm_text": ""}


def _phonemizer(lang: str, version: str, mixed: bool):
    """Return a text -> Phonemes function for a language (zh, en, ja) or a mixed mode."""
    from myna.text import LANGUAGES, g2p, g2p_mixed
    from myna.text.mixed import check_mode
    from myna.text.symbols import check_version

    check_version(version)
    if lang in LANGUAGES and not mixed:
        return lambda text: g2p(text, lang, version)
    check_mode(lang)
    return lambda text: g2p_mixed(text, lang, version)


def _stdin_lines(stream: BinaryIO) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, text, error) for each line; undecodable lines carry an error instead of text."""
    for number, raw in enumerate(stream, start=1):
        raw = raw.rstrip(b"\n").rstrip(b"\r")
        try:
            yield number, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield number, None, f"not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})"


def _emit(record: dict, out: TextIO) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


def cmd_phonemes(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna phonemes`: one JSON record per text (the argument, or each stdin line)."""
    try:
        phonemize = _phonemizer(args.lang, args.version, args.mixed)
        if args.text is not None:
            _emit(phonemize(args.text).to_dict(), out)
            return 0
    except MynaError as exc:
        err.write(f"myna phonemes: {exc}\n")
        return 1
    ok = failed = 0
    for number, text, problem in _stdin_lines(stdin):
        record = _EMPTY_RECORD
        if problem is None:
            try:
                record = phonemize(text).to_dict()
            except MynaError as exc:
                problem = str(exc)
            except Exception as exc:  # a bug must not cost the user the rest of the input
                problem = f"internal error ({type(exc).__name__}: {exc}); please report it with this line"
        if problem is None:
            ok += 1
        else:
            failed += 1
            err.write(f"myna phonemes: line {number}: {problem}; wrote an empty record\n")
        _emit(record, out)
    if failed and not ok:
        err.write(f"myna phonemes: none of the {failed} input line(s) could be phonemized\n")
        return 1
    return 0


def register(commands) -> None:
    """Add the `phonemes` subcommand."""
    phon = commands.add_parser(
        "phonemes",
        help="text -> upstream GPT-SoVITS phonemes as JSON",
        description="Print {phones, ids, word2ph, norm_text} as JSON: for TEXT, or for each line of stdin.",
    )
    phon.add_argument("text", nargs="?", metavar="TEXT", help="text to phonemize (default: read lines from stdin)")
    phon.add_argument(
        "--lang",
        required=True,
        help="zh, en or ja (upstream's per-language cleaner), or a mixed mode: auto, all_zh, all_ja",
    )
    phon.add_argument("--version", default="v2", help="symbol table: v2 (default) or v1")
    phon.add_argument(
        "--mixed",
        action="store_true",
        help="with --lang zh/ja: phonemize English runs as English, as upstream's /tts does",
    )
    phon.set_defaults(handler=cmd_phonemes)
