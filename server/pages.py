"""The pages a person opens: the circle page for any link, and the static client."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.appkeys import ADMISSION, HUB, ROUTER, SETTINGS
from signaling.protocol import MAX_MESSAGE_BYTES, MAX_TOKEN_CHARS
from signaling.session import ClientSession

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
    token: object = None
    with contextlib.suppress(ValueError):
        body = await request.json()
        if isinstance(body, dict):
            token = body.get("token")
    info = None
    if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS:
        router = request.app.get(ROUTER)
        if router is not None:
            info = await router.describe_link(token)  # from the circle's worker
        else:
            info = await request.app[HUB].describe_link(token)
    response = web.json_response({"open": False} if info is None else {"open": True, **info})
    response.headers["Cache-Control"] = "no-store"
    return response


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
async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    sockets = request.app[OPEN_SOCKETS]
    sockets.add(ws)
    try:
        router = request.app.get(ROUTER)
        join_timeout = request.app[SETTINGS].join_timeout_seconds
        if router is not None:
            # Piped to the worker that hosts the circle.
            await router.serve(ws, join_timeout=join_timeout)
        else:
            hub, admission = request.app[HUB], request.app[ADMISSION]
            await ClientSession(ws, hub, join_timeout=join_timeout, admission=admission).run()
    finally:
        sockets.discard(ws)
    return ws


OPEN_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("open_sockets")


def add_page_routes(app: web.Application) -> None:
    app[OPEN_SOCKETS] = set()
    app.router.add_routes(routes)
    app.router.add_static("/static/", app[SETTINGS].web_dir, append_version=False)
