"""The `myna` command line. Each subcommand parses its arguments and calls the library; no logic here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from myna import __version__
from myna.errors import InputError, MynaError

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


def _model_paths(args: argparse.Namespace):
    """The ModelPaths named on the command line (--model-dir, or the individual files)."""
    from myna.engine.loading import ModelPaths

    if args.model_dir:
        paths = ModelPaths.from_model_dir(args.model_dir, args.model_version)
        return dataclasses.replace(paths, g2pw=Path(args.g2pw)) if args.g2pw else paths
    missing = [flag for flag, value in (("--gpt", args.gpt), ("--sovits", args.sovits), ("--hubert", args.hubert)) if not value]
    if missing:
        raise InputError(
            f"no model given: pass --model-dir DIR (laid out like upstream's pretrained_models) "
            f"or all of --gpt, --sovits, --hubert (missing: {', '.join(missing)})"
        )
    return ModelPaths(Path(args.gpt), Path(args.sovits), Path(args.hubert),
                      Path(args.bert) if args.bert else None, Path(args.sv) if args.sv else None,
                      Path(args.g2pw) if args.g2pw else None)


def cmd_say(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna say`: synthesize TEXT in the voice of the reference clip into a WAV file."""
    import time

    try:
        from myna.audio.io import write_wav
        from myna.engine.loading import load_synthesizer
        from myna.engine.options import SynthesisOptions

        text = stdin.read().decode("utf-8") if args.text == "-" else args.text
        options = SynthesisOptions(
            top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
            repetition_penalty=args.repetition_penalty, seed=args.seed, speed=args.speed,
            noise_scale=args.noise_scale, split=args.split, pause=args.pause, max_tokens=args.max_tokens,
        )
        if not Path(args.out).parent.is_dir():
            raise InputError(f"{args.out}: the folder {Path(args.out).parent} does not exist")
        started = time.perf_counter()
        _quiet_transformers()
        synth = load_synthesizer(_model_paths(args), args.device)
        voice = synth.voice(args.ref, args.ref_text, args.ref_lang, args.aux_ref or ())
        for note in voice.notes:
            err.write(f"myna say: note: {note}\n")
        loaded = time.perf_counter()
        audio = synth.synthesize(text, args.lang, voice, options)
        write_wav(args.out, audio, synth.sampling_rate)
    except UnicodeDecodeError as exc:
        err.write(f"myna say: the text on stdin is not valid UTF-8 ({exc.reason})\n")
        return 1
    except MynaError as exc:
        err.write(f"myna say: {exc}\n")
        return 1
    seconds = len(audio) / synth.sampling_rate
    spent = time.perf_counter() - loaded
    err.write(f"myna say: wrote {args.out} ({seconds:.2f} s of audio in {spent:.2f} s, "
              f"real-time factor {spent / max(seconds, 1e-9):.3f}; models loaded in {loaded - started:.1f} s)\n")
    return 0


def _quiet_transformers() -> None:
    """Keep transformers' loading progress bars and notices off the terminal of a one-shot command."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `myna` command."""
    parser = argparse.ArgumentParser(prog="myna", description="Few-shot voice-cloning text-to-speech.")
    parser.add_argument("-V", "--myna-version", action="version", version=f"myna {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    say = commands.add_parser(
        "say",
        help="speak TEXT in the voice of a reference clip (zero-shot)",
        description="Synthesize TEXT ('-' reads stdin) in the voice of --ref into a 16-bit WAV file.",
    )
    say.add_argument("text", metavar="TEXT")
    say.add_argument("-o", "--out", required=True, metavar="OUT.wav")
    say.add_argument("--lang", default="zh", help="language of TEXT: zh, en, ja, all_zh, all_ja, auto (default zh)")
    say.add_argument("--ref", required=True, metavar="CLIP", help="reference clip, 3-10 s of speech")
    say.add_argument("--ref-text", help="transcript of the reference clip (omit for ref-free mode)")
    say.add_argument("--ref-lang", default="zh", help="language of --ref-text (default zh)")
    say.add_argument("--aux-ref", action="append", metavar="CLIP", help="more clips whose timbre is averaged in")
    models = say.add_argument_group("models")
    models.add_argument("--model-dir", help="directory laid out like upstream's GPT_SoVITS/pretrained_models")
    models.add_argument("--model-version", default="v2", help="with --model-dir: v1, v2, v2Pro or v2ProPlus")
    models.add_argument("--gpt", help="GPT checkpoint (.ckpt)")
    models.add_argument("--sovits", help="SoVITS checkpoint (.pth)")
    models.add_argument("--hubert", help="chinese-hubert-base directory")
    models.add_argument("--bert", help="chinese-roberta-wwm-ext-large directory (needed for Chinese text)")
    models.add_argument("--sv", help="speaker-verification checkpoint (v2Pro/v2ProPlus)")
    models.add_argument("--g2pw", help="local G2PWModel directory: read Chinese polyphones with g2pW (needs --bert)")
    models.add_argument("--device", default="cpu", help="torch device (default cpu)")
    knobs = say.add_argument_group("synthesis (defaults are upstream api_v2's)")
    knobs.add_argument("--top-k", type=int, default=15)
    knobs.add_argument("--top-p", type=float, default=1.0)
    knobs.add_argument("--temperature", type=float, default=1.0)
    knobs.add_argument("--repetition-penalty", type=float, default=1.35)
    knobs.add_argument("--seed", type=int, default=-1, help="-1 = random")
    knobs.add_argument("--speed", type=float, default=1.0)
    knobs.add_argument("--noise-scale", type=float, default=0.5)
    knobs.add_argument("--max-tokens", type=int, help="stop after this many semantic tokens per fragment")
    knobs.add_argument("--split", default="cut5", help="how to cut long text: cut0..cut5 or myna's names")
    knobs.add_argument("--pause", type=float, default=0.3, help="seconds of silence after each fragment")
    say.set_defaults(handler=cmd_say)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `myna` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, sys.stdin.buffer, sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
