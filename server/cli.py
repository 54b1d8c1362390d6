"""The ``hearth`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from server import __version__
from server.app import create_app, create_worker_app, purge_attendance, purge_audit, serve
from server.config import ConfigError, Settings, settings_from_env
from server.logs import configure_logging
from server.priority import apply_nice
from server.storage.database import Database
from server.storage.repository import AdminTokenStore, SqlCircleStore
from server.storage.series import SeriesStore


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except ConfigError as error:
        # A wrong setting stops the start, naming the variable; no traceback for a typo.
        print(f"hearth: {error}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth support circles")
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="folder for the SQLite database")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes running live circles (default HEARTH_WORKERS, 1: all in one process)",
    )
    worker = commands.add_parser(
        "worker", help="internal: one worker process, started by 'serve --workers N'"
    )
    worker.add_argument("--index", type=int, required=True, help="this worker's number, from 0")
    worker.add_argument("--workers", type=int, required=True, help="how many workers there are")
    worker.add_argument("--port", type=int, required=True, help="port to listen on")
    worker.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (the front's, with Redis)"
    )
    worker.add_argument("--data-dir", type=Path, help="folder for the SQLite database")

    admin = commands.add_parser("admin", help="admin API tokens").add_subparsers(
        dest="action", required=True
    )
    create = admin.add_parser("create-token", help="make an admin token (shown once)")
    revoke = admin.add_parser("revoke-token", help="revoke an admin token by its id")
    revoke.add_argument("token_id", help="the id printed by create-token")
    db = commands.add_parser("db", help="the database").add_subparsers(dest="action", required=True)
    purge = db.add_parser(
        "purge", help="delete attendance and moderation records older than the keeping time"
    )
    purge.add_argument(
        "--days",
        type=int,
        help="keep this many days (default HEARTH_ATTENDANCE_DAYS for attendance and "
        "HEARTH_AUDIT_RETENTION_DAYS for moderation records, 30 each)",
    )
    for sub in (create, revoke, purge):
        sub.add_argument("--data-dir", type=Path, help="folder for the SQLite database")
    args = parser.parse_args(argv)

    if args.command == "serve":
        if args.workers is not None and args.workers < 1:
            parser.error("--workers must be at least 1")
        return _serve(args)
    if args.command == "worker":
        if not 0 <= args.index < args.workers:
            parser.error("--index must be from 0 to --workers - 1")
        return _worker(args)
    settings = settings_from_env().with_overrides(data_dir=args.data_dir)
    if args.command == "admin" and args.action == "create-token":
        return asyncio.run(_create_token(settings))
    if args.command == "admin" and args.action == "revoke-token":
        return asyncio.run(_revoke_token(settings, args.token_id))
    if args.command == "db" and args.action == "purge":
        if args.days is not None and args.days < 1:
            parser.error("--days must be at least 1")
        return asyncio.run(_purge(settings, args.days))
    return 2


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    database = Database(settings.effective_database_url)
    await database.connect()
    try:
        return await work(database)
    finally:
        await database.close()


async def _create_token(settings: Settings) -> int:
    async def work(database: Database) -> int:
        issued = await AdminTokenStore(database).create()
        # The token is printed once, here, and only its hash is stored.
        print(f"id:    {issued.id}\ntoken: {issued.token}")
        print("Keep the token now: it cannot be shown again. Revoke it by its id.")
        return 0

    return await _with_database(settings, work)


async def _revoke_token(settings: Settings, token_id: str) -> int:
    async def work(database: Database) -> int:
        if await AdminTokenStore(database).revoke(token_id):
            print(f"revoked {token_id}")
            return 0
        print(f"no unrevoked admin token has the id {token_id}", file=sys.stderr)
        return 1

    return await _with_database(settings, work)


async def _purge(settings: Settings, days: int | None) -> int:
    attendance_days = settings.attendance_days if days is None else days
    audit_days = settings.audit_retention_days if days is None else days

    async def work(database: Database) -> int:
        now = datetime.now(UTC)
        purged = await purge_attendance(SeriesStore(database), attendance_days, now)
        print(f"purged {purged} attendance records older than {attendance_days} days")
        audited = await purge_audit(SqlCircleStore(database), audit_days, now)
        print(f"purged {audited} moderation records older than {audit_days} days")
        return 0

    return await _with_database(settings, work)


def _serve(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    configure_logging(settings.log_format)
    settings = settings.with_overrides(
        host=args.host, port=args.port, data_dir=args.data_dir, workers=args.workers
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    apply_nice(settings.nice)  # before workers start: they inherit it
    workers = f" with {settings.workers} worker processes" if settings.workers > 1 else ""
    print(f"Hearth listening on http://{settings.host}:{settings.port}{workers}", flush=True)
    # SIGTERM (or Ctrl-C) drains first: see server.app.drain.
    asyncio.run(serve(create_app(settings), settings.host, settings.port))
    return 0


def _worker(args: argparse.Namespace) -> int:
    # Every line a worker logs says which one it is; the access log redacts tokens here too.
    settings = _settings_or_exit()
    configure_logging(settings.log_format, f"worker-{args.index} ")
    settings = settings.with_overrides(
        host=args.host, port=args.port, data_dir=args.data_dir, workers=args.workers
    )
    apply_nice(settings.nice)
    asyncio.run(serve(create_worker_app(settings, args.index, args.workers), args.host, args.port))
    return 0


def _settings_or_exit() -> Settings:
    try:
        return settings_from_env()
    except ValueError as err:
        # A setting that cannot work stops the start with one clear line, no traceback.
        print(f"hearth: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    raise SystemExit(main())
