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
        from myna.server.auth import hash_key

        out.write(f"{hash_key(args.hash_key)} tts,admin\n")
        return 0
    try:
        import uvicorn

        from myna.config import Settings
        from myna.server.app import configure_logging, create_app

        settings = Settings.from_env().with_overrides(
            host=args.host, port=args.port, data_dir=args.data_dir and Path(args.data_dir),
            model_dir=args.model_dir and Path(args.model_dir), model_version=args.model_version,
            gpt=args.gpt and Path(args.gpt), sovits=args.sovits and Path(args.sovits),
            hubert=args.hubert and Path(args.hubert), bert=args.bert and Path(args.bert), sv=args.sv and Path(args.sv),
            device=args.device, precision=args.precision, workers=args.workers, queue_size=args.queue_size, batch_size=args.batch_size,
            stream_chunk_tokens=args.stream_chunk_tokens,
            ref_dirs=tuple(Path(d) for d in args.ref_dir) if args.ref_dir else None,
        )
        configure_logging()
        app = create_app(settings)
    except MynaError as exc:
        err.write(f"myna serve: {exc}\n")
        return 1
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=int(settings.request_timeout) + 5)
    return 0


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
    add_model_args(serve, defaults=False)
    serve.set_defaults(handler=cmd_serve)
