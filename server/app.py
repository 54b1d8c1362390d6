"""Composition: build the aiohttp application from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import WSCloseCode, web

from rooms.overload import DRAINING_MESSAGE, LoadLimits
from server.access_log import RedactingAccessLogger
from server.api import add_api_routes
from server.appkeys import (
    ADMISSION,
    CLOCK,
    DATABASE,
    DOOR,
    HUB,
    NODES,
    SETTINGS,
    SUPERVISOR,
)
from server.config import Settings
from server.doors import Directory, Door, RegistryDirectory
from server.errors import api_error_middleware
from server.feeds import add_feed_routes
from server.health import add_health_routes
from server.live_settings import INTERNAL_PATH as LIVE_SETTINGS_PATH
from server.live_settings import internal_apply as apply_live_settings
from server.metrics import WORKER_METRICS_PATH, add_metrics, add_worker_metrics
from server.moderation_api import add_moderation_routes
from server.nodes import NodeRegistry
from server.nodes_api import add_internal_drain, add_node_routes, migrate_away
from server.ownership import OwnedCircleStore
from server.pages import (
    OPEN_SOCKETS,
    add_page_routes,
    circle_info,
    guards_from_settings,
    install_guards,
    security_headers,
    websocket,
)
from server.series_api import add_series_routes
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from server.storage.series import SeriesStore
from server.workers import WorkerDirectory, WorkerSupervisor, pick_worker
from signaling.admission import CLOSE_SERVICE_RESTART, Admission
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub
from signaling.peer import (
    TurnConfig,
    advertise_public_address,
    quiet_connect_race,
    restrict_ice_addresses,
    use_media_ports,
    use_turn,
    write_rtp_directly,
)
from signaling.protocol import use_crisis_default
from signaling.voice import tune_opus_for_voice

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# How often attendance past its keeping time is deleted while the server runs.
PURGE_EVERY = timedelta(hours=1)
# What the front gives its draining workers beyond their drain time before it kills them.
DRAIN_MARGIN_SECONDS = 5.0
# Seconds aiohttp waits for requests still running when the server finally stops.
SHUTDOWN_TIMEOUT = 5.0


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
    app[ADMISSION] = _admission(settings)
    _configure_media(settings)
    add_api_routes(app)
    add_series_routes(app)
    add_feed_routes(app)
    add_moderation_routes(app)  # issue 4
    add_node_routes(app)  # issue 13
    add_page_routes(app)
    add_health_routes(app)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        database = Database(settings.effective_database_url)
        await database.connect()
        app[DATABASE] = database
        store = SqlCircleStore(database, clock)
        # Peer connections do not survive a restart: whoever was present has gone (their
        # clients reconnect and take a seat again). With workers, this runs here, once,
        # before they start: a worker never closes the seats of another's circles. With
        # several nodes, only those of circles no node runs (_start_node).
        if not settings.redis_url:
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
        try:
            if settings.workers > 1:
                await _start_front(app, settings, store, clock)
            elif settings.redis_url:
                await _start_node(app, settings, store, clock)
            else:
                app[HUB] = CircleHub(
                    store,
                    _audio_factory(settings),
                    clock,
                    unstored_limit=settings.outage_keep_limit,
                )
        except BaseException:
            purger.cancel()
            await _stop_routing(app)
            await database.close()
            raise
        yield
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purger
        await _stop_routing(app)
        await database.close()

    if settings.redis_url and settings.workers == 1:
        # Other doors hand this node its circles' new settings (secret checked).
        app.router.add_post(LIVE_SETTINGS_PATH, apply_live_settings)
    app.cleanup_ctx.append(database_ctx)
    if settings.workers == 1:
        app.cleanup_ctx.append(_lag_monitor)  # with workers, each watches its own loop
    add_metrics(app, settings.metrics_host, settings.metrics_port)
    app.on_shutdown.append(close_connections)
    return app


async def _stop_routing(app: web.Application) -> None:
    """The workers (drained), then the door's connections."""
    supervisor = app.get(SUPERVISOR)
    if supervisor is not None:
        await supervisor.stop()
    door = app.get(DOOR)
    if door is not None:
        await door.close()


def _door(
    app: web.Application, store: SqlCircleStore, directory: Directory, describer: CircleHub
) -> Door:
    return Door(
        store,
        directory,
        describer,
        admission=app[ADMISSION],
        limits=guards_from_settings(app[SETTINGS]).sessions.limits,
    )


