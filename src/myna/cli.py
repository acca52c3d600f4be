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


def _data_dir(args: argparse.Namespace) -> Path:
    """--data-dir, else the configured data directory (MYNA_DATA_DIR or ~/.local/share/myna)."""
    from myna.config import Settings

    return Path(args.data_dir) if args.data_dir else Settings.from_env().data_dir


def _use_trained_voice(args: argparse.Namespace) -> None:
    """`say --voice NAME`: take the model files (and, without --ref, the reference) from a trained voice."""
    if args.voice:
        from myna.train.pipeline import load_voice

        record = load_voice(_data_dir(args), args.voice)
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
        _use_trained_voice(args)
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


def cmd_train(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna train`: prepare -> features -> SoVITS -> GPT -> export, then register the voice for `say --voice`."""
    try:
        from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
        from myna.train.pipeline import TrainRequest, train_voice

        common = {"device": args.device, "seed": args.seed}
        sovits = SoVITSTrainConfig(**common, **{k: v for k, v in (("epochs", args.sovits_epochs),
                                   ("batch_size", args.sovits_batch), ("learning_rate", args.sovits_lr)) if v})
        gpt = GPTTrainConfig(**common, **{k: v for k, v in (("epochs", args.gpt_epochs),
                             ("batch_size", args.gpt_batch), ("learning_rate", args.gpt_lr)) if v})
        request = TrainRequest(Path(args.data), Path(args.base), args.name, _data_dir(args), args.model_version,
                               sovits, gpt, args.lang)
        _quiet_transformers()
        voice = train_voice(request, progress=None if args.quiet else err)
    except MynaError as exc:
        err.write(f"myna train: {exc}\n")
        return 1
    except KeyboardInterrupt:
        err.write("\nmyna train: interrupted; run the same command again to resume from the last checkpoint\n")
        return 130
    err.write(f"myna train: voice {args.name!r} ready; try `myna say --voice {args.name} TEXT -o out.wav`\n")
    out.write(f"{voice}\n")
    return 0


def _quiet_transformers() -> None:
    """Keep transformers' loading progress bars and notices off the terminal of a one-shot command."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def cmd_serve(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna serve`: the HTTP server (settings from MYNA_* variables, overridden by flags)."""
    if args.hash_key:
        from myna.server.auth import hash_key

        out.write(f"{hash_key(args.hash_key)} tts,admin\n")
        return 0
    try:
        import uvicorn

        from myna.config import Settings
        from myna.server.app import configure_logging, create_app

        settings = Settings.from_env().with_overrides(
            host=args.host, port=args.port, data_dir=args.data_dir and Path(args.data_dir),
            model_dir=args.model_dir and Path(args.model_dir), model_version=args.model_version,
            gpt=args.gpt and Path(args.gpt), sovits=args.sovits and Path(args.sovits),
            hubert=args.hubert and Path(args.hubert), bert=args.bert and Path(args.bert), sv=args.sv and Path(args.sv),
            device=args.device, workers=args.workers, queue_size=args.queue_size,
            ref_dirs=tuple(Path(d) for d in args.ref_dir) if args.ref_dir else None,
        )
        _quiet_transformers()
        configure_logging()
        app = create_app(settings)
    except MynaError as exc:
        err.write(f"myna serve: {exc}\n")
        return 1
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=int(settings.request_timeout) + 5)
    return 0


def cmd_data_prepare(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data prepare`: recordings (or a .list) -> sliced, cleaned, transcribed utterances + .list."""
    from myna.train.prepare import PrepareOptions, prepare_dataset
    from myna.train.slicing import SliceConfig

    try:
        options = PrepareOptions(
            speaker=args.speaker, lang=args.lang, asr_model=args.asr_model and Path(args.asr_model),
            denoise=args.denoise, slicing=SliceConfig(min_seconds=args.min_seconds, max_seconds=args.max_seconds),
            device=args.device, progress=not args.quiet,
        )
        report = prepare_dataset(args.inputs, args.out, options)
    except MynaError as exc:
        err.write(f"myna data prepare: {exc}\n")
        return 1
    for line in report.summary():
        err.write(f"myna data prepare: {line}\n")
    out.write(f"{report.list_path}\n")
    return 0


def cmd_data_features(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data features`: a .list -> cached phonemes, BERT, HuBERT, semantic tokens (and SV embeddings)."""
    from myna.train.features import FeatureModels, extract_features

    try:
        if args.model_dir:
            from myna.engine.loading import ModelPaths

            paths = ModelPaths.from_model_dir(args.model_dir, args.model_version)
            hubert, sovits, bert, sv = paths.hubert, paths.sovits, paths.bert, paths.sv
        elif args.hubert and args.sovits:
            hubert, sovits = Path(args.hubert), Path(args.sovits)
            bert, sv = (Path(v) if v else None for v in (args.bert, args.sv))
        else:
            raise InputError("no models given: pass --model-dir DIR or both --hubert DIR and --sovits FILE")
        _quiet_transformers()
        report = extract_features(args.list, args.out, FeatureModels(hubert, sovits, bert, sv, args.device),
                                  progress=not args.quiet)
    except MynaError as exc:
        err.write(f"myna data features: {exc}\n")
        return 1
    for line in report.summary():
        err.write(f"myna data features: {line}\n")
    out.write(f"{report.manifest}\n")
    return 0


def _add_data_commands(commands) -> None:
    """`myna data prepare|features` (fine-tuning datasets)."""
    data = commands.add_parser("data", help="prepare a fine-tuning dataset (prepare, features)",
                               description="Build a fine-tuning dataset: recordings -> .list -> cached features.")
    steps = data.add_subparsers(dest="data_command", required=True, metavar="STEP")
    prep = steps.add_parser(
        "prepare", help="slice, clean and transcribe recordings into OUT/dataset.list",
        description="Cut recordings (wav/flac/mp3/ogg/m4a, files or folders) at pauses into 2-12 s utterances, "
                    "drop clipped or near-silent ones, normalize loudness, transcribe, and write OUT/wavs/ and "
                    "OUT/dataset.list (path|speaker|LANG|text) for proofreading. A .list input is used as is.",
    )
    prep.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders of them, or .list files")
    prep.add_argument("--out", required=True, metavar="DIR", help="output folder")
    prep.add_argument("--speaker", help="speaker name in the list (default: the output folder's name)")
    prep.add_argument("--lang", help="spoken language as a whisper code (en, zh, ja); default: detected")
    prep.add_argument("--asr-model", metavar="DIR", help="local faster-whisper model directory "
                      "(default: the bundled Whisper tiny.en, English only)")
    prep.add_argument("--denoise", action="store_true", help="remove background noise with DeepFilterNet3 first")
    prep.add_argument("--min-seconds", type=float, default=2.0, help="shortest utterance kept (default 2)")
    prep.add_argument("--max-seconds", type=float, default=12.0, help="longest utterance (default 12)")
    prep.add_argument("--device", default="cpu", help="device for speech recognition (default cpu)")
    prep.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    prep.set_defaults(handler=cmd_data_prepare)
    feats = steps.add_parser(
        "features", help="compute and cache the training features of a .list",
        description="Phonemes, BERT (Chinese), HuBERT features, semantic tokens and, for v2Pro, speaker "
                    "embeddings of every utterance, cached in OUT (unchanged utterances are reused).",
    )
    feats.add_argument("list", metavar="LIST", help="transcript list (path|speaker|LANG|text)")
    feats.add_argument("--out", required=True, metavar="DIR", help="feature cache folder")
    fmodels = feats.add_argument_group("models")
    fmodels.add_argument("--model-dir", help="directory laid out like upstream's GPT_SoVITS/pretrained_models")
    fmodels.add_argument("--model-version", default="v2", help="with --model-dir: v1, v2, v2Pro or v2ProPlus")
    fmodels.add_argument("--hubert", help="chinese-hubert-base directory")
    fmodels.add_argument("--sovits", help="SoVITS checkpoint (.pth) whose quantizer makes the semantic tokens")
    fmodels.add_argument("--bert", help="chinese-roberta-wwm-ext-large directory (needed for Chinese text)")
    fmodels.add_argument("--sv", help="speaker-verification checkpoint (v2Pro/v2ProPlus)")
    fmodels.add_argument("--device", default="cpu", help="torch device (default cpu)")
    feats.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    feats.set_defaults(handler=cmd_data_features)


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
    say.add_argument("--ref", metavar="CLIP", help="reference clip, 3-10 s of speech (required without --voice)")
    say.add_argument("--voice", metavar="NAME", help="a voice trained with `myna train`: its models and reference")
    say.add_argument("--data-dir", help="where trained voices live (default MYNA_DATA_DIR or ~/.local/share/myna)")
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

    train = commands.add_parser(
        "train", help="fine-tune a voice: prepare, features, SoVITS, GPT, export (resumable)",
        description="Fine-tune the base models on recordings (a folder or files) or an upstream .list, export "
                    "upstream-format weights and register the voice for `myna say --voice NAME`. Run the same "
                    "command again to resume an interrupted run. Defaults are upstream's few-shot ones (README).")
    train.add_argument("--data", required=True, metavar="DIR|FILE.list", help="recordings, or a transcript list")
    train.add_argument("--base", required=True, metavar="MODEL_DIR", help="directory laid out like pretrained_models")
    train.add_argument("--name", required=True, help="name of the new voice")
    train.add_argument("--model-version", default="v2", help="base model version: v1, v2, v2Pro, v2ProPlus")
    train.add_argument("--data-dir", help="where voices are kept (default MYNA_DATA_DIR or ~/.local/share/myna)")
    train.add_argument("--lang", help="language hint for transcribing raw recordings (whisper code)")
    train.add_argument("--device", default="cpu", help="torch device (default cpu); multi-GPU: launch with torchrun")
    train.add_argument("--seed", type=int, default=1234)
    train.add_argument("--sovits-epochs", type=int, help="default 8")
    train.add_argument("--sovits-batch", type=int, help="default 4")
    train.add_argument("--sovits-lr", type=float, help="default 1e-4")
    train.add_argument("--gpt-epochs", type=int, help="default 15")
    train.add_argument("--gpt-batch", type=int, help="default 8")
    train.add_argument("--gpt-lr", type=float, help="default 1e-5")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=cmd_train)

    serve = commands.add_parser(
        "serve",
        help="HTTP server: upstream api_v2 /tts, OpenAI /v1/audio/speech, voice registry",
        description="Serve speech over HTTP. Every flag can also be set as MYNA_<FLAG> (see myna.config).",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 9880)")
    serve.add_argument("--data-dir", help="where voices and consent records are kept")
    serve.add_argument("--ref-dir", action="append", metavar="DIR", help="folder /tts may read reference clips from")
    serve.add_argument("--workers", type=int, help="synthesis workers, each with its own models (default 1)")
    serve.add_argument("--queue-size", type=int, help="requests that may wait before 503 (default 32)")
    serve.add_argument("--hash-key", metavar="KEY", help="print the keys-file line of KEY and exit")
    smodels = serve.add_argument_group("models")
    smodels.add_argument("--model-dir", help="directory laid out like upstream's GPT_SoVITS/pretrained_models")
    smodels.add_argument("--model-version", help="with --model-dir: v1, v2, v2Pro or v2ProPlus")
    for flag in ("gpt", "sovits", "hubert", "bert", "sv"):
        smodels.add_argument(f"--{flag}", help=f"{flag} model file or directory")
    smodels.add_argument("--device", help="torch device (default cpu)")
    serve.set_defaults(handler=cmd_serve)
    _add_data_commands(commands)
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
