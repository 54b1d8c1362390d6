"""Composition: build the aiohttp application from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import WSCloseCode, web

from server.api import add_api_routes
from server.appkeys import CLOCK, DATABASE, HUB, ROUTER, SETTINGS
from server.config import Settings
from server.errors import api_error_middleware
from server.feeds import add_feed_routes
from server.health import add_health_routes
from server.metrics import add_metrics
from server.moderation_api import add_moderation_routes
from server.pages import OPEN_SOCKETS, add_page_routes, circle_info, security_headers, websocket
from server.series_api import add_series_routes
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from server.storage.series import SeriesStore
from server.workers import FrontRouter, WorkerSupervisor, pick_worker
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub
from signaling.peer import (
    TurnConfig,
    advertise_public_address,
    restrict_ice_addresses,
    use_media_ports,
    use_turn,
    write_rtp_directly,
)
from signaling.voice import tune_opus_for_voice

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How often attendance past its keeping time is deleted while the server runs.
PURGE_EVERY = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Clock = utc_now) -> web.Application:
    """The whole server; with ``settings.workers`` > 1, its front (live circles in workers)."""
    app = web.Application(
        middlewares=[security_headers, api_error_middleware],
        client_max_size=256 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    _configure_media(settings)
    add_api_routes(app)
    add_series_routes(app)
    add_feed_routes(app)
    add_moderation_routes(app)  # issue 4
    add_page_routes(app)
    add_health_routes(app)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        database = Database(settings.effective_database_url)
        await database.connect()
        app[DATABASE] = database
        store = SqlCircleStore(database, clock)
        # Peer connections do not survive a restart: whoever was present has gone (their
        # clients reconnect and take a seat again). With workers, this runs here, once,
        # before they start: a worker never closes the seats of another's circles.
        await store.close_stale_seats(clock())
        if settings.admin_token is None:
            token = await store.ensure_bootstrap_token()
            if token is not None:
                _announce_admin_token(token)
        series = SeriesStore(database)
        # Once before serving (so a restart never serves stale records), then hourly.
        await _purge_once(series, store, settings, clock)
        purger = asyncio.get_running_loop().create_task(
            _purge_forever(series, store, settings, clock)
        )
        supervisor: WorkerSupervisor | None = None
        if settings.workers > 1:
            supervisor = WorkerSupervisor(settings, settings.workers)
            # Describes a circle whose worker is away; never opens one here.
            describer = CircleHub(store, _audio_factory(settings), clock, hosts=lambda _: False)
            router = FrontRouter(store, supervisor.ports, describer)
            await router.start()
            app[ROUTER] = router
            try:
                await supervisor.start()
            except BaseException:
                purger.cancel()
                await supervisor.stop()
                await router.close()
                await database.close()
                raise
        else:
            app[HUB] = CircleHub(store, _audio_factory(settings), clock)
        yield
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purger
        if supervisor is not None:
            await supervisor.stop()
            await app[ROUTER].close()
        await database.close()

    app.cleanup_ctx.append(database_ctx)
    add_metrics(app, settings.metrics_host, settings.metrics_port)
    app.on_shutdown.append(close_connections)
    return app


def create_worker_app(
    settings: Settings, index: int, workers: int, *, clock: Clock = utc_now
) -> web.Application:
    """One worker of ``hearth serve --workers N``: the live circles ``pick_worker`` gives
    it, reached only from the front over 127.0.0.1 (``/ws`` piped, ``/internal/...``).

    No start-up tasks (migrations, stale seats, tokens, purges): the front ran them. A
    circle it loads after a restart restores its saved state, so people reconnecting with
    their seat token get their seat back.
    """
    app = web.Application(middlewares=[security_headers], client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    _configure_media(settings)
    app[OPEN_SOCKETS] = set()
    app.router.add_get("/ws", websocket)
    app.router.add_post("/internal/circle-info", circle_info)

    async def live(request: web.Request) -> web.Response:
        circles = [
            {"id": c.id, "seats": len(c.state.seats)} for c in request.app[HUB].live_circles()
        ]
        return web.json_response({"worker": index, "pid": os.getpid(), "circles": circles})

    app.router.add_get("/internal/live", live)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        database = Database(settings.effective_database_url)
        await database.connect()  # already at the newest revision: the front migrated
        app[DATABASE] = database
        store = SqlCircleStore(database, clock)
        app[HUB] = CircleHub(
            store,
            _audio_factory(settings),
            clock,
            hosts=lambda circle_id: pick_worker(circle_id, workers) == index,
        )
        orphaned = asyncio.get_running_loop().create_task(_stop_when_orphaned())
        yield
        orphaned.cancel()
        await database.close()

    app.cleanup_ctx.append(database_ctx)
    if settings.metrics_port:
        add_metrics(app, settings.metrics_host, settings.metrics_port + 1 + index)
    app.on_shutdown.append(close_connections)
    return app


def _configure_media(settings: Settings) -> None:
    restrict_ice_addresses(settings.ice_addresses)
    use_media_ports(settings.media_ports)
    advertise_public_address(settings.media_public_address)
    use_turn(
        TurnConfig(settings.turn_secret, settings.turn_urls, settings.turn_ttl_seconds)
        if settings.turn_secret and settings.turn_urls
        else None
    )
    tune_opus_for_voice()
    write_rtp_directly(settings.audio_direct_rtp)


def _audio_factory(settings: Settings) -> Callable[[], SharedMixAudioPath]:
    forwarding = settings.audio_forwarding
    return lambda: SharedMixAudioPath(forward_lone_voice=forwarding)


async def close_connections(app: web.Application) -> None:
    # Tell every client the server is going away, so their pages reconnect.
    sockets: set[web.WebSocketResponse] = app[OPEN_SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting")
    hub = app.get(HUB)
    if hub is not None:
        await hub.close()


async def _stop_when_orphaned() -> None:
    # A worker whose front is gone (killed without a chance to stop it) stops too.
    parent = os.getppid()
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent:
            log.warning("the front process is gone; stopping")
            os.kill(os.getpid(), signal.SIGTERM)
            return


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
