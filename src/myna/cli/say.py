"""`myna say`: speak text in the voice of a reference clip (or of a voice trained with `myna train`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import add_model_args, data_dir, model_paths
from myna.errors import InputError, MynaError


def _use_default_voice(args: argparse.Namespace, err: TextIO) -> None:
    """No model named at all: speak with the default voice (its models, and its clip when --ref is absent)."""
    from myna.config import Settings
    from myna.engine.default_voice import find_default_voice

    if args.voice or args.model_dir or args.gpt or args.sovits:
        return
    default = find_default_voice(Settings.from_env().default_voice)
    if default.notice:
        err.write(f"myna say: note: {default.notice}\n")
    paths = default.paths
    args.gpt, args.sovits = str(paths.gpt), str(paths.sovits)
    for key in ("hubert", "bert", "sv"):
        setattr(args, key, getattr(args, key) or (getattr(paths, key) and str(getattr(paths, key))))
    if not args.ref:
        args.ref, args.ref_text, args.ref_lang = str(default.ref), default.ref_text, default.ref_lang
    args.lang = args.lang or default.lang
    args.ref_lang = args.ref_lang or default.ref_lang


def _use_trained_voice(args: argparse.Namespace) -> None:
    """`say --voice NAME`: take the model files (and, without --ref, the reference) from a trained voice."""
    if args.voice:
        from myna.train.pipeline import load_voice

        record = load_voice(data_dir(args), args.voice)
        args.model_dir = None
        for key in ("gpt", "sovits", "hubert", "bert", "sv"):
            setattr(args, key, getattr(args, key) or (record.get(key) and str(record[key])))
        if not args.ref:
            args.ref, args.ref_text, args.ref_lang = record["ref"], record.get("ref_text"), record.get("ref_lang", "zh")
    if not args.ref:
        raise InputError("no reference clip: pass --ref CLIP (or --voice NAME of a trained voice)")


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
        _use_default_voice(args, err)
        _use_trained_voice(args)
        args.lang, args.ref_lang = args.lang or "zh", args.ref_lang or "zh"
        from myna.config import Settings

        synth = load_synthesizer(model_paths(args), args.device, args.precision, Settings.from_env().cpu_kernels)
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


def register(commands) -> None:
    """Add the `say` subcommand."""
    say = commands.add_parser(
        "say",
        help="speak TEXT in the voice of a reference clip (zero-shot)",
        description="Synthesize TEXT ('-' reads stdin) in the voice of --ref into a 16-bit WAV file.",
    )
    say.add_argument("text", metavar="TEXT")
    say.add_argument("-o", "--out", required=True, metavar="OUT.wav")
    say.add_argument("--lang", help="language of TEXT: zh, en, ja, all_zh, all_ja, auto "
                     "(default zh; the default voice's language when no model is given)")
    say.add_argument("--ref", metavar="CLIP", help="reference clip, 3-10 s of speech (default: the voice's own clip)")
    say.add_argument("--voice", metavar="NAME", help="a voice trained with `myna train`: its models and reference")
    say.add_argument("--data-dir", help="where trained voices live (default MYNA_DATA_DIR or ~/.local/share/myna)")
    say.add_argument("--ref-text", help="transcript of the reference clip (omit for ref-free mode)")
    say.add_argument("--ref-lang", help="language of --ref-text (default zh; the default voice's with no model given)")
    say.add_argument("--aux-ref", action="append", metavar="CLIP", help="more clips whose timbre is averaged in")
    add_model_args(say, g2pw=True)
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
