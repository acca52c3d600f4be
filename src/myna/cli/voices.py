"""`myna voices references add|rm|list`: the emotion references of a voice (myna.voices.references)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import data_dir
from myna.errors import InputError, MynaError

_TARGETS = ("voice", "voice_id", "default_voice", "dir")


class _Target:
    """The references of the voice the flags name: a folder store, or a registered voice in the registry."""

    def __init__(self, args: argparse.Namespace):
        from myna.voices.references import ReferenceFolder

        self.registry = self.store = self.folder = None
        self.voice_id = args.voice_id
        if args.voice_id:
            from myna.config import Settings
            from myna.voices import VoiceRegistry
            from myna.voices.crypto import read_key
            from myna.voices.registry_references import RegistryReferences

            self.settings = Settings.from_env().with_overrides(data_dir=data_dir(args))
            key = read_key(self.settings.voice_key_file) if self.settings.voice_key_file else None  # as the server
            self.registry = VoiceRegistry(self.settings.data_dir / "voices", key=key)  # where `myna serve` keeps voices
            self.store = RegistryReferences(self.registry)
            return
        if args.voice:
            from myna.engine.voice_file import read_trained_voice, trained_voice_dir

            read_trained_voice(data_dir(args), args.voice)  # says so when there is no such voice
            folder = trained_voice_dir(data_dir(args), args.voice)
        elif args.default_voice:
            from myna.config import Settings
            from myna.engine.default_voice import find_default_voice

            folder = find_default_voice(Settings.from_env().default_voice).root
        else:
            folder = Path(args.dir)
        self.folder = ReferenceFolder(folder)

    def rows(self) -> list[dict]:
        """Every reference as a JSON-ready dict."""
        if self.store is not None:
            return [{"id": r.id, "emotion": r.emotion, "lang": r.language, "seconds": r.clip_seconds,
                     "text": r.transcript} for r in self.store.list(self.voice_id)]
        return [{"id": r.id, "emotion": r.emotion, "lang": r.lang, "seconds": r.seconds, "text": r.text,
                 "clip": str(r.clip)} for r in self.folder.list()]

    def add(self, args: argparse.Namespace) -> str:
        """Store the clip as the voice's `emotion` reference (a registered voice's under its consent rules)."""
        audio = _read(args.clip)
        if self.store is None:
            return self.folder.add(audio, Path(args.clip).name, args.text, args.lang, args.emotion, args.replace).id
        from myna.engine.consent import add_reference

        settings = self.settings
        recording = _read(args.recording) if args.recording else None
        return add_reference(self.store, self._checker(), self._audit(), self.voice_id, mode=settings.consent_mode,
                             audio=audio, filename=Path(args.clip).name, transcript=args.text, language=args.lang,
                             emotion=args.emotion, replace=args.replace, challenge_id=args.challenge,
                             recording=recording, actor="cli").id

    def remove(self, key: str) -> list[str]:
        """Remove by id or label; returns the ids removed."""
        if self.store is None:
            return [ref.id for ref in self.folder.remove(key)]
        from myna.engine.consent import remove_reference

        return [remove_reference(self.store, self._audit(), self.voice_id, key, actor="cli").id]

    def _checker(self):
        """The consent checker when the consent mode needs one (captcha, or protected voices to screen)."""
        if self.settings.consent_mode != "captcha" and self.settings.protected_voices is None:
            return None
        from myna.engine.consent import consent_checker

        return consent_checker(self.settings)

    def _audit(self):
        from myna.audit import AuditLog

        return AuditLog(self.settings.audit_path, self.settings.audit_key_bytes())

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.registry.close()


def cmd_references(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna voices references ACTION`: list, add or remove a voice's emotion references."""
    target = None
    try:
        target = _Target(args)
        if args.action == "add":
            out.write(f"{target.add(args)}\n")
        elif args.action == "rm":
            for ref_id in target.remove(args.key):
                out.write(f"removed {ref_id}\n")
        else:
            rows = target.rows()
            if args.json:
                out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
            for row in [] if args.json else rows:
                seconds = f"{row['seconds']:.1f} s" if row["seconds"] else "?"
                out.write(f"{row['id']}  {row['emotion']:<10} {row['lang']:<3} {seconds:>6}  {row['text']}\n")
    except MynaError as exc:
        err.write(f"myna voices references: {exc}\n")
        return 1
    finally:
        if target is not None:
            target.close()
    return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _target_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("whose references (one of)").add_mutually_exclusive_group(required=True)
    group.add_argument("--voice", metavar="NAME", help="a voice trained with `myna train`")
    group.add_argument("--voice-id", metavar="ID", help="a voice registered with the server (POST /v1/voices)")
    group.add_argument("--default-voice", action="store_true",
                       help="the default voice (MYNA_DEFAULT_VOICE, else the bundled one)")
    group.add_argument("--dir", metavar="DIR", help="a folder of references for `myna say --references DIR`")
    parser.add_argument("--data-dir", help="where trained and registered voices live (default MYNA_DATA_DIR)")


def register(commands) -> None:
    """Add the `voices` subcommand (with `references`)."""
    voices = commands.add_parser("voices", help="manage voices: their emotion references",
                                 description="Manage voices.")
    groups = voices.add_subparsers(dest="voices_command", required=True, metavar="WHAT")
    references = groups.add_parser(
        "references", help="emotion references: clips of the voice in other moods",
        description="A voice's emotion references: clips of the same speaker labelled with an emotion "
                    "(neutral, happy, sad, angry, surprised, fearful, calm, whisper, or any word). "
                    "`myna say --emotion LABEL` prompts the GPT with the reference of that label.",
    )
    actions = references.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list the references")
    _target_args(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    add = actions.add_parser("add", help="add a reference clip (3-60 s of the same speaker)")
    _target_args(add)
    add.add_argument("clip", metavar="CLIP", help="the clip: WAV, FLAC, OGG or MP3")
    add.add_argument("--emotion", required=True, metavar="LABEL", help="its emotion label")
    add.add_argument("--text", required=True, help="what is said in the clip (its transcript)")
    add.add_argument("--lang", required=True, help="language of the transcript: zh, en, ja, all_zh, all_ja, auto")
    add.add_argument("--replace", action="store_true", help="replace the voice's reference with this label")
    add.add_argument("--challenge", metavar="ID", help="with --voice-id under MYNA_CONSENT_MODE=captcha: the id of a "
                     "consent challenge (`myna consent challenge`) that the clip's speaker read")
    add.add_argument("--recording", metavar="FILE", help="the recording of that challenge")
    remove = actions.add_parser("rm", help="remove a reference (its clip is erased)")
    _target_args(remove)
    remove.add_argument("key", metavar="ID|LABEL", help="the reference's id or label")
    for parser in (listing, add, remove):
        parser.set_defaults(handler=cmd_references)
