"""`myna serve`: the HTTP voice service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import add_model_args
from myna.errors import MynaError


def cmd_serve(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna serve`: the HTTP server (settings from MYNA_* variables, overridden by flags)."""
    if args.hash_key:
        from myna.server.auth import SCOPES, hash_key

        scopes = [scope.strip() for scope in (args.scopes or "tts,admin").split(",") if scope.strip()]
        unknown = sorted(set(scopes) - set(SCOPES))
        if not scopes or unknown:
            err.write(f"myna serve: --scopes takes tts and/or admin, comma-separated (got {args.scopes!r})\n")
            return 2
        name = f" {args.key_name}" if args.key_name else ""
        out.write(f"{hash_key(args.hash_key)} {','.join(dict.fromkeys(scopes))}{name}\n")
        return 0
    try:
        import uvicorn

        from myna.config import Settings
        from myna.server.app import configure_logging, create_app, server_options

        settings = Settings.from_env().with_overrides(
            host=args.host, port=args.port, data_dir=args.data_dir and Path(args.data_dir),
            model_dir=args.model_dir and Path(args.model_dir), model_version=args.model_version,
            gpt=args.gpt and Path(args.gpt), sovits=args.sovits and Path(args.sovits),
            hubert=args.hubert and Path(args.hubert), bert=args.bert and Path(args.bert), sv=args.sv and Path(args.sv),
            device=args.device, precision=args.precision, workers=args.workers, queue_size=args.queue_size, batch_size=args.batch_size,
            stream_chunk_tokens=args.stream_chunk_tokens,
            ref_dirs=tuple(Path(d) for d in args.ref_dir) if args.ref_dir else None,
        )
        settings = _use_pulled_model(args, settings)
        configure_logging()
        app = create_app(settings)
    except MynaError as exc:
        err.write(f"myna serve: {exc}\n")
        return 1
    uvicorn.run(app, **server_options(settings))
    return 0


def _use_pulled_model(args: argparse.Namespace, settings):
    """--model VERSION (or MYNA_MODEL), or with no model configured the newest pulled version."""
    from myna.errors import InputError
    from myna.weights.store import ModelStore

    if args.model and (args.model_dir or args.gpt or args.sovits):
        raise InputError("--model names a pulled version: give it alone, not with --model-dir or --gpt/--sovits")
    if not args.model and (settings.model_dir is not None or settings.gpt is not None):
        return settings
    pulled = ModelStore(settings.models_dir).locate(args.model or settings.model)
    return settings.with_overrides(model_dir=pulled.root, model_version=pulled.version)


def register(commands) -> None:
    """Add the `serve` subcommand."""
    serve = commands.add_parser(
        "serve",
        help="HTTP server: upstream api_v2 /tts, OpenAI /v1/audio/speech, voice registry",
        description="Serve speech over HTTP. Every flag can also be set as MYNA_<FLAG> (see myna.config).",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 9880)")
    serve.add_argument("--data-dir", help="where voices and consent records are kept")
    serve.add_argument("--ref-dir", action="append", metavar="DIR", help="folder /tts may read reference clips from")
    serve.add_argument("--workers", type=int, help="synthesis workers, each with its own models (default 1)")
    serve.add_argument("--batch-size", type=int,
                       help="decode the GPT tokens of up to N requests together (one shared model; default 1 = off)")
    serve.add_argument("--stream-chunk-tokens", type=int, metavar="N",
                       help="streamed /v1/audio/speech: first audio after N semantic tokens, then longer chunks "
                            "(default 16; 0 = one chunk per sentence)")
    serve.add_argument("--queue-size", type=int, help="requests that may wait before 503 (default 32)")
    serve.add_argument("--hash-key", metavar="KEY", help="print the keys-file line of KEY and exit")
    serve.add_argument("--model", metavar="VERSION",
                       help="a version pulled with `myna models pull` (MYNA_MODEL; default: the newest pulled one "
                            "when no --model-dir or model files are given)")
    serve.add_argument("--scopes", metavar="LIST",
                       help="with --hash-key: the key's scopes, tts and/or admin, comma-separated (default tts,admin)")
    serve.add_argument("--key-name", metavar="NAME",
                       help="with --hash-key: the key's name in logs and voice records (default keyN, N its line)")
    add_model_args(serve, defaults=False)
    serve.set_defaults(handler=cmd_serve)
