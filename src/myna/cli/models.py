"""`myna models pull|list|verify|rm|path`: upstream's released models, fetched only when asked
(`keygen|encrypt|decrypt|rotate`: see models_seal.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.errors import MynaError


def _store(args: argparse.Namespace):
    from myna.weights.store import ModelStore, default_store

    return ModelStore(Path(args.dir)) if args.dir else default_store()


def cmd_pull(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Fetch VERSION's files (and G2PW with --g2pw), verified, into the model folder."""
    from myna.weights.pull import pull

    names = [*args.versions, *(["g2pw"] if args.g2pw else [])]
    root = pull(names, _store(args).root, args.source, repo=args.repo, out=err)
    version = next((n for n in reversed(args.versions)), None)
    if version:
        err.write(f"myna models pull: try `myna say \"Hello there.\" -o hello.wav --model {version}`\n")
    out.write(f"{root}\n")
    return 0


def cmd_list(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Show the pulled versions: size, state, folder."""
    from myna.weights.store import human_size

    store = _store(args)
    statuses = store.statuses()
    if not statuses:
        err.write(f"myna models list: nothing pulled in {store.root}; run `myna models pull v2ProPlus`\n")
        return 0
    states = {"verified": "verified", "changed": "changed since last check (run `myna models verify`)",
              "incomplete": "incomplete (run the pull again to finish)"}
    out.write(f"{'NAME':<10} {'SIZE':>10}  {'FILES':>5}  STATE\n")
    for s in statuses:
        out.write(f"{s.name:<10} {human_size(s.size):>10}  {s.files:>5}  {states[s.state]}\n")
    out.write(f"folder: {store.root}\n")
    return 0


def cmd_verify(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Re-hash the pulled files against the sha256 recorded when they were downloaded."""
    store = _store(args)
    ok = store.verify(args.names, lambda rel, state: out.write(f"{state:<8} {rel}\n"))
    if not ok:
        err.write("myna models verify: some files are missing or changed; run `myna models pull` for the "
                  "version again to fetch them\n")
        return 1
    err.write(f"myna models verify: all files match ({store.root})\n")
    return 0


def cmd_rm(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Delete a pulled version's files (those other pulled versions share stay)."""
    store = _store(args)
    removed = store.remove(args.name)
    err.write(f"myna models rm: removed {args.name} ({len(removed)} files) from {store.root}\n")
    return 0


def cmd_path(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Print the folder to pass as --model-dir (or --g2pw for "g2pw")."""
    out.write(f"{_store(args).path_of(args.name)}\n")
    return 0


def _guarded(handler):
    def run(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
        try:
            return handler(args, stdin, out, err)
        except MynaError as exc:
            err.write(f"myna models {args.models_command}: {exc}\n")
            return 1
        except KeyboardInterrupt:
            err.write(f"\nmyna models {args.models_command}: interrupted; run the same command again to resume\n")
            return 130
    return run


def register(commands) -> None:
    """Add the `models` subcommand group."""
    models = commands.add_parser(
        "models", help="get upstream GPT-SoVITS's released models (pull, list, verify, rm, path); encrypt model files",
        description="Upstream GPT-SoVITS's released models, kept in MYNA_HOME/models (~/.cache/myna/models) in "
                    "upstream's pretrained_models layout. Only `pull` uses the network.")
    steps = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    dir_help = "model folder (default MYNA_HOME/models, i.e. ~/.cache/myna/models)"

    pull = steps.add_parser("pull", help="download a version's files, verified (resumable)",
                            description="Download exactly the files VERSION needs, check each one's sha256, and "
                                        "move it into the model folder. An interrupted pull resumes when run again.")
    pull.add_argument("versions", nargs="*", metavar="VERSION", help="v1, v2, v2Pro or v2ProPlus")
    pull.add_argument("--source", choices=("hf", "hf-mirror", "modelscope"), default="hf",
                      help="hf: Hugging Face (HF_ENDPOINT honoured), hf-mirror: hf-mirror.com, modelscope: "
                           "ModelScope (MYNA_MODELSCOPE_ENDPOINT), only files whose sha256 myna pins")
    pull.add_argument("--g2pw", action="store_true", help="also upstream's G2PW polyphone model (Chinese)")
    pull.add_argument("--repo", metavar="OWNER/NAME", help="another repository with the same layout")
    pull.add_argument("--dir", help=dir_help)
    pull.set_defaults(handler=_guarded(cmd_pull))

    listing = steps.add_parser("list", help="pulled versions, sizes, folder, verified or not")
    listing.add_argument("--dir", help=dir_help)
    listing.set_defaults(handler=_guarded(cmd_list))

    verify = steps.add_parser("verify", help="re-hash pulled files (exit 1 if any is missing or changed)")
    verify.add_argument("names", nargs="*", metavar="VERSION", help="default: everything pulled")
    verify.add_argument("--dir", help=dir_help)
    verify.set_defaults(handler=_guarded(cmd_verify))

    rm = steps.add_parser("rm", help="delete a pulled version (or g2pw)")
    rm.add_argument("name", metavar="VERSION")
    rm.add_argument("--dir", help=dir_help)
    rm.set_defaults(handler=_guarded(cmd_rm))

    path = steps.add_parser("path", help="print the folder of a pulled version (for --model-dir) or of g2pw")
    path.add_argument("name", metavar="VERSION")
    path.add_argument("--dir", help=dir_help)
    path.set_defaults(handler=_guarded(cmd_path))

    from myna.cli import models_seal

    models_seal.register(steps, _guarded)
