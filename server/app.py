"""Composition: build the aiohttp application from settings."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from aiohttp import WSCloseCode, web

from server.api import add_api_routes
from server.appkeys import DATABASE, HUB, SETTINGS
from server.config import Settings
from server.errors import api_error_middleware
from server.pages import OPEN_SOCKETS, add_page_routes, security_headers
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub
from signaling.peer import restrict_ice_addresses, write_rtp_directly
from signaling.voice import tune_opus_for_voice

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Clock = utc_now) -> web.Application:
    app = web.Application(
        middlewares=[security_headers, api_error_middleware],
        client_max_size=256 * 1024,
    )
    app[SETTINGS] = settings
    restrict_ice_addresses(settings.ice_addresses)
    tune_opus_for_voice()
    write_rtp_directly(settings.audio_direct_rtp)
    add_api_routes(app)
    add_page_routes(app)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        database = Database(settings.effective_database_url)
        await database.connect()
        app[DATABASE] = database
        store = SqlCircleStore(database)
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
        yield
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
