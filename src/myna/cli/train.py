"""`myna train`: fine-tune a voice (its datasets: `myna data`, myna.cli.data)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import data_dir
from myna.config import TRAIN_PRECISIONS
from myna.errors import InputError, MynaError

ASR_HELP = ("speech recognition model: a local faster-whisper folder, or asr-small / asr-large as pulled with "
            "`myna models pull` (needed for Chinese and Japanese; default: the bundled Whisper tiny.en, English only)")


def needs_training_extra(command: str, handler):
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
    if args.status:
        return cmd_train_status(args, out, err)
    try:
        if not args.data or not args.name:
            raise InputError("give --data DIR|FILE.list and --name NAME (or --status NAME to see a run's progress)")
        if args.restart and args.continue_training:
            raise InputError("--restart and --continue-training exclude each other")
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
                               restart=args.restart, continue_training=args.continue_training,
                               keep_states=args.keep_states, safetensors=args.safetensors,
                               epoch_weights=args.save_epoch_weights, ref_clip=args.ref_clip,
                               asr_model=asr_model_path(args.asr_model),
                               model_key=_model_key() if args.encrypt else None)
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


def cmd_train_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`myna train --status NAME`: the run's state, progress, ETA, last losses and saved epochs."""
    from myna.engine.voice_file import trained_voice_dir
    from myna.train.history import describe_status
    from myna.voices.epochs import describe_epochs

    try:
        home = trained_voice_dir(data_dir(args), args.status)
        lines = describe_status(home / "work")
        if lines is None:
            raise InputError(f"no training run named {args.status!r} in {home.parent}")
    except MynaError as exc:
        err.write(f"myna train: {exc}\n")
        return 1
    for line in lines + describe_epochs(data_dir(args), args.status):
        out.write(line + "\n")
    return 0


def asr_model_path(value: str | None) -> Path | None:
    """--asr-model: a local faster-whisper folder, or a name pulled with `myna models pull` (asr-small, asr-large)."""
    if value is None:
        return None
    from myna.weights.catalog import ASR_MODELS

    if value in ASR_MODELS and not Path(value).is_dir():
        from myna.weights.store import default_store

        return default_store().path_of(value)
    return Path(value)


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



def register(commands) -> None:
    """Add the `train` subcommand."""
    train = commands.add_parser(
        "train", help="fine-tune a voice: prepare, features, SoVITS, GPT, export (resumable)",
        description="Fine-tune the base models on recordings (a folder or files) or an upstream .list, export "
                    "upstream-format weights and register the voice for `myna say --voice NAME`. Run the same "
                    "command again to resume an interrupted run. Defaults are upstream's few-shot ones (README).")
    train.add_argument("--data", metavar="DIR|FILE.list", help="recordings, or a transcript list")
    train.add_argument("--base", metavar="MODEL_DIR|VERSION", help="directory laid out like pretrained_models, or "
                       "a version pulled with `myna models pull` (v1, v2, v2Pro, v2ProPlus)")
    train.add_argument("--preset", metavar="NAME", help="instead of --base: train new models of this size from "
                       "scratch (small: the default voice's; Whisper + Resemblyzer features)")
    train.add_argument("--name", help="name of the new voice")
    train.add_argument("--status", metavar="NAME", help="print NAME's training progress, ETA, losses and saved epochs")
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
    train.add_argument("--restart", action="store_true", help="discard NAME's earlier run and train anew from the base")
    train.add_argument("--continue-training", action="store_true", help="NAME was trained on other data or settings: "
                       "go on from its current weights with these")
    train.add_argument("--keep-states", action="store_true", help="keep the resumable training states (about 2 GB at "
                       "the released size) when the run finishes, so it can be extended with more epochs")
    train.add_argument("--save-epoch-weights", action="store_true", help="export weights at every saved epoch "
                       "(epochs/NAME_e{E}_s{S}.pth, NAME-e{E}.ckpt); pick one with `myna voices use NAME --epoch E`")
    train.add_argument("--safetensors", action="store_true", help="also write .safetensors twins of the exports")
    train.add_argument("--ref-clip", metavar="CLIP", help="the voice's default reference: a training clip's path or "
                       "file name (default: the best-measured clip of 3-10 s; the command prints its choice)")
    train.add_argument("--asr-model", metavar="DIR|NAME", help=ASR_HELP)
    train.add_argument("--encrypt", action="store_true", help="write the exported model files encrypted with the model "
                       "key (MYNA_MODEL_KEY_FILE); say/serve read them in memory. The training states in work/ "
                       "stay unencrypted: delete work/ when done")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=needs_training_extra("myna train", cmd_train))
