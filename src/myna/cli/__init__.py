"""The `myna` command line. Each subcommand lives in its own module, parses its arguments and calls the
library; no synthesis logic here."""

from __future__ import annotations

import argparse
import sys

from myna import __version__
from myna.cli import audit, consent, models, phonemes, say, serve, train, voices, watermark


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `myna` command."""
    parser = argparse.ArgumentParser(prog="myna", description="Few-shot voice-cloning text-to-speech.")
    parser.add_argument("-V", "--myna-version", action="version", version=f"myna {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (phonemes, say, train, serve, models, audit, consent, watermark, voices):
        module.register(commands)
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
