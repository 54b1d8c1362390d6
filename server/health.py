"""``/healthz`` (the process answers) and ``/readyz`` (it can take joins now).

Load balancers, compose and systemd watch these. Neither says anything about circles or
people. Readiness asks the database for ``SELECT 1`` (bounded by a timeout) and every check
in ``app[READINESS_CHECKS]``: a function returning why the server is not ready, or None.
Draining on shutdown adds one there (``not_ready_while`` below).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import text

from server.appkeys import DATABASE

DATABASE_TIMEOUT_SECONDS = 2.0

READINESS_CHECKS: web.AppKey[list[Callable[[], str | None]]] = web.AppKey("readiness_checks")


def not_ready_while(app: web.Application, reason: Callable[[], str | None]) -> None:
    """Add a readiness check: ``reason()`` returns e.g. "draining", or None when fine."""
    app[READINESS_CHECKS].append(reason)


async def healthz(request: web.Request) -> web.Response:
    return _answer(200, "alive")


async def readyz(request: web.Request) -> web.Response:
    for check in request.app[READINESS_CHECKS]:
        reason = check()
        if reason:
            return _answer(503, reason)
    database = request.app.get(DATABASE)
    if database is None:
        return _answer(503, "starting")
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception:
        return _answer(503, "database_unreachable")
    return _answer(200, "ready")


def _answer(status: int, state: str) -> web.Response:
    response = web.json_response({"status": state}, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def add_health_routes(app: web.Application) -> None:
    app[READINESS_CHECKS] = []
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
