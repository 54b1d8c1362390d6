"""The door: a WebSocket may reach any process; the one running its circle serves it.

One routing mechanism, whatever the circles run on. A socket's first ``join`` names a link;
the door resolves it to the circle (the occurrence) and asks its *directory* where that
circle lives, then either serves the socket here (the process has a hub and the circle is
its own) or pipes it, from the join on, to the process that runs the circle, for the rest of
its life. Media never passes the door: that process's answer carries its own ICE candidates.

Two directories answer "where does this circle live":

- ``RegistryDirectory`` (several nodes, ``HEARTH_REDIS_URL``): the lease holder in Redis,
  else the least-loaded healthy node (``rooms.placement.choose_node``), which gets the lease
  at once (set if absent) so two doors placing one circle agree.
- ``server.workers.WorkerDirectory`` (one machine's ``--workers N`` without Redis): the
  worker a stable hash of the circle id gives (``rooms.placement.pick_worker``); the front
  supervises the workers.

With ``--workers N`` *and* Redis the workers are nodes in the registry and the front is a
door over ``RegistryDirectory`` that runs no circle itself.

Everything else is the door's, the same for both: the answers before a join (as one process
gives them, with the same per-socket message rate), the join timeout, the refusal of
newcomers while this process shuts down, a storage outage (refused, except someone coming
back with a seat token to a process the door remembers sending their link to), the order of
arrivals (a participant's join to a circle a host is opening reaches its process after the
host's), the client's address and the cluster secret on the piped socket, and the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

from rooms.limits import Bucket, Strikes, strike, take
from rooms.model import CircleStatus, Role
from rooms.overload import SERVER_DRAINING
from server.nodes import NodeRegistry
from signaling import protocol
from signaling.admission import CLOSE_SERVICE_RESTART, REFUSAL_MESSAGES, Admission
from signaling.guard import SessionLimits
from signaling.hub import HOST_ARRIVAL_WAIT, CircleHub
from signaling.protocol import Join, ProtocolError, error_message
from signaling.session import FLOOD_FORGET_SECONDS, type_of
from signaling.single_flight import SingleFlight
from signaling.store import CircleStore, StorageUnavailable

log = logging.getLogger(__name__)

# Header a piped WebSocket (and an internal call) carries to another node: the cluster
# secret (server.nodes), so a client cannot pretend to be a door.
BRIDGE_HEADER = "X-Hearth-Bridge"
# The client's address, as the door saw it, on the piped WebSocket: the process running
# the circle keys its per-address limits (wrong passcodes) on it. It is believed only from
# a door: over 127.0.0.1 from the front (a worker without Redis listens there only), or with
# the cluster secret (server/pages.py). Never logged or stored.
CLIENT_ADDRESS_HEADER = "X-Hearth-Client-Address"
# How long a door holds a join for a circle its draining node is handing over, and how
# often it looks whether the lease is gone (see RegistryDirectory.place).
HAND_OVER_WAIT = 3.0
HAND_OVER_POLL = 0.02
# Links whose process the door remembers for an outage (a few dozen bytes each).
REMEMBERED_ROUTES = 10_000
# Close codes a WebSocket may send (RFC 6455 7.4): what an owner's close is passed on with.
_SENDABLE = {*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)}


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a circle runs: another process (its base URL), or this one (``url`` None)."""

    url: str | None
    # For the log: "worker 1", "node-b".
    name: str


HERE = Destination(None, "here")


