"""`myna consent challenge|verify|protect`: the voice captcha and the protected-speaker list on local files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.errors import InputError, MynaError


def _settings(args: argparse.Namespace):
    from myna.config import Settings

    settings = Settings.from_env()
    return settings.with_overrides(data_dir=Path(args.data_dir) if args.data_dir else None)


def _checker(args: argparse.Namespace):
    from myna.engine.consent import consent_checker

    return consent_checker(_settings(args), sv=args.sv)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def cmd_challenge(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Issue a challenge: print {"id", "language", "text", "issued_at", "expires_at"}."""
    out.write(json.dumps(_checker(args).issue(args.lang).to_dict(), ensure_ascii=False) + "\n")
    return 0


def cmd_verify(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Check a recording of a challenge against a voice clip: print the evidence (exit 0) or the refusal (exit 1)."""
    from myna.voices.consent import ConsentRefused

    checker = _checker(args)
    try:
        evidence = checker.verify(args.challenge, _read(args.recording), _read(args.clip),
                                  recording_name=args.recording, clip_name=args.clip)
    except ConsentRefused as exc:
        out.write(json.dumps({"passed": False, "check": exc.check, "message": str(exc)}, ensure_ascii=False) + "\n")
        return 1
    out.write(json.dumps({"passed": True, **evidence.to_dict()}, ensure_ascii=False) + "\n")
    return 0


def cmd_protect(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Store protected speakers' embeddings (not their clips) in the protected-voices folder."""
    import soundfile

    from myna.features.verification import SpeakerVerifier
    from myna.voices.nogo import save_embedding

    folder = Path(args.dir) if args.dir else _settings(args).protected_voices
    if folder is None:
        raise InputError("no protected voices folder: pass --dir DIR or set MYNA_PROTECTED_VOICES")
    if args.name and len(args.clips) != 1:
        raise InputError("--name takes one clip")
    embedder = SpeakerVerifier(args.sv)
    for clip in args.clips:
        try:
            audio, rate = soundfile.read(clip, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{clip}: not a readable audio file ({exc})") from exc
        name = args.name or Path(clip).stem.replace(".", "-")
        path = save_embedding(folder, name, embedder.embed(audio.mean(axis=1), int(rate)), embedder.identity)
        out.write(f"protected {name}: {path}\n")
    return 0


def _guarded(handler):
    def run(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
        try:
            return handler(args, stdin, out, err)
        except MynaError as exc:
            err.write(f"myna consent {args.consent_command}: {exc}\n")
            return 1
    return run


def register(commands) -> None:
    """Add the `consent` subcommand group."""
    consent = commands.add_parser(
        "consent", help="voice captcha: issue and check consent challenges; protect speakers",
        description="Proof of consent for a new voice: the speaker reads a random challenge sentence; speech "
                    "recognition must hear it and speaker verification must match the voice clip.")
    steps = consent.add_subparsers(dest="consent_command", required=True, metavar="ACTION")
    challenge = steps.add_parser("challenge", help="issue a challenge sentence (JSON)")
    challenge.add_argument("--lang", default="en", help="en, zh or ja (zh/ja need MYNA_CONSENT_ASR_MODEL)")
    verify = steps.add_parser("verify", help="check a recording of a challenge against a voice clip (JSON)")
    verify.add_argument("challenge", help="the challenge id")
    verify.add_argument("recording", help="the speaker reading the challenge (WAV, FLAC, OGG, MP3)")
    verify.add_argument("clip", help="the voice clip to register")
    protect = steps.add_parser("protect", help="add speakers to the protected-voices list (as embeddings)")
    protect.add_argument("clips", nargs="+", metavar="CLIP")
    protect.add_argument("--name", help="the speaker's name (default: the file name)")
    protect.add_argument("--dir", help="the protected voices folder (default MYNA_PROTECTED_VOICES)")
    for step, handler in ((challenge, cmd_challenge), (verify, cmd_verify), (protect, cmd_protect)):
        step.add_argument("--data-dir", help="where challenges are kept (default MYNA_DATA_DIR)")
        step.add_argument("--sv", help="v2Pro speaker-verification file: use ERes2NetV2 instead of Resemblyzer")
        step.set_defaults(handler=_guarded(handler))
