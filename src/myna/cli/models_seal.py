"""`myna models keygen|encrypt|decrypt|rotate`: model files encrypted at rest (see myna.weights.sealed)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.errors import InputError

MODEL_SUFFIXES = (".ckpt", ".pth", ".safetensors")


def _key(args: argparse.Namespace, flag: str = "key_file") -> bytes:
    """The key named by --key-file, else the configured model key (MYNA_MODEL_KEY_FILE / MYNA_MODEL_KEY)."""
    from myna.config import Settings
    from myna.weights.sealed import ModelKeyError, read_key_file

    path = getattr(args, flag, None)
    key = read_key_file(path) if path else Settings.from_env().model_key_bytes()
    if key is None:
        raise ModelKeyError("no model key: pass --key-file FILE or set MYNA_MODEL_KEY_FILE (make one with "
                            "`myna models keygen -o FILE`)")
    return key


def _model_files(names: list[str]) -> list[Path]:
    """The files named, folders expanded to the model files (.ckpt, .pth, .safetensors, and .enc of those) inside."""
    files: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and _is_model_name(p))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not files:
        raise InputError(f"no model files (.ckpt, .pth, .safetensors) in {', '.join(names)}")
    return files


def _is_model_name(path: Path) -> bool:
    name = path.name.removesuffix(".enc")
    return name.endswith(MODEL_SUFFIXES) and not name.startswith(".")


def cmd_keygen(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Write a new random key (64 hex digits, owner-only) to a file, or print it."""
    from myna.weights.sealed import generate_key, key_id

    key = generate_key()
    if args.output is None:
        out.write(key.hex() + "\n")
        return 0
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{args.output}: exists; a key file is never overwritten (pick another name)") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    err.write(f"myna models keygen: wrote {args.output} (key id {key_id(key).hex()}); keep a copy somewhere safe: "
              "files encrypted with it cannot be read without it\n")
    return 0


def cmd_encrypt(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Encrypt model files: beside them as NAME.enc, or in place."""
    from myna.weights.sealed import is_sealed, seal_file

    key = _key(args)
    files = _model_files(args.files)
    _check_output(args, files)
    for path in files:
        if is_sealed(path):
            err.write(f"skipped   {path} (already encrypted)\n")
            continue
        target = _target(args, path, path.with_name(path.name + ".enc"))
        seal_file(path, target, key)
        out.write(f"encrypted {target}\n")
    return 0


def cmd_decrypt(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Decrypt model files: NAME.enc to NAME, or in place."""
    from myna.weights.sealed import is_sealed, unseal_file

    key = _key(args)
    files = _model_files(args.files)
    _check_output(args, files)
    for path in files:
        if not is_sealed(path):
            err.write(f"skipped   {path} (not encrypted)\n")
            continue
        if not (args.in_place or args.output) and path.suffix != ".enc":
            raise InputError(f"{path}: its name does not end in .enc; pass --in-place or -o OUTPUT")
        target = _target(args, path, path.with_name(path.name.removesuffix(".enc")))
        unseal_file(path, target, key)
        out.write(f"decrypted {target}\n")
    return 0


def cmd_rotate(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Re-encrypt model files in place from the old key to a new one."""
    from myna.weights.sealed import is_sealed, key_id, key_id_of, reseal_file

    old, new = _key(args), _key(args, "new_key_file")
    for path in _model_files(args.files):
        if not is_sealed(path):
            err.write(f"skipped   {path} (not encrypted)\n")
        elif key_id_of(path) == key_id(new).hex():
            err.write(f"skipped   {path} (already under the new key)\n")
        else:
            reseal_file(path, old, new)
            out.write(f"rotated   {path}\n")
    return 0


def _check_output(args: argparse.Namespace, files: list[Path]) -> None:
    if args.output and (len(files) != 1 or args.in_place):
        raise InputError("-o/--output takes one input file and no --in-place")


def _target(args: argparse.Namespace, path: Path, beside: Path) -> Path:
    if args.in_place:
        return path
    target = Path(args.output) if args.output else beside
    if target.exists() and not args.force:
        raise InputError(f"{target}: exists; pass --force to replace it, or --in-place")
    return target


def register(steps, guarded) -> None:
    """Add keygen, encrypt, decrypt and rotate to the `models` subcommand group."""
    key_help = "key file (64 hex digits); default MYNA_MODEL_KEY_FILE or MYNA_MODEL_KEY"
    keygen = steps.add_parser("keygen", help="make a new random model key",
                              description="Write a new random 256-bit key as 64 hex digits (mode 0600).")
    keygen.add_argument("-o", "--output", help="key file to create (default: print the key)")
    keygen.set_defaults(handler=guarded(cmd_keygen))

    for name, handler, summary in (
        ("encrypt", cmd_encrypt, "encrypt model files (AES-256-GCM): FILE -> FILE.enc, or --in-place"),
        ("decrypt", cmd_decrypt, "decrypt model files: FILE.enc -> FILE, or --in-place"),
    ):
        step = steps.add_parser(name, help=summary, description=summary + ". Folders are searched for .ckpt, .pth "
                                "and .safetensors files. say/serve/train read encrypted files directly, in memory.")
        step.add_argument("files", nargs="+", metavar="FILE", help="model files or folders")
        step.add_argument("--key-file", help=key_help)
        where = step.add_mutually_exclusive_group()
        where.add_argument("--in-place", action="store_true", help="replace each file (atomically)")
        where.add_argument("-o", "--output", help="output file (one input only)")
        step.add_argument("--force", action="store_true", help="replace an existing output file")
        step.set_defaults(handler=guarded(handler))

    rotate = steps.add_parser("rotate", help="re-encrypt encrypted model files with a new key, in place",
                              description="Re-encrypt each file from the old key (--key-file or the configured one) "
                                          "to --new-key-file, chunk by chunk; plaintext never reaches the disk.")
    rotate.add_argument("files", nargs="+", metavar="FILE", help="model files or folders")
    rotate.add_argument("--key-file", help="the current key file; " + key_help.split("; ")[1])
    rotate.add_argument("--new-key-file", required=True, help="the new key file")
    rotate.set_defaults(handler=guarded(cmd_rotate))
