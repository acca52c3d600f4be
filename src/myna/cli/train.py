"""`myna data prepare|features` and `myna train`: fine-tuning datasets and voices."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import add_model_args, data_dir
from myna.config import TRAIN_PRECISIONS
from myna.errors import InputError, MynaError


def _needs_training_extra(command: str, handler):
    """`handler`, run only once the training extra is known to be installed (else one line saying how, exit 1)."""

    def run(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
        from myna.train.extras import check_training_extra

        try:
            check_training_extra()
        except MynaError as exc:
            err.write(f"{command}: {exc}\n")
            return 1
        return handler(args, stdin, out, err)

    return run


def cmd_train(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna train`: prepare -> features -> SoVITS -> GPT -> export, then register the voice for `say --voice`."""
    try:
        from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
        from myna.train.pipeline import TrainRequest, train_voice

        common = {"device": args.device, "seed": args.seed}
        sovits_given = {k: v for k, v in (("epochs", args.sovits_epochs), ("batch_size", args.sovits_batch),
                                          ("learning_rate", args.sovits_lr),
                                          ("precision", args.train_precision)) if v}
        gpt_given = {k: v for k, v in (("epochs", args.gpt_epochs), ("batch_size", args.gpt_batch),
                                       ("learning_rate", args.gpt_lr),
                                       ("precision", args.train_precision)) if v}
        sovits = SoVITSTrainConfig(**common, **sovits_given)
        gpt = GPTTrainConfig(**common, **gpt_given)
        preset = None
        if bool(args.base) == bool(args.preset):
            raise InputError("give either --base MODEL_DIR|VERSION (fine-tune) or --preset NAME (train from scratch)")
        if args.preset:
            from myna.train.presets import get_preset
            from myna.train.scratch import preset_settings

            preset = preset_settings(get_preset(args.preset), args.device, args.seed, sovits_given, gpt_given)
        base, version = _base_models(args.base, args.model_version)
        request = TrainRequest(Path(args.data), base, args.name, data_dir(args), version, sovits, gpt, args.lang, preset,
                               _model_key() if args.encrypt else None)
        if args.train_precision == "bf16":
            from myna.engine.precision import native_bf16

            if not native_bf16(args.device):
                err.write(f"myna train: warning: {args.device} has no native bfloat16 kernels, so "
                          "--train-precision bf16 runs several times slower than fp32 here\n")
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


def _model_key() -> bytes:
    """The configured model key for --encrypt, or an error saying how to configure one."""
    from myna.config import Settings

    key = Settings.from_env().model_key_bytes()
    if key is None:
        raise InputError("--encrypt needs a model key: set MYNA_MODEL_KEY_FILE (make one with `myna models keygen -o FILE`)")
    return key