class OwnerAway(Exception):
    """A node holds the circle's lease but no longer beats (killed): wait for the lease."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


class NoPlace(Exception):
    """No process takes circles now (every node is draining)."""


class Directory(Protocol):
    """Where circles live: the one question the door asks, per kind of deployment."""

    @property
    def secret(self) -> str:
        """What a piped socket or an internal call carries ("" when nothing is needed)."""
        ...

    async def place(self, circle_id: str) -> Destination:
        """Where the circle runs, placing it when nothing runs it. Raises
        StorageUnavailable (cannot say now), OwnerAway or NoPlace."""
        ...

    async def running(self, circle_id: str) -> Destination | None:
        """Where the circle runs now, or None (nowhere, or cannot say): then the caller
        answers from storage and acts on its own hub, if any."""
        ...

    async def unplaced(self, token: str) -> Destination:
        """Where a join whose link names no circle goes, to be refused exactly as one
        process refuses it (an unknown link and a closed circle look the same)."""
        ...


class RegistryDirectory:
    """Several nodes: the Redis registry and leases (server.nodes). ``serves_here``: this
    process is a node with circles of its own (not a front over workers)."""

    def __init__(self, registry: NodeRegistry, *, serves_here: bool) -> None:
        self._registry = registry
        self._serves_here = serves_here
        # One placement in flight per circle: everyone reconnecting after a drain (a whole
        # circle at once) waits on the same Redis look-ups instead of polling them each.
        self._placing: SingleFlight[str, Destination] = SingleFlight()

    @property
    def secret(self) -> str:
        return self._registry.secret

    def _is_here(self, node_id: str) -> bool:
        return self._serves_here and node_id == self._registry.node_id

    async def place(self, circle_id: str) -> Destination:
        return await self._placing.run(circle_id, lambda: self._place(circle_id))

    async def _place(self, circle_id: str) -> Destination:
        """The lease holder, else the node placed now. A circle whose node is draining is
        being handed over (its sockets closed with 1012, its last writes stored, then its
        lease given back): the door holds the join until the lease is gone, up to
        HAND_OVER_WAIT, and places it afresh, instead of sending it to a node that would
        refuse it and make the page come back after its backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HAND_OVER_WAIT
        while True:
            try:
                owner = await self._registry.place_circle(circle_id)
                if owner is None:
                    raise NoPlace
                node = None
                if owner == self._registry.node_id:
                    handing_over = self._registry.draining
                else:
                    node = await self._registry.node(owner)
                    handing_over = node is not None and node.draining
            except (RedisError, OSError) as error:
                # Nobody can tell who owns a circle: as a database outage.
                raise StorageUnavailable(f"Redis: {type(error).__name__}") from error
            if handing_over and loop.time() < deadline:
                await asyncio.sleep(HAND_OVER_POLL)
                continue
            if self._is_here(owner):
                return HERE
            if node is None:
                # Its lease outlived its record (killed): wait for the lease to expire.
                raise OwnerAway(owner)
            return Destination(node.url, owner)

    async def running(self, circle_id: str) -> Destination | None:
        try:
            owner = await self._registry.owner(circle_id)
            if owner is None:
                return None
            if self._is_here(owner):
                return HERE
            node = await self._registry.node(owner)
        except (RedisError, OSError):
            return None
        return None if node is None else Destination(node.url, owner)

    async def unplaced(self, token: str) -> Destination:
        if self._serves_here:
            return HERE
        try:
            node = await self._registry.place()
        except (RedisError, OSError) as error:
            raise StorageUnavailable(f"Redis: {type(error).__name__}") from error
        if node is None:
            raise NoPlace
        return Destination(node.url, node.node_id)


class BridgeStats:
    """What routing cost, for docs/performance.md: piped sockets, sockets served here, and
    the time the door took to decide where a join goes."""

    def __init__(self) -> None:
        self.bridged = 0
        self.served_here = 0
        self.routing_seconds = 0.0


ServeHere = Callable[[str], Awaitable[None]]


