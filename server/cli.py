"""The ``hearth`` command."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from server.access_log import RedactingAccessLogger
from server.app import create_app
from server.config import settings_from_env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth support circles")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="folder for the SQLite database")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args)
    return 2


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # aioice and aiortc are chatty at INFO about every candidate pair.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    settings = settings_from_env().with_overrides(
        host=args.host, port=args.port, data_dir=args.data_dir
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Hearth listening on http://{settings.host}:{settings.port}", flush=True)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log_class=RedactingAccessLogger,
        print=None,
        shutdown_timeout=5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
