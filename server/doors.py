"""Any door: a WebSocket reaching any node is served by the node that owns its circle.

The first message of a socket names the link (``join``). The door resolves it to the
circle, asks Redis who holds the circle's lease, and when nobody does, places it on the
least-loaded healthy node (``rooms.placement.choose_node``). When that is this node, the
socket is served here as on one node; otherwise it is piped to the owner's ``/ws`` for the
rest of its life (the same pipe as ``--workers``' front), marked with the cluster secret so
the owner serves it instead of routing it again. Media never passes the door: the owner's
answer carries the owner's own ICE candidates.

The door takes the lease for the node it chose (set if absent) before piping, so two
doors placing one circle at the same moment agree: the second finds the first's choice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

from rooms.placement import NodeLoad
from server.nodes import NodeRegistry
from server.workers import pipe_websocket
from signaling import protocol
from signaling.hub import CircleHub
from signaling.protocol import Join, ProtocolError
from signaling.store import CircleStore, StorageUnavailable

log = logging.getLogger(__name__)

# Header a bridged WebSocket carries to its owner: the cluster secret (server.nodes).
BRIDGE_HEADER = "X-Hearth-Bridge"


class BridgeStats:
    """What bridging cost, for docs/performance.md: piped sockets and the time a door took
    to decide where a join goes and to open the pipe."""

    def __init__(self) -> None:
        self.bridged = 0
        self.served_here = 0
        self.routing_seconds = 0.0


class NodeRouter:
    def __init__(self, store: CircleStore, registry: NodeRegistry) -> None:
        self._store = store
        self._registry = registry
        self._http: aiohttp.ClientSession | None = None
        self.stats = BridgeStats()

    async def start(self) -> None:
        # No limit: each piped WebSocket holds one connection for its whole life.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = None

    def is_bridged(self, request: web.Request) -> bool:
        """A socket another node's door piped here (it carries the cluster secret)."""
        secret = self._registry.secret
        return bool(secret) and request.headers.get(BRIDGE_HEADER) == secret

    async def owner_url(self, token: str) -> str | None:
        """The URL of the node that runs (or should run) a link's circle; None for this
        node, an unknown link, or when Redis cannot say (then this node answers itself)."""
        match = await self._store.find_by_link(token)
        if match is None or match.circle is None:
            return None
        try:
            owner = await self._registry.place_circle(match.circle.id)
            if owner is None or owner == self._registry.node_id:
                return None
            node = await self._registry.node(owner)
        except (RedisError, OSError):
            return None
        if node is None:
            # Its lease outlived its record (killed): wait for the lease to expire.
            raise OwnerAway(owner)
        return node.url

    async def _owner_of(self, circle_id: str) -> NodeLoad | None:
        """The node running a circle now, when it is another node (None: here or nowhere)."""
        owner = await self._registry.owner(circle_id)
        if owner is None or owner == self._registry.node_id:
            return None
        return await self._registry.node(owner)

    async def describe_link(self, token: str, hub: CircleHub) -> dict[str, Any] | None:
        """POST /circle-info answered the same from every node: by the owner, which knows
        who is present; from the database alone when nobody runs the circle (or the owner
        does not answer)."""
        match = await self._store.find_by_link(token)
        if match is None or match.circle is None:
            return None
        try:
            node = await self._owner_of(match.circle.id)
        except (RedisError, OSError):
            node = None
        if node is not None:
            try:
                async with self.http.post(
                    node.url + "/circle-info",
                    json={"token": token},
                    headers={BRIDGE_HEADER: self._registry.secret},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    body: dict[str, Any] = await response.json()
                if not body.pop("open", False):
                    return None
                return body
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                log.warning("owner node did not describe a circle; answering from storage")
        return await hub.describe_link(token)

    async def tell_owner(self, circle_id: str, path: str, body: dict[str, Any]) -> bool | None:
        """POST to the internal endpoint of the node running a circle; None when that is
        this node or no node (the caller acts here), else whether the owner took it."""
        try:
            node = await self._owner_of(circle_id)
        except (RedisError, OSError):
            return None
        if node is None:
            return None
        try:
            async with self.http.post(
                node.url + path,
                json=body,
                headers={BRIDGE_HEADER: self._registry.secret},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            log.warning("owner node did not take %s", path)
            return False

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("NodeRouter.start() has not been awaited")
        return self._http

    async def serve(
        self,
        ws: web.WebSocketResponse,
        *,
        join_timeout: float,
        serve_here: Callable[[str | None], Awaitable[None]],
        on_piped: Callable[[], None] = lambda: None,
    ) -> None:
        """Read the first message; serve the socket here or pipe it to the owner."""
        started = time.monotonic()
        first: str | None = None
        try:
            async with asyncio.timeout(join_timeout):
                async for msg in ws:
                    if msg.type == WSMsgType.TEXT:
                        first = msg.data
                    break
        except TimeoutError:
            pass
        if first is None:
            await serve_here(None)  # closed, binary or silent: as one node says it
            return
        url: str | None = None
        try:
            message = protocol.parse(first)
            if isinstance(message, Join):
                url = await self.owner_url(message.token)
        except ProtocolError:
            url = None
        except StorageUnavailable:
            url = None  # the session here says storage_unavailable
        except OwnerAway as away:
            log.info("node %s holds a lease but is not beating; page retries", away.owner)
            await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"circle moving")
            return
        if url is None:
            self.stats.served_here += 1
            self.stats.routing_seconds += time.monotonic() - started
            await serve_here(first)
            return
        on_piped()  # the owner bounds it from here (join timeout, limits)
        await self._pipe(ws, url, first, started)

    async def _pipe(self, ws: web.WebSocketResponse, url: str, first: str, started: float) -> None:
        ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"
        self.stats.bridged += 1
        self.stats.routing_seconds += time.monotonic() - started
        # The same pipe as --workers' front; a page whose owner went away reconnects.
        await pipe_websocket(
            self.http, ws, ws_url, first, headers={BRIDGE_HEADER: self._registry.secret}
        )


class OwnerAway(Exception):
    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner
