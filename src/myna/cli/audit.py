"""`myna audit verify|head|show|erase`: check and read the audit trail (see myna.audit)."""

from __future__ import annotations

import argparse
import json
from typing import BinaryIO, TextIO

from myna.errors import MynaError


def _log(args: argparse.Namespace):
    from myna.audit import AuditLog
    from myna.config import Settings

    settings = Settings.from_env()
    return AuditLog(args.log or settings.audit_path, settings.audit_key_bytes())


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
    shown = [r for r in _log(args).records()
             if (args.voice is None or r.voice == args.voice) and (args.event is None or r.event.startswith(args.event))]
    for record in shown[-args.last:] if args.last else shown:
        out.write(record.line() + "\n")
    return 0


def cmd_erase(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Remove the personal fields of a voice's records (the chain stays verifiable)."""
    count = _log(args).erase(args.voice_id, actor=args.actor)
    out.write(json.dumps({"voice": args.voice_id, "records_erased": count}) + "\n")
    return 0


def _guarded(handler):
    def run(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
        try:
            return handler(args, stdin, out, err)
        except MynaError as exc:
            err.write(f"myna audit {args.audit_command}: {exc}\n")
            return 1
    return run


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
    erase = steps.add_parser("erase", help="remove a voice's personal fields from the log (the chain stays valid)")
    erase.add_argument("voice_id")
    erase.add_argument("--actor", default="cli", help="who asked (recorded in the log; default cli)")
    for step, handler in ((verify, cmd_verify), (head, cmd_head), (show, cmd_show), (erase, cmd_erase)):
        step.add_argument("--log", help=log_help)
        step.set_defaults(handler=_guarded(handler))