async def _start_front(
    app: web.Application, settings: Settings, store: SqlCircleStore, clock: Clock
) -> None:
    """``--workers N``: start and supervise the workers, and route sockets to them through
    the door: by a stable hash without Redis; with it, the workers are nodes in the
    registry and this front is one more door (it runs no circle, so it is not a node)."""
    node_id = settings.node_id or NodeRegistry.new_id()
    node_url = settings.node_url or _own_url(settings)
    supervisor = WorkerSupervisor(settings, settings.workers, node_id=node_id, node_url=node_url)
    app[SUPERVISOR] = supervisor
    # Describes a circle nothing runs (or whose worker is away); never opens one here.
    describer = CircleHub(store, _audio_factory(settings), clock, hosts=lambda _: False)
    directory: Directory
    if settings.redis_url:
        registry = NodeRegistry(
            settings.redis_url,
            prefix=settings.redis_prefix,
            node_id=node_id,
            url=node_url,
            media_address=_media_address(settings),
            load=lambda: (0, 0, 0.0),
            registers=False,
        )
        app[NODES] = registry
        directory = RegistryDirectory(registry, serves_here=False)
    else:
        directory = WorkerDirectory(supervisor)
    door = _door(app, store, directory, describer)
    await door.start()
    app[DOOR] = door
    if settings.redis_url:
        await app[NODES].start()
        # As a node does at start: seats of circles no node runs are closed.
        await store.close_stale_seats(clock(), live=await app[NODES].leased_circles())
    await supervisor.start()


def _media_address(settings: Settings) -> str:
    return settings.media_public_address or (
        settings.ice_addresses[0] if settings.ice_addresses else settings.host
    )


async def _start_node(
    app: web.Application,
    settings: Settings,
    store: SqlCircleStore,
    clock: Clock,
    *,
    worker: bool = False,
) -> None:
    """Several nodes: register in Redis, own circles by lease, route sockets by owner."""

    def load() -> tuple[int, int, float]:
        hub = app.get(HUB)
        circles = hub.live_circles() if hub is not None else []
        participants = sum(len(c.state.seats) + len(c.state.lobby) for c in circles)
        return participants, len(circles), app[ADMISSION].smoothed_lag * 1000

    registry = NodeRegistry(
        settings.redis_url,
        prefix=settings.redis_prefix,
        node_id=settings.node_id or NodeRegistry.new_id(),
        url=settings.node_url or _own_url(settings),
        media_address=_media_address(settings),
        load=load,
    )
    owned = OwnedCircleStore(store, registry)
    hub = CircleHub(owned, _audio_factory(settings), clock)
    hub.on_released = owned.released

    def lease_lost(circle_id: str) -> None:
        asyncio.get_running_loop().create_task(hub.evict(circle_id))

    registry.on_lease_lost = lease_lost
    app[HUB] = hub
    app[NODES] = registry
    door = _door(app, store, RegistryDirectory(registry, serves_here=True), hub)
    await door.start()
    app[DOOR] = door
    await registry.start()
    if not worker:
        # Seats of circles no node runs (their node died and nobody came back) are closed,
        # as one node does at start; the live circles' are left to their owners. (A
        # worker's front did it before starting it.)
        await store.close_stale_seats(clock(), live=await registry.leased_circles())


