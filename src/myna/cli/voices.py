"""`myna voices export|import|use`: move trained voices between machines and choose a voice's saved epoch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import data_dir
from myna.errors import MynaError


def cmd_export(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Write a trained voice (weights, reference clips, voice.json) as one zip archive."""
    from myna.engine.voice_file import trained_voice_dir
    from myna.voices.bundle import export_voice

    target = Path(args.output or f"{args.name}.zip")
    path = export_voice(trained_voice_dir(data_dir(args), args.name), target, args.include_encoders)
    err.write(f"myna voices export: {args.name} -> {path} ({path.stat().st_size / 2**20:.1f} MiB)\n")
    out.write(f"{path}\n")
    return 0


def cmd_import(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Unpack a voice archive into the data folder, so `say --voice NAME` finds it."""
    from myna.voices.bundle import import_voice

    manifest, missing = import_voice(args.archive, data_dir(args), args.name, args.force)
    for line in missing:
        err.write(f"myna voices import: warning: {line}\n")
    name = manifest.parent.name
    err.write(f"myna voices import: voice {name!r} ready; try `myna say --voice {name} TEXT -o out.wav`\n")
    out.write(f"{manifest}\n")
    return 0


def cmd_use(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Point a voice at the weights of a saved epoch (or back at the final ones); without a choice, list epochs."""
    from myna.voices.epochs import describe_epochs, use_epoch

    sovits_epoch = args.sovits_epoch if args.sovits_epoch is not None else args.epoch
    gpt_epoch = args.gpt_epoch if args.gpt_epoch is not None else args.epoch
    if sovits_epoch is None and gpt_epoch is None and not args.final:
        lines = describe_epochs(data_dir(args), args.name)
        if not lines:
            err.write(f"myna voices use: {args.name} has no saved epochs with weights or samples\n")
        for line in lines:
            out.write(line + "\n")
        return 0
    manifest = use_epoch(data_dir(args), args.name, sovits_epoch, gpt_epoch, args.final)
    from myna.engine.voice_file import read_voice_file

    voice = read_voice_file(manifest.parent)
    err.write(f"myna voices use: {args.name} now speaks with {voice.sovits.name} and {voice.gpt.name}\n")
    out.write(f"{manifest}\n")
    return 0


def _guarded(handler):
    def run(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
        try:
            return handler(args, stdin, out, err)
        except MynaError as exc:
            err.write(f"myna voices {args.voices_command}: {exc}\n")
            return 1
    return run


def _add_bundle_commands(steps) -> None:
    """`myna voices export|import`."""
    export = steps.add_parser("export", help="write a trained voice as one zip archive",
                              description="Pack a trained voice's weights, reference clips and voice.json (not its "
                                          "training work folder) into a zip that `myna voices import` unpacks.")
    export.add_argument("name", metavar="NAME")
    export.add_argument("-o", "--output", metavar="FILE.zip", help="archive to write (default NAME.zip)")
    export.add_argument("--include-encoders", action="store_true",
                        help="copy the HuBERT/BERT/speaker models in too (about 0.8-1.3 GB; by default they are named "
                             "by pulled version, found again where the same version is pulled)")
    export.add_argument("--data-dir", help="where voices are kept (default MYNA_DATA_DIR or ~/.local/share/myna)")
    export.set_defaults(handler=_guarded(cmd_export))
    imp = steps.add_parser("import", help="unpack a voice archive made by `myna voices export`")
    imp.add_argument("archive", metavar="FILE.zip")
    imp.add_argument("--name", help="name to give the voice (default: its name in the archive)")
    imp.add_argument("--force", action="store_true", help="replace a voice of the same name")
    imp.add_argument("--data-dir", help="where voices are kept (default MYNA_DATA_DIR or ~/.local/share/myna)")
    imp.set_defaults(handler=_guarded(cmd_import))


def _add_use_command(steps) -> None:
    """`myna voices use`."""
    use = steps.add_parser("use", help="speak with the weights of a saved epoch (list them without a choice)",
                           description="Point the voice at the weights exported for a saved epoch (train with "
                                       "--save-epoch-weights); without an option, list the saved epochs and samples.")
    use.add_argument("name", metavar="NAME")
    use.add_argument("--epoch", type=int, help="this epoch for both models")
    use.add_argument("--sovits-epoch", type=int, help="this epoch for SoVITS only")
    use.add_argument("--gpt-epoch", type=int, help="this epoch for the GPT only")
    use.add_argument("--final", action="store_true", help="back to the weights of the finished run")
    use.add_argument("--data-dir", help="where voices are kept (default MYNA_DATA_DIR or ~/.local/share/myna)")
    use.set_defaults(handler=_guarded(cmd_use))


def register(commands) -> None:
    """Add the `voices` subcommand group."""
    voices = commands.add_parser("voices", help="trained voices: export, import, use an epoch",
                                 description="Manage voices trained with `myna train`.")
    steps = voices.add_subparsers(dest="voices_command", required=True, metavar="ACTION")
    _add_bundle_commands(steps)
    _add_use_command(steps)
