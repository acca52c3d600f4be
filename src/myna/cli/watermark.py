"""`myna watermark detect FILE...`: is this clip marked by myna, and with which payload?"""

from __future__ import annotations

import argparse
import json
from typing import BinaryIO, TextIO


def cmd_detect(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Print one JSON line per file; exit 1 when some file could not be read, else 0."""
    from myna.audio.decode import decode
    from myna.audio.watermark import DETECT_RATE, Watermarker
    from myna.errors import MynaError

    marker = Watermarker()
    unreadable = 0
    for name in args.files:
        try:
            found = marker.detect(decode(name, DETECT_RATE), DETECT_RATE)
        except MynaError as exc:
            unreadable += 1
            err.write(f"myna watermark: {exc}\n")
            record = {"file": name, "watermarked": None, "confidence": None, "payload": None, "error": str(exc)}
        else:
            record = {"file": name, **found.as_dict()}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return 1 if unreadable else 0


def register(commands) -> None:
    """Add the `watermark` subcommand."""
    watermark = commands.add_parser(
        "watermark", help="check audio files for myna's watermark",
        description="Every clip myna makes carries an inaudible watermark with a 32-bit payload.",
    )
    actions = watermark.add_subparsers(dest="action", required=True, metavar="ACTION")
    detect = actions.add_parser(
        "detect", help="look for the watermark in audio files",
        description="Print one JSON line per file: {\"file\", \"watermarked\": true|false, \"confidence\", "
                    "\"payload\" (the 32-bit payload, or null when it cannot be read), \"score\"}. Any format "
                    "ffmpeg reads; a 3 s excerpt is enough. Exit status 0 when every file could be read.",
    )
    detect.add_argument("files", nargs="+", metavar="FILE")
    detect.set_defaults(handler=cmd_detect)