def _own_url(settings: Settings) -> str:
    """Where other nodes reach this one when HEARTH_NODE_URL does not say: its listening
    address, or its host name when it listens on every interface (as in a container)."""
    host = settings.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def create_worker_app(
    settings: Settings, index: int, workers: int, *, clock: Clock = utc_now
) -> web.Application:
    """One worker of ``hearth serve --workers N``.

    Without Redis: the live circles ``pick_worker`` gives it, reached only from the front
    over 127.0.0.1 (``/ws`` piped, ``/circle-info``, ``/internal/...``). With Redis: a node
    in the registry like any other (lease, fence, heartbeat), reached by any door with the
    cluster secret; the front is one of those doors.

    No start-up tasks (migrations, stale seats, tokens, purges): the front ran them. A
    circle it loads after a restart restores its saved state, so people reconnecting with
    their seat token get their seat back.
    """
    as_node = bool(settings.redis_url)
    middlewares = [security_headers, _same_machine_only] if as_node else [security_headers]
    app = web.Application(middlewares=middlewares, client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[ADMISSION] = _admission(settings)
    _configure_media(settings)
    app[OPEN_SOCKETS] = set()
    # Without Redis only the front reaches it (127.0.0.1); as a node, its door tells a
    # bridged request (cluster secret) from anyone else's.
    install_guards(app, behind_front=not as_node)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/circle-info", circle_info)
    app.router.add_post(LIVE_SETTINGS_PATH, apply_live_settings)
    if as_node:
        add_internal_drain(app)

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
        if as_node:
            await _start_node(app, settings, store, clock, worker=True)
        else:
            app[HUB] = CircleHub(
                store,
                _audio_factory(settings),
                clock,
                hosts=lambda circle_id: pick_worker(circle_id, workers) == index,
                unstored_limit=settings.outage_keep_limit,
            )
        orphaned = asyncio.get_running_loop().create_task(_stop_when_orphaned())
        yield
        orphaned.cancel()
        door = app.get(DOOR)
        if door is not None:
            await door.close()
        await database.close()

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(_lag_monitor)
    if settings.metrics_port:
        add_worker_metrics(app)  # gathered by the front's /metrics
    app.on_shutdown.append(close_connections)
    return app


@web.middleware
async def _same_machine_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A worker that is a node listens on the front's address, so other machines' doors
    reach it; what only its front asks for (its circles, its metrics) is answered only on
    this machine."""
    if request.path in ("/internal/live", WORKER_METRICS_PATH):
        remote = request.remote or ""
        if not (remote.startswith("127.") or remote in ("::1", request.app[SETTINGS].host)):
            raise web.HTTPNotFound()
    return await handler(request)


def _admission(settings: Settings) -> Admission:
    return Admission(
        LoadLimits(
            busy_lag=settings.busy_lag_ms / 1000,
            min_seated=settings.busy_min_seated,
            min_cpu_share=settings.busy_min_cpu_percent / 100,
        )
    )


async def _lag_monitor(app: web.Application) -> AsyncIterator[None]:
    # Where live circles run (one process, or each worker): their loop's lag, the people
    # seated in them and the process's own CPU use decide (rooms/overload.py).
    def seated() -> int:
        hub = app.get(HUB)
        return sum(len(c.state.seats) for c in hub.live_circles()) if hub is not None else 0

    task = asyncio.get_running_loop().create_task(app[ADMISSION].monitor(seated))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
    use_crisis_default(settings.crisis_text)


def _audio_factory(settings: Settings) -> Callable[[], SharedMixAudioPath]:
    forwarding = settings.audio_forwarding
    return lambda: SharedMixAudioPath(forward_lone_voice=forwarding)


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, drain (see ``drain``), then stop. A second signal
    during the drain cuts it short."""
    loop = asyncio.get_running_loop()
    quiet_connect_race(loop)
    stop, hurry = asyncio.Event(), asyncio.Event()
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, hurry.set)
        await drain(app, hurry)
    finally:
        await runner.cleanup()


async def drain(app: web.Application, hurry: asyncio.Event | None = None) -> None:
    """Stop taking arrivals, let the live circles go on for up to the drain time (less once
    nobody is connected), then close every socket with 1012 so pages come back by their
    seat tokens when the server is up again.

    Everyone connected is told at once (``server_draining``). The front of ``--workers N``
    refuses joins itself and stops its workers, which drain their circles the same way.
    """
    settings = app[SETTINGS]
    app[ADMISSION].start_draining()
    hurry = hurry or asyncio.Event()
    supervisor = app.get(SUPERVISOR)
    log.info("draining: no new arrivals; live circles go on for up to %d s", settings.drain_seconds)
    if supervisor is not None:
        await supervisor.stop(grace=settings.drain_seconds + DRAIN_MARGIN_SECONDS)
    elif NODES in app:
        await migrate_away(app)
    else:
        sockets: set[web.WebSocketResponse] = app[OPEN_SOCKETS]
        notice = {
            "type": "server_draining",
            "seconds": settings.drain_seconds,
            "message": DRAINING_MESSAGE,
        }
        for ws in list(sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(notice)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.drain_seconds
        while loop.time() < deadline and _anyone_connected(app) and not hurry.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hurry.wait(), min(0.25, deadline - loop.time()))
    await _close_all(app, CLOSE_SERVICE_RESTART)
    log.info("drained")


def _anyone_connected(app: web.Application) -> bool:
    hub = app.get(HUB)
    if hub is None:
        return False
    return any(
        any(seat.disconnected_at is None for seat in live.state.seats.values())
        or any(waiting.disconnected_at is None for waiting in live.state.lobby)
        for live in hub.live_circles()
    )


async def _close_all(app: web.Application, code: int) -> None:
    sockets: set[web.WebSocketResponse] = app[OPEN_SOCKETS]
    await asyncio.gather(
        *(ws.close(code=code, message=b"server restarting") for ws in list(sockets)),
        return_exceptions=True,
    )


async def close_connections(app: web.Application) -> None:
    # Tell every client the server is going away, so their pages reconnect.
    sockets: set[web.WebSocketResponse] = app[OPEN_SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting")
    hub = app.get(HUB)
    if hub is not None:
        await hub.close()
    registry = app.get(NODES)
    if registry is not None:
        await registry.close()  # after the circles wrote their last: leases go back


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