def _base_models(base: str | None, version: str) -> tuple[Path | None, str]:
    """--base as a folder, or as a version pulled with `myna models pull` (a folder of that name wins)."""
    from myna.weights.catalog import VERSIONS

    if base is None or base not in VERSIONS or Path(base).is_dir():
        return (Path(base) if base else None), version
    from myna.weights.store import default_store

    pulled = default_store().locate(base)
    return pulled.root, pulled.version


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
    """`myna data prepare|features|synth` (datasets)."""
    data = commands.add_parser("data", help="prepare a fine-tuning dataset (prepare, features, synth)",
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
    prep.set_defaults(handler=_needs_training_extra("myna data prepare", cmd_data_prepare))
    feats = steps.add_parser(
        "features", help="compute and cache the training features of a .list",
        description="Phonemes, BERT (Chinese), HuBERT features, semantic tokens and, for v2Pro, speaker "
                    "embeddings of every utterance, cached in OUT (unchanged utterances are reused).",
    )
    feats.add_argument("list", metavar="LIST", help="transcript list (path|speaker|LANG|text)")
    feats.add_argument("--out", required=True, metavar="DIR", help="feature cache folder")
    add_model_args(feats, gpt=False)
    feats.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    feats.set_defaults(handler=_needs_training_extra("myna data features", cmd_data_features))
    _add_synth_command(steps)


def cmd_data_synth(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data synth`: a multi-speaker English corpus from local, freely licensed voices."""
    from myna.train.synth.corpus import SynthOptions, build_corpus
    from myna.train.synth.voices import DEFAULT_VOICES

    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip()) if args.voices else DEFAULT_VOICES
    try:
        report = build_corpus(SynthOptions(
            Path(args.out), utterances=args.utterances, voices=voices, pseudo_speakers=args.pseudo_speakers,
            seed=args.seed, jobs=args.jobs, rate=args.rate, heldout_family=args.heldout_family or None,
            heldout_speakers=args.heldout_speakers, progress=not args.quiet))
    except MynaError as exc:
        err.write(f"myna data synth: {exc}\n")
        return 1
    for line in report.summary():
        err.write(f"myna data synth: {line}\n")
    out.write(f"{report.train_list}\n")
    return 0


def _add_synth_command(steps) -> None:
    """`myna data synth` (the bundled default voice's training corpus)."""
    synth = steps.add_parser(
        "synth", help="render a multi-speaker English corpus from local flite/festival/espeak-ng voices",
        description="Speak generated English sentences with the installed flite, festival and espeak-ng voices "
                    "plus pitch/formant/tempo-shifted pseudo-speakers; write OUT/wavs/, OUT/corpus.list, "
                    "OUT/heldout_speakers.list and the licence record OUT/SOURCES.md (resumable).")
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder")
    synth.add_argument("--utterances", type=int, default=100, help="utterances per training speaker (default 100)")
    synth.add_argument("--voices", metavar="LIST", help="comma-separated base voices (default: every flite, "
                       "festival and espeak-ng voice the recipe knows; an unknown name lists them)")
    synth.add_argument("--pseudo-speakers", type=int, default=16, metavar="K",
                       help="shifted pseudo-speakers added to the base voices (default 16)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the sentences and shifts (default 0)")
    synth.add_argument("--jobs", type=int, default=1, metavar="J", help="parallel renderers (default 1)")
    synth.add_argument("--rate", type=int, default=22050, help="output sample rate (default 22050)")
    synth.add_argument("--heldout-family", default="ked", metavar="FAMILY",
                       help="speaker family kept out of training (default ked; '' for none)")
    synth.add_argument("--heldout-speakers", type=int, default=3, metavar="N",
                       help="speakers kept out of training for zero-shot tests (default 3)")
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=_needs_training_extra("myna data synth", cmd_data_synth))


def register(commands) -> None:
    """Add the `train` and `data` subcommands."""
    train = commands.add_parser(
        "train", help="fine-tune a voice: prepare, features, SoVITS, GPT, export (resumable)",
        description="Fine-tune the base models on recordings (a folder or files) or an upstream .list, export "
                    "upstream-format weights and register the voice for `myna say --voice NAME`. Run the same "
                    "command again to resume an interrupted run. Defaults are upstream's few-shot ones (README).")
    train.add_argument("--data", required=True, metavar="DIR|FILE.list", help="recordings, or a transcript list")
    train.add_argument("--base", metavar="MODEL_DIR|VERSION", help="directory laid out like pretrained_models, or "
                       "a version pulled with `myna models pull` (v1, v2, v2Pro, v2ProPlus)")
    train.add_argument("--preset", metavar="NAME", help="instead of --base: train new models of this size from "
                       "scratch (small: the default voice's; Whisper + Resemblyzer features)")
    train.add_argument("--name", required=True, help="name of the new voice")
    train.add_argument("--model-version", default="v2", help="base model version: v1, v2, v2Pro, v2ProPlus")
    train.add_argument("--data-dir", help="where voices are kept (default MYNA_DATA_DIR or ~/.local/share/myna)")
    train.add_argument("--lang", help="language hint for transcribing raw recordings (whisper code)")
    train.add_argument("--device", default="cpu", help="torch device (default cpu); multi-GPU: launch with torchrun")
    train.add_argument("--seed", type=int, default=1234)
    train.add_argument("--train-precision", choices=TRAIN_PRECISIONS,
                       help="bf16: forward passes in bfloat16 mixed precision, weights and optimizer state fp32 "
                            "(about 1.4-1.8x faster on CPUs with AVX-512 BF16 or AMX, and on recent GPUs; "
                            "default fp32, or the preset's setting)")
    train.add_argument("--sovits-epochs", type=int, help="default 8")
    train.add_argument("--sovits-batch", type=int, help="default 4")
    train.add_argument("--sovits-lr", type=float, help="default 1e-4")
    train.add_argument("--gpt-epochs", type=int, help="default 15")
    train.add_argument("--gpt-batch", type=int, help="default 8")
    train.add_argument("--gpt-lr", type=float, help="default 1e-5")
    train.add_argument("--encrypt", action="store_true", help="write the exported model files encrypted with the model "
                       "key (MYNA_MODEL_KEY_FILE); say/serve read them in memory. The training states in work/ "
                       "stay unencrypted: delete work/ when done")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=_needs_training_extra("myna train", cmd_train))

    _add_data_commands(commands)
