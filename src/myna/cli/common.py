"""Helpers shared by the subcommands: model arguments, model paths, the data directory."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from myna.config import PRECISIONS
from myna.errors import InputError

_MODEL_FILES = {
    "gpt": "GPT checkpoint (.ckpt)",
    "sovits": "SoVITS checkpoint (.pth)",
    "hubert": "chinese-hubert-base directory",
    "bert": "chinese-roberta-wwm-ext-large directory (needed for Chinese text)",
    "sv": "speaker-verification checkpoint (v2Pro/v2ProPlus)",
}




def add_model_args(parser: argparse.ArgumentParser, defaults: bool = True, gpt: bool = True,
                   g2pw: bool = False) -> None:
    """The "models" option group; without `defaults` unset options stay None (the environment decides)."""
    group = parser.add_argument_group("models")
    group.add_argument("--model-dir", help="directory laid out like upstream's GPT_SoVITS/pretrained_models")
    group.add_argument("--model-version", default="v2" if defaults else None,
                       help="with --model-dir: v1, v2, v2Pro or v2ProPlus (default v2)")
    for flag, help_text in _MODEL_FILES.items():
        if flag != "gpt" or gpt:
            group.add_argument(f"--{flag}", help=help_text)
    if g2pw:
        group.add_argument("--g2pw", help="local G2PWModel directory: read Chinese polyphones with g2pW (needs --bert)")
    group.add_argument("--device", default="cpu" if defaults else None, help="torch device (default cpu)")
    if gpt:
        group.add_argument("--precision", choices=PRECISIONS, default="auto" if defaults else None,
                           help="GPT decoding: fp32 (exact, upstream's tokens), bf16, int8 (CPU), fp16 (CUDA) or auto "
                                "(default: int8 on CPU, bf16 on CUDA; MYNA_PRECISION for the server)")


def model_paths(args: argparse.Namespace):
    """The ModelPaths named on the command line (--model-dir, or the individual files)."""
    from myna.engine.loading import ModelPaths

    if args.model_dir:
        paths = ModelPaths.from_model_dir(args.model_dir, args.model_version)
        return dataclasses.replace(paths, g2pw=Path(args.g2pw)) if args.g2pw else paths
    # --hubert is checked when the model is loaded: a model that reads Whisper features needs none
    missing = [flag for flag, value in (("--gpt", args.gpt), ("--sovits", args.sovits)) if not value]
    if missing:
        raise InputError(
            f"no model given: pass --model-dir DIR (laid out like upstream's pretrained_models) "
            f"or --gpt, --sovits and (for upstream models) --hubert (missing: {', '.join(missing)})"
        )
    return ModelPaths(Path(args.gpt), Path(args.sovits), Path(args.hubert) if args.hubert else None,
                      Path(args.bert) if args.bert else None, Path(args.sv) if args.sv else None,
                      Path(args.g2pw) if args.g2pw else None)


def data_dir(args: argparse.Namespace) -> Path:
    """--data-dir, else the configured data directory (MYNA_DATA_DIR or ~/.local/share/myna)."""
    from myna.config import Settings

    return Path(args.data_dir) if args.data_dir else Settings.from_env().data_dir