class Door:
    """The one router: a join's circle found through ``directory``, served here or piped."""

    def __init__(
        self,
        store: CircleStore,
        directory: Directory,
        describer: CircleHub,
        *,
        admission: Admission | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self._store = store
        self.directory = directory
        # Answers /circle-info from storage when no other process runs the circle (this
        # node's own hub, or at a front a hub that never opens a circle).
        self._describer = describer
        # This process's own: shutting down, its door takes no new arrival. Load is judged
        # where the circle runs.
        self._admission = admission
        self._limits = limits or SessionLimits()
        self._http: aiohttp.ClientSession | None = None
        self.stats = BridgeStats()
        # Where links that resolved to a circle were sent (by the token's digest, newest
        # last, at most REMEMBERED_ROUTES): during an outage, someone coming back with a
        # seat token is still sent to the process holding their seat.
        self._routes: OrderedDict[str, Destination] = OrderedDict()
        # As the hub does in one process (signaling/hub.py, arrive): link look-ups in flight
        # by ticket, and host joins piped and not answered yet, per circle id. A
        # participant whose circle has not been opened waits for them before its join is
        # piped, so it reaches the circle's process after the host's arrival that opens it.
        self._lookups: set[int] = set()
        self._tickets = 0
        self._hosts_arriving: dict[str, int] = {}
        self._arrivals_changed = asyncio.Condition()
        self._telling: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # No limit on connections: each piped WebSocket holds one for its whole life (the
        # default of 100 would make the 101st person wait for someone to leave).
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("Door.start() has not been awaited")
        return self._http

    def _headers(self) -> dict[str, str]:
        secret = self.directory.secret
        return {BRIDGE_HEADER: secret} if secret else {}

    def is_bridged(self, request: web.Request) -> bool:
        """A request another process's door sent here (it carries the cluster secret)."""
        secret = self.directory.secret
        return bool(secret) and request.headers.get(BRIDGE_HEADER) == secret

    # --- HTTP to the process running a circle ----------------------------------------------

    async def post(self, url: str, path: str, body: dict[str, Any] | None = None) -> int | None:
        """POST to another process's internal endpoint: its status, None if it did not
        answer (it is being started again, and reads what it needs from storage)."""
        try:
            async with self.http.post(
                url + path,
                json=body,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            log.warning("%s did not take %s", url, path)
            return None

    async def describe_link(self, token: str) -> dict[str, Any] | None:
        """POST /circle-info answered the same from every door: by the process running the
        circle (hosts present are live state); from the database alone when nothing runs
        it, or its process does not answer."""
        match = await self._store.find_by_link(token)
        if match is None or match.circle is None:
            return None
        destination = await self.directory.running(match.circle.id)
        if destination is not None and destination.url is not None:
            try:
                async with self.http.post(
                    destination.url + "/circle-info",
                    json={"token": token},
                    headers=self._headers(),
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    body: dict[str, Any] = await response.json()
                if not body.pop("open", False):
                    return None
                return body
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                log.warning("%s did not describe a circle; answering from storage", destination)
        return await self._describer.describe_link(token)

    async def tell_running(
        self, circle_ids: Iterable[str], path: str, body: Callable[[list[str]], dict[str, Any]]
    ) -> list[str]:
        """Hand circles that run in other processes to them (one call per process, at
        ``path`` with ``body(their ids)``); the others are returned, for this process to
        act on those it runs."""
        elsewhere: dict[str, list[str]] = {}
        here: list[str] = []
        for circle_id in circle_ids:
            destination = await self.directory.running(circle_id)
            if destination is None or destination.url is None:
                here.append(circle_id)
            else:
                elsewhere.setdefault(destination.url, []).append(circle_id)
        for url, ids in elsewhere.items():
            await self.post(url, path, body(ids))
        return here

    # --- WebSockets ----------------------------------------------------------------------

    async def serve(
        self,
        ws: web.WebSocketResponse,
        *,
        join_timeout: float,
        address: str = "",
        on_joined: Callable[[], None] | None = None,
        serve_here: ServeHere | None = None,
    ) -> None:
        """Answer what comes before a join as one process does; from the join on, serve the
        socket here (``serve_here``, given only where this process runs circles) or pipe it.

        ``address`` (the client's) goes with the piped join; ``on_joined`` is called once
        the circle's process has seated the socket or given it a lobby place (``joined`` or
        ``waiting`` came back), so the door can count the sockets that have not joined."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(join_timeout):
                found = await self._until_join(ws, here=serve_here is not None)
        except TimeoutError:
            # As one process does: a socket that never joins is closed.
            message = error_message(protocol.JOIN_TIMEOUT, protocol.JOIN_TIMEOUT_MESSAGE, None)
            await _tell(ws, message)
            await ws.close(code=protocol.CLOSE_JOIN_TIMEOUT)
            return
        if found is None:
            return
        destination, first, opener = found
        self.stats.routing_seconds += time.monotonic() - started
        if destination.url is None:
            assert serve_here is not None
            self.stats.served_here += 1
            await serve_here(first)
            return
        self.stats.bridged += 1
        answered = None
        if opener is not None:
            waiting = [opener]

            def answered() -> None:
                if waiting:  # once: at the first answer, or when the pipe ends
                    self._host_answered(waiting.pop())

        headers = self._headers()
        if address:
            headers[CLIENT_ADDRESS_HEADER] = address
        try:
            # A process that went away closes the page with "going away": it reconnects.
            await pipe_websocket(
                self.http,
                ws,
                _ws_url(destination.url),
                first,
                headers=headers or None,
                on_joined=on_joined,
                on_answer=answered,
            )
        finally:
            if answered is not None:
                answered()  # also when the pipe ends before any answer

    async def _until_join(
        self, ws: web.WebSocketResponse, *, here: bool
    ) -> tuple[Destination, str, str | None] | None:
        """Reads up to the first usable ``join``: (where it goes, the raw message, the circle
        it may open as a host's arrival), or None when the socket was closed."""
        loop = asyncio.get_running_loop()
        limits = self._limits
        bucket = Bucket(limits.message_burst, loop.time())
        strikes = Strikes()
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            # The same per-socket rate as a session's (signaling/session.py).
            now = loop.time()
            bucket, allowed = take(
                bucket, rate=limits.message_rate, capacity=limits.message_burst, now=now
            )
            if not allowed:
                strikes = strike(strikes, now=now, forget_after=FLOOD_FORGET_SECONDS)
                await _tell(
                    ws, error_message(protocol.RATE_LIMITED, protocol.RATE_LIMITED_MESSAGE, None)
                )
                if strikes.count >= limits.flood_close_after:
                    await ws.close(code=protocol.CLOSE_RATE_LIMITED)
                    return None
                continue
            if msg.type == WSMsgType.BINARY:
                await _tell(ws, error_message(protocol.INVALID_JSON, protocol.BINARY_MESSAGE, None))
                continue
            try:
                message = protocol.parse(msg.data)
            except ProtocolError as err:
                await _tell(ws, error_message(err.code, err.message, err.ref))
                continue
            if not isinstance(message, Join):
                ref = type_of(message)
                await _tell(
                    ws, error_message(protocol.NOT_JOINED, protocol.NOT_JOINED_MESSAGE, ref)
                )
                continue
            if self._admission is not None and self._admission.draining and not message.seat_token:
                await _refuse_draining(ws)
                return None
            try:
                destination, opener = await self._route(message.token)
            except StorageUnavailable:
                remembered = self._routes.get(_route_key(message.token))
                if message.seat_token and remembered is not None:
                    # Coming back to a seat: its process may hold it in memory.
                    return remembered, msg.data, None
                if here:
                    # This node's session says it, or serves a circle live here.
                    return HERE, msg.data, None
                # As a process says it: refused at once, the page may try again.
                await _tell(ws, error_message(*_storage_unavailable()))
                continue
            except OwnerAway as away:
                log.info("node %s holds a lease but is not beating; page retries", away.owner)
                await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"circle moving")
                return None
            except NoPlace:
                if here:
                    return HERE, msg.data, None  # this node's session refuses it
                await _refuse_draining(ws)
                return None
            except Exception:
                log.exception("finding the circle of a join failed")
                await _tell(
                    ws, error_message(protocol.INTERNAL_ERROR, protocol.INTERNAL_MESSAGE, "join")
                )
                continue
            return destination, msg.data, opener
        return None

    async def _route(self, token: str) -> tuple[Destination, str | None]:
        """Where a join's link goes, once the arrivals before it that may open its circle
        have reached that process; and the circle id when this join is a host's that may
        open it (counted until its process answers: see ``serve``)."""
        ticket = self._tickets
        self._tickets += 1
        self._lookups.add(ticket)
        try:
            match = await self._store.find_by_link(token)
        finally:
            await self._arrivals_changed_by(lambda: self._lookups.discard(ticket))
        if match is None or match.circle is None:
            return await self.directory.unplaced(token), None
        circle = match.circle
        destination = await self.directory.place(circle.id)
        self._remember(token, destination)
        if destination.url is None or circle.status is not CircleStatus.SCHEDULED:
            # Served here: the hub keeps the order of arrivals itself.
            return destination, None
        if match.role is Role.HOST:
            self._hosts_arriving[circle.id] = self._hosts_arriving.get(circle.id, 0) + 1
            return destination, circle.id

        def settled() -> bool:
            return not self._hosts_arriving.get(circle.id) and not any(
                t < ticket for t in self._lookups
            )

        async with self._arrivals_changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOST_ARRIVAL_WAIT):
                    await self._arrivals_changed.wait_for(settled)
        return destination, None

    def _remember(self, token: str, destination: Destination) -> None:
        route = _route_key(token)
        self._routes[route] = destination
        self._routes.move_to_end(route)
        if len(self._routes) > REMEMBERED_ROUTES:
            self._routes.popitem(last=False)

    def _host_answered(self, circle_id: str) -> None:
        """A host's join to that circle was answered by its process (or its pipe ended)."""
        left = self._hosts_arriving.get(circle_id, 0) - 1
        if left > 0:
            self._hosts_arriving[circle_id] = left
        else:
            self._hosts_arriving.pop(circle_id, None)
        told = asyncio.get_running_loop().create_task(self._arrivals_changed_by(lambda: None))
        self._telling.add(told)
        told.add_done_callback(self._telling.discard)

    async def _arrivals_changed_by(self, change: Callable[[], None]) -> None:
        async with self._arrivals_changed:
            change()
            self._arrivals_changed.notify_all()


async def pipe_websocket(
    http: aiohttp.ClientSession,
    ws: web.WebSocketResponse,
    url: str,
    first: str,
    headers: dict[str, str] | None = None,
    on_joined: Callable[[], None] | None = None,
    on_answer: Callable[[], None] | None = None,
) -> bool:
    """Pipe a client's socket to the process running its circle (a worker, or another
    node), starting with the ``join`` already read, until either side closes. False when
    that process did not answer (the page is closed with "going away" and reconnects)."""
    try:
        upstream = await http.ws_connect(
            url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(), headers=headers
        )
    except (aiohttp.ClientError, OSError) as err:
        # Being started again: the page reconnects, as after a server restart.
        log.warning("%s is not answering (%s)", url.split("/ws")[0], type(err).__name__)
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting")
        return False
    loop = asyncio.get_running_loop()
    async with upstream:
        await upstream.send_str(first)
        to_client = loop.create_task(_upstream_to_client(upstream, ws, on_joined, on_answer))
        to_upstream = loop.create_task(_client_to_upstream(ws, upstream))
        try:
            done, _ = await asyncio.wait(
                {to_client, to_upstream}, return_when=asyncio.FIRST_COMPLETED
            )
            if to_client in done:
                # The circle's process closed: the page gets its code (4404, 4403, 4409,
                # 4410, 1000, 1012); one that died means "going away", and the page
                # reconnects.
                code = upstream.close_code
                if code is None or code not in _SENDABLE:
                    code = WSCloseCode.GOING_AWAY
                await ws.close(code=code)
            else:
                await upstream.close()
            await asyncio.wait({to_client, to_upstream}, timeout=5)
        finally:
            for task in (to_client, to_upstream):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    return True


def _ws_url(base: str) -> str:
    return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"


def _route_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_seated(data: str) -> bool:
    """Whether a message seats the socket (``joined``) or holds it a lobby place
    (``waiting``); read only until one does."""
    if '"joined"' not in data and '"waiting"' not in data:
        return False
    with contextlib.suppress(ValueError):
        message = json.loads(data)
        return isinstance(message, dict) and message.get("type") in ("joined", "waiting")
    return False


def _storage_unavailable() -> tuple[str, str, str]:
    return protocol.STORAGE_UNAVAILABLE, protocol.STORAGE_UNAVAILABLE_MESSAGE, "join"


async def _refuse_draining(ws: web.WebSocketResponse) -> None:
    refusal = error_message(SERVER_DRAINING, REFUSAL_MESSAGES[SERVER_DRAINING], "join")
    await _tell(ws, refusal)
    await ws.close(code=CLOSE_SERVICE_RESTART)


async def _tell(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json(message)


async def _upstream_to_client(
    upstream: aiohttp.ClientWebSocketResponse,
    ws: web.WebSocketResponse,
    on_joined: Callable[[], None] | None = None,
    on_answer: Callable[[], None] | None = None,
) -> None:
    async for msg in upstream:
        if msg.type == WSMsgType.TEXT:
            if on_answer is not None:
                on_answer()  # the first word on the join: seated or refused
                on_answer = None
            if on_joined is not None and _is_seated(msg.data):
                on_joined()
                on_joined = None
            try:
                await ws.send_str(msg.data)
            except (ConnectionError, RuntimeError):
                return


async def _client_to_upstream(
    ws: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    async for msg in ws:
        try:
            if msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
        except (ConnectionError, RuntimeError):
            return
