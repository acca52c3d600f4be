"""`myna audit verify|head|show|find|erase`: check and read the audit trail (see myna.audit).

`find` leads from a clip to the request that made it: `myna watermark detect clip.mp3` reads the
watermark payload, `myna audit find --payload N` (or the detector's output piped in) prints the
`synthesis` record(s) carrying it: API key, voice, time, route and the request's id.
"""

from __future__ import annotations

import argparse
import io
import json
from typing import BinaryIO, TextIO

from myna.cli.common import guarded
from myna.errors import MynaError


def _log(args: argparse.Namespace):
    from myna.audit import AuditLog
    from myna.config import Settings

    settings = Settings.from_env()
    return AuditLog(args.log or settings.audit_path, settings.audit_key_bytes(), personal_key=settings.voice_key_bytes())


def cmd_verify(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Exit 0 when every record, link and the head anchor check out, else 1 with one line per problem."""
    log = _log(args)
    report = log.verify(args.expect_head)
    for problem in report.problems:
        out.write(f"FAIL {problem}\n")
    state = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    out.write(f"{log.path}: {report.records} records ({report.erased} erased), head {report.records}:{report.head}, "
              f"{state}\n")
    return 0 if report.ok else 1


def cmd_head(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Print SEQ:HASH of the last record, to keep elsewhere for `verify --expect-head`."""
    head = _log(args).head()
    out.write(f"{head['seq']}:{head['hash']}\n")
    return 0


def cmd_show(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Print records as JSON lines, filtered by voice and event."""
    log = _log(args)
    shown = [r for r in log.records()
             if (args.voice is None or r.voice == args.voice) and (args.event is None or r.event.startswith(args.event))]
    for record in shown[-args.last:] if args.last else shown:
        out.write((log.readable(record) if log.can_open else record).line() + "\n")
    return 0


def payload_arg(text: str) -> int:
    """A watermark payload as typed: decimal or 0x-hex, 0 .. 2**32 - 1."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (decimal, or hex as 0x...)") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text} is not a 32-bit payload (0 .. {2**32 - 1})")
    return value


def _detected_payloads(stream: TextIO, name: str) -> list[int]:
    """The payloads of `myna watermark detect` output lines (lines without one are skipped)."""
    found = []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            payload = json.loads(line).get("payload")
        except (ValueError, AttributeError):
            raise MynaError(f"{name}:{number}: not a line of `myna watermark detect` output") from None
        if isinstance(payload, int) and not isinstance(payload, bool):
            found.append(payload)
    return found


def cmd_find(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Print the synthesis records carrying each payload; exit 1 when a payload has none."""
    wanted = list(args.payload or [])
    if args.detected is not None:
        if args.detected == "-":
            wanted += _detected_payloads(io.TextIOWrapper(stdin, encoding="utf-8"), "stdin")
        else:
            try:
                with open(args.detected, encoding="utf-8") as handle:
                    wanted += _detected_payloads(handle, args.detected)
            except OSError as exc:
                raise MynaError(f"cannot read {args.detected}: {exc.strerror}") from None
    if not wanted:
        err.write("myna audit find: no payload to look up (give --payload N, or detector output with a payload)\n")
        return 1
    log = _log(args)
    matches: dict[int, list] = {payload: [] for payload in wanted}
    for record in log.records():
        payload = record.data.get("watermark") if record.event == "synthesis" else None
        if payload in matches and not isinstance(payload, bool):
            matches[payload].append(record)
    missing = 0
    for payload, records in matches.items():
        for record in records:
            out.write((log.readable(record) if log.can_open else record).line() + "\n")
        if not records:
            missing += 1
            hint = " (0 is the payload of clips made with `myna say` or the Python API)" if payload == 0 else ""
            err.write(f"myna audit find: no synthesis record carries payload {payload}{hint}\n")
    return 1 if missing else 0


def cmd_erase(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Remove the personal fields of a voice's records (the chain stays verifiable)."""
    count = _log(args).erase(args.voice_id, actor=args.actor)
    out.write(json.dumps({"voice": args.voice_id, "records_erased": count}) + "\n")
    return 0


_guarded = guarded("audit")


def register(commands) -> None:
    """Add the `audit` subcommand group."""
    audit = commands.add_parser("audit", help="verify and read the audit trail",
                                description="The append-only, hash-chained audit log (MYNA_AUDIT_LOG, default "
                                            "MYNA_DATA_DIR/audit/audit.jsonl; MYNA_AUDIT_KEY_FILE for an HMAC chain).")
    steps = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    log_help = "the log file (default MYNA_AUDIT_LOG)"
    verify = steps.add_parser("verify", help="check every record, link and the head anchor (exit 1 on tampering)")
    verify.add_argument("--expect-head", metavar="SEQ:HASH", help="a head printed earlier by `myna audit head`")
    head = steps.add_parser("head", help="print SEQ:HASH of the last record (keep it elsewhere)")
    show = steps.add_parser("show", help="print records as JSON lines")
    show.add_argument("--voice", help="only records about this voice id")
    show.add_argument("--event", help="only events starting with this, e.g. voice. or synthesis")
    show.add_argument("--last", type=int, default=0, help="only the last N")
    find = steps.add_parser("find", help="print the synthesis records that carry a watermark payload",
                            description="Lead from a clip to the request that made it: print (JSON lines) every "
                                        "synthesis record whose watermark payload is one of those given. Exit 1 "
                                        "when a payload has no record.",
                            epilog="e.g. myna watermark detect clip.mp3 | myna audit find --detected -")
    find.add_argument("--payload", type=payload_arg, action="append", metavar="N",
                      help="a payload as `myna watermark detect` prints it (decimal, or 0x-hex); repeatable")
    find.add_argument("--detected", metavar="FILE", help="`myna watermark detect` output to take payloads from "
                                                         "(- for stdin)")
    erase = steps.add_parser("erase", help="remove a voice's personal fields from the log (the chain stays valid)")
    erase.add_argument("voice_id")
    erase.add_argument("--actor", default="cli", help="who asked (recorded in the log; default cli)")
    for step, handler in ((verify, cmd_verify), (head, cmd_head), (show, cmd_show), (find, cmd_find),
                          (erase, cmd_erase)):
        step.add_argument("--log", help=log_help)
        step.set_defaults(handler=_guarded(handler))
