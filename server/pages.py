"""The pages a person opens: the circle page for any link, and the static client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from rooms.limits import BackoffPolicy
from server.appkeys import ADMISSION, DOOR, HUB, SETTINGS
from server.config import Settings
from server.doors import CLIENT_ADDRESS_HEADER
from signaling import protocol
from signaling.guard import AddressGate, Guards, PasscodeGuard, RateByKey, SessionLimits
from signaling.protocol import MAX_MESSAGE_BYTES, MAX_TOKEN_CHARS
from signaling.session import ClientSession
from signaling.store import StorageUnavailable

# The page talks only to this server: no third-party scripts, fonts or connections.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

routes = web.RouteTableDef()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Permissions-Policy", "microphone=(self), camera=()")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    # Nothing to browse: a circle is entered through its link.
    return _page(request)


@routes.get("/c/{token}")
async def circle_page(request: web.Request) -> web.StreamResponse:
    # The same page for every token: whether a link exists is only learnt by joining,
    # and the answer to an unknown link is the answer to a closed circle.
    return _page(request)


@routes.get("/c/")
async def circle_page_without_token(request: web.Request) -> web.StreamResponse:
    # Where the page moves the address bar after joining, so a token is not left there.
    return _page(request)


@routes.post("/circle-info")
async def circle_info(request: web.Request) -> web.Response:
    """What the join page shows before joining (title, hosts present, the link's role).

    The token comes in the body, never the URL, so it stays out of access logs. An unknown
    link and a circle that is not open get the same answer, as a refused join does.
    """
    guards = request.app[PAGE_GUARDS]
    now = time.monotonic()
    door = request.app.get(DOOR)
    # Asked by another process's door for a circle live here: that door limited the asker.
    bridged = door is not None and door.is_bridged(request)
    if (
        not guards.behind_front
        and not bridged
        and not (
            guards.circle_info.allow(_address(request), now=now)
            # A flood spread over many addresses meets the process-wide bound: the page joins
            # fine without this answer (join says what it needs), a live circle needs the loop.
            and guards.circle_info.allow("", now=now, total=True)
        )
    ):
        return await _too_many(guards)
    token: object = None
    # RecursionError: deeply nested JSON is as malformed as any other (never a 500).
    with contextlib.suppress(ValueError, RecursionError):
        body = json.loads(await request.read())
        if isinstance(body, dict):
            token = body.get("token")
    if isinstance(token, str) and not _is_text(token):
        token = None
    info = None
    if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS:
        async with request.app[PAGE_GUARDS].circle_info_slots:
            try:
                if door is not None and not bridged:
                    info = await door.describe_link(token)  # by the process running it
                else:
                    info = await request.app[HUB].describe_link(token)
            except StorageUnavailable:
                return _storage_unavailable()
    response = web.json_response({"open": False} if info is None else {"open": True, **info})
    response.headers["Cache-Control"] = "no-store"
    return response


def _storage_unavailable() -> web.Response:
    """The database is away (an outage): a stable answer the page can ignore (it shows its
    plain join form; ``join`` says the same and may be tried again), never a 500."""
    body = {
        "open": False,
        "error": {
            "code": protocol.STORAGE_UNAVAILABLE,
            "message": protocol.STORAGE_UNAVAILABLE_MESSAGE,
        },
    }
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    return web.json_response(body, status=503, headers=headers)


async def _too_many(guards: PageGuards) -> web.Response:
    """429, after a pause: a flooder that waits for each answer (keep-alive, one request at a
    time) is slowed to one request a second per connection instead of being answered as
    fast as it asks, which costs the event loop that carries the circles. A pause costs no
    CPU; past TARPIT_LIMIT paused requests the answer comes at once and the connection closes."""
    headers = {"Retry-After": "1", "Cache-Control": "no-store"}
    if guards.tarpitted < TARPIT_LIMIT:
        guards.tarpitted += 1
        try:
            await asyncio.sleep(TARPIT_SECONDS)
        finally:
            guards.tarpitted -= 1
    else:
        headers["Connection"] = "close"
    return web.json_response({"open": False}, status=429, headers=headers)


def _page(request: web.Request, name: str = "index.html") -> web.StreamResponse:
    response = web.FileResponse(request.app[SETTINGS].web_dir / name)
    response.headers["Cache-Control"] = "no-store"
    response.content_type = "text/html"
    return response


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.StreamResponse:
    # The console asks for the admin token itself; the page holds no secret.
    return _page(request, "admin.html")


@routes.get("/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings):
        # Before the upgrade: a page from another site never gets a socket here.
        return web.json_response(
            {"error": {"code": "forbidden_origin", "message": "This origin may not connect."}},
            status=403,
        )
    guards = request.app[PAGE_GUARDS]
    door = request.app.get(DOOR)
    # Piped here by another process's door, which counted it by the client's address.
    bridged = door is not None and door.is_bridged(request)
    # The client's address keys the per-address limits. A process behind a door sees only
    # the door's connection; the door passes the client's address with the join. The
    # unjoined sockets are counted where they are accepted: at the door.
    address = _client_address(request, guards, bridged)
    counted = bool(address) and not guards.behind_front and not bridged
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    if counted and not guards.sessions.unjoined.enter(address):
        await ws.send_json(
            protocol.error_message(
                protocol.TOO_MANY_CONNECTIONS, protocol.TOO_MANY_CONNECTIONS_MESSAGE, None
            )
        )
        await ws.close(code=protocol.CLOSE_TOO_MANY_CONNECTIONS)
        return ws

    def joined() -> None:
        nonlocal counted
        if counted:
            counted = False
            guards.sessions.unjoined.leave(address)

    sockets = request.app[OPEN_SOCKETS]
    sockets.add(ws)
    try:
        join_timeout = settings.join_timeout_seconds
        hub = request.app.get(HUB)

        async def serve_here(first: str | None) -> None:
            assert hub is not None
            session = ClientSession(
                ws,
                hub,
                join_timeout=join_timeout,
                admission=request.app[ADMISSION],
                guards=guards.sessions,
                address=address,
                on_joined=joined,
            )
            await session.run(first)

        if door is not None and not bridged:
            # Served here, or piped to the process running the circle (a worker, a node).
            await door.serve(
                ws,
                join_timeout=join_timeout,
                address=address,
                on_joined=joined,
                serve_here=serve_here if hub is not None else None,
            )
        else:
            await serve_here(None)
    finally:
        joined()
        sockets.discard(ws)
    return ws


def origin_allowed(request: web.Request, settings: Settings) -> bool:
    """Browsers always send Origin on a WebSocket; a page of another site must not drive a
    visitor's browser into a circle here (cross-site WebSocket hijacking). A request without
    Origin comes from a program, not a page (bots, the bench, another process's front):
    it is let through, as it could forge any Origin anyway."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    allowed = settings.allowed_origins or (own_origin(request, settings),)
    return origin.rstrip("/").lower() in {a.lower() for a in allowed}


def own_origin(request: web.Request, settings: Settings) -> str:
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.scheme}://{request.host}"


def _address(request: web.Request) -> str:
    # A dictionary key for the limits, in memory only: never logged, never stored.
    return request.remote or ""


def _client_address(request: web.Request, guards: PageGuards, bridged: bool = False) -> str:
    """The address of the person on this socket: the peer's, or the one a door saw and
    passed on: behind the front (a worker without Redis, listening on 127.0.0.1 only), or
    from a door that proved itself with the cluster secret."""
    if guards.behind_front or bridged:
        return request.headers.get(CLIENT_ADDRESS_HEADER, "")
    return _address(request)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class PageGuards:
    sessions: Guards
    circle_info: RateByKey
    # Lookups of /circle-info in flight at once, so a flood cannot take every database
    # connection a live circle needs for its next command.
    circle_info_slots: asyncio.Semaphore
    behind_front: bool = False
    # Refused /circle-info requests now waiting out their pause.
    tarpitted: int = 0


def guards_from_settings(settings: Settings, *, behind_front: bool = False) -> PageGuards:
    limits = SessionLimits(
        message_rate=settings.message_rate,
        message_burst=float(settings.message_burst),
        flood_close_after=settings.flood_close_after,
        rename_burst=float(settings.rename_burst),
        rename_every_seconds=float(settings.rename_every_seconds),
        passcode_tries_per_socket=settings.passcode_tries_per_socket,
        lobby_idle_seconds=float(settings.lobby_idle_seconds),
        lobby_size=settings.lobby_size,
    )
    passcodes = PasscodeGuard(
        per_person=BackoffPolicy(
            free_failures=settings.passcode_free_failures,
            max_delay=float(settings.passcode_max_delay_seconds),
        )
    )
    return PageGuards(
        sessions=Guards(
            limits, passcodes, AddressGate(limit=settings.unjoined_sockets_per_address)
        ),
        circle_info=RateByKey(
            settings.circle_info_rate,
            float(settings.circle_info_burst),
            total_rate=settings.circle_info_total_rate,
        ),
        circle_info_slots=asyncio.Semaphore(CIRCLE_INFO_SLOTS),
        behind_front=behind_front,
    )


CIRCLE_INFO_SLOTS = 4
TARPIT_SECONDS = 1.0
TARPIT_LIMIT = 512
OPEN_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("open_sockets")
PAGE_GUARDS: web.AppKey[PageGuards] = web.AppKey("page_guards")


def install_guards(app: web.Application, *, behind_front: bool = False) -> None:
    """The limits' memory for this process (each worker has its own)."""
    app[PAGE_GUARDS] = guards_from_settings(app[SETTINGS], behind_front=behind_front)


def add_page_routes(app: web.Application) -> None:
    app[OPEN_SOCKETS] = set()
    install_guards(app)
    app.router.add_routes(routes)
    app.router.add_static("/static/", app[SETTINGS].web_dir, append_version=False)
