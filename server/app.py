"""Composition: build the aiohttp application from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import WSCloseCode, web

from server.api import add_api_routes
from server.appkeys import CLOCK, DATABASE, HUB, SETTINGS
from server.config import Settings
from server.errors import api_error_middleware
from server.feeds import add_feed_routes
from server.moderation_api import add_moderation_routes
from server.pages import OPEN_SOCKETS, add_page_routes, security_headers
from server.series_api import add_series_routes
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from server.storage.series import SeriesStore
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub
from signaling.peer import restrict_ice_addresses, write_rtp_directly
from signaling.voice import tune_opus_for_voice

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How often attendance past its keeping time is deleted while the server runs.
PURGE_EVERY = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Clock = utc_now) -> web.Application:
    app = web.Application(
        middlewares=[security_headers, api_error_middleware],
        client_max_size=256 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    restrict_ice_addresses(settings.ice_addresses)
    tune_opus_for_voice()
    write_rtp_directly(settings.audio_direct_rtp)
    add_api_routes(app)
    add_series_routes(app)
    add_feed_routes(app)
    add_moderation_routes(app)  # issue 4
    add_page_routes(app)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        database = Database(settings.effective_database_url)
        await database.connect()
        app[DATABASE] = database
        store = SqlCircleStore(database, clock)
        # Peer connections do not survive a restart: whoever was present has gone (their
        # clients reconnect and take a seat again).
        await store.close_stale_seats(clock())
        if settings.admin_token is None:
            token = await store.ensure_bootstrap_token()
            if token is not None:
                _announce_admin_token(token)
        forwarding = settings.audio_forwarding
        app[HUB] = CircleHub(
            store, lambda: SharedMixAudioPath(forward_lone_voice=forwarding), clock
        )
        series = SeriesStore(database)
        # Once before serving (so a restart never serves stale records), then hourly.
        await _purge_once(series, store, settings, clock)
        purger = asyncio.get_running_loop().create_task(
            _purge_forever(series, store, settings, clock)
        )
        yield
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purger
        await database.close()

    async def close_connections(app: web.Application) -> None:
        # Tell every client the server is going away, so their pages reconnect.
        sockets: set[web.WebSocketResponse] = app[OPEN_SOCKETS]
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting")
        await app[HUB].close()

    app.cleanup_ctx.append(database_ctx)
    app.on_shutdown.append(close_connections)
    return app


async def purge_attendance(store: SeriesStore, days: int, now: datetime) -> int:
    """Delete attendance older than ``days``; the one rule behind the timer and the CLI."""
    return await store.purge_attendance(before=now - timedelta(days=days))


async def purge_audit(store: SqlCircleStore, days: int, now: datetime) -> int:
    """Delete moderation records older than ``days``, kept like attendance."""
    return await store.purge_audit(now - timedelta(days=days))


async def _purge_once(
    series: SeriesStore, store: SqlCircleStore, settings: Settings, clock: Clock
) -> None:
    try:
        now = clock()
        attendance = await purge_attendance(series, settings.attendance_days, now)
        audit = await purge_audit(store, settings.audit_retention_days, now)
        if attendance or audit:
            log.info("purged %d attendance and %d moderation records", attendance, audit)
    except Exception:
        log.exception("purging old records failed; trying again later")


async def _purge_forever(
    series: SeriesStore, store: SqlCircleStore, settings: Settings, clock: Clock
) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY.total_seconds())
        await _purge_once(series, store, settings, clock)


def _announce_admin_token(token: str) -> None:
    # Printed once on the terminal that started the server, never logged: only its hash
    # is kept, so this is the one chance to copy it.
    print(
        "\nNo admin token existed, so one was made. It is shown only this once:\n\n"
        f"    HEARTH_ADMIN_TOKEN={token}\n\n"
        "Use it as 'Authorization: Bearer <token>' for /api/v1.\n",
        file=sys.stdout,
        flush=True,
    )
