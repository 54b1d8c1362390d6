"""Live circles spread over worker processes on one machine (``hearth serve --workers N``).

One event loop per process is what the audio engine assumes, so a circle lives in exactly
one process. The front process (pages, API, feeds, admin console, start-up tasks) starts N
workers, each on its own 127.0.0.1 port, and supervises them: one that dies is started
again, all are stopped with the front.

A WebSocket reaches the front; its first ``join`` names a link, the store resolves it to the
circle (the occurrence), and the connection is piped to worker ``pick_worker(circle id, N)``
for the rest of its life. Signalling is a few messages per person per minute; media never
passes the front (a worker's answer carries its own ICE candidates). Everything a refusal
says (unknown link, closed circle, ``next_starts_at``) is said by the worker, exactly as a
single process says it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from rooms.model import CircleStatus, Role
from rooms.overload import SERVER_DRAINING
from server.config import REPO_ROOT, Settings
from signaling import protocol
from signaling.admission import CLOSE_SERVICE_RESTART, REFUSAL_MESSAGES, Admission
from signaling.hub import HOST_ARRIVAL_WAIT, CircleHub
from signaling.protocol import Join, ProtocolError, error_message
from signaling.session import type_of
from signaling.store import CircleStore, LinkMatch, StorageUnavailable

log = logging.getLogger(__name__)

# How long the front waits for its workers to answer at start.
START_TIMEOUT = 60.0
# A worker that dies this soon after starting is crashing: wait longer before the next try.
CRASH_LOOP_SECONDS = 10.0
FIRST_RESTART_DELAY = 0.2
MAX_RESTART_DELAY = 10.0
STOP_TIMEOUT = 10.0
# Links whose worker the front remembers for an outage (a few dozen bytes each).
REMEMBERED_ROUTES = 10_000
# The client's address, as the front saw it, on the piped WebSocket to a worker: the
# worker keys its per-address limits (wrong passcodes) on it. Workers listen on 127.0.0.1
# only and take it only from there (server/pages.py); it is never logged or stored.
CLIENT_ADDRESS_HEADER = "X-Hearth-Client-Address"
# Close codes a WebSocket may send (RFC 6455 7.4): what a worker's close is passed on with.
_SENDABLE = {*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)}


def pick_worker(circle_id: str, workers: int) -> int:
    """The worker (0 .. workers-1) that hosts a circle: stable across processes and runs."""
    if workers < 1:
        raise ValueError("there must be at least one worker")
    digest = hashlib.sha256(circle_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % workers


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerSupervisor:
    """Starts the worker processes, starts again one that exits, stops them all."""

    def __init__(self, settings: Settings, count: int) -> None:
        self._settings = settings
        self.ports = [free_loopback_port() for _ in range(count)]
        self._processes: list[asyncio.subprocess.Process | None] = [None] * count
        self._started_at = [0.0] * count
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    def _command(self, index: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "server.cli",
            "worker",
            "--index",
            str(index),
            "--workers",
            str(len(self.ports)),
            "--port",
            str(self.ports[index]),
            "--data-dir",
            str(self._settings.data_dir.resolve()),
        ]

    async def _spawn(self, index: int) -> None:
        env = dict(os.environ)
        # The worker imports the same code as the front, wherever that was started from.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        process = await asyncio.create_subprocess_exec(
            *self._command(index),
            env=env,
            # Its own session: a Ctrl-C on the terminal reaches the front only, which then
            # stops the workers (rather than racing to start them again).
            start_new_session=True,
        )
        self._processes[index] = process
        self._started_at[index] = time.monotonic()
        log.info("worker %d (pid %d) on 127.0.0.1:%d", index, process.pid, self.ports[index])

    async def start(self) -> None:
        for index in range(len(self.ports)):
            await self._spawn(index)
        loop = asyncio.get_running_loop()
        self._watchers = [loop.create_task(self._watch(i)) for i in range(len(self.ports))]
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            for index, port in enumerate(self.ports):
                while True:
                    process = self._processes[index]
                    if process is not None and process.returncode is not None:
                        raise RuntimeError(f"worker {index} exited while starting")
                    try:
                        url = f"http://127.0.0.1:{port}/internal/live"
                        async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                            if r.status == 200:
                                break
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"worker {index} did not start in {START_TIMEOUT:.0f} s")
                    await asyncio.sleep(0.1)

    async def _watch(self, index: int) -> None:
        delay = FIRST_RESTART_DELAY
        while not self._stopping:
            process = self._processes[index]
            assert process is not None
            code = await process.wait()
            if self._is_stopping():
                return
            lived = time.monotonic() - self._started_at[index]
            crashing = lived < CRASH_LOOP_SECONDS
            delay = min(delay * 2, MAX_RESTART_DELAY) if crashing else FIRST_RESTART_DELAY
            log.warning(
                "worker %d (pid %d) exited with %s; starting it again in %.1f s",
                index,
                process.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if not self._is_stopping():
                await self._spawn(index)

    def _is_stopping(self) -> bool:
        return self._stopping

    async def stop(self, grace: float = STOP_TIMEOUT) -> None:
        """SIGTERM to every worker (each drains its circles), then wait up to ``grace`` s."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        running = [p for p in self._processes if p is not None and p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                log.warning("worker pid %d did not stop; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


class FrontRouter:
    """The front's side of the workers: which one hosts a circle, and the pipe to it."""

    def __init__(
        self,
        store: CircleStore,
        ports: Sequence[int],
        describer: CircleHub,
        admission: Admission | None = None,
    ) -> None:
        self._store = store
        # The front's own: draining, it takes no new arrival (its workers judge their load).
        self._admission = admission
        self._ports = list(ports)
        # A hub that never opens a circle here; it describes one whose worker is away.
        self._describer = describer
        self._http: aiohttp.ClientSession | None = None
        # Where links that resolved to a circle were sent (by the token's digest, newest
        # last, at most REMEMBERED_ROUTES): during a database outage, someone coming back
        # with a seat token is still sent to the worker holding their seat.
        self._routes: OrderedDict[str, int] = OrderedDict()
        # As the hub does in one process (signaling/hub.py, arrive): link look-ups in flight
        # by ticket, and host joins piped to a worker not answered yet, per circle id. A
        # participant whose circle has not been opened waits for them before its join is
        # piped, so it reaches the worker after the host's arrival that opens the circle.
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
            raise RuntimeError("FrontRouter.start() has not been awaited")
        return self._http

    def _url(self, index: int, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self._ports[index]}{path}"

    async def worker_for(self, token: str) -> int:
        """The worker for a link: its circle's, or (unknown or between occurrences) any
        one, chosen by the token, which then refuses it exactly as one process does."""
        return self._worker_of(token, await self._store.find_by_link(token))

    def _worker_of(self, token: str, match: LinkMatch | None) -> int:
        key = match.circle.id if match is not None and match.circle is not None else token
        index = pick_worker(key, len(self._ports))
        if key is not token:
            route = _route_key(token)
            self._routes[route] = index
            self._routes.move_to_end(route)
            if len(self._routes) > REMEMBERED_ROUTES:
                self._routes.popitem(last=False)
        return index

    async def describe_link(self, token: str) -> dict[str, Any] | None:
        """POST /circle-info, answered by the worker that hosts the circle (hosts present
        are live state); from the database alone while that worker is away."""
        match = await self._store.find_by_link(token)
        if match is None or match.circle is None:
            return None
        index = pick_worker(match.circle.id, len(self._ports))
        try:
            async with self.http.post(
                self._url(index, "/internal/circle-info"),
                json={"token": token},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                body: dict[str, Any] = await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            log.warning("worker %d did not describe a circle; answering from storage", index)
            return await self._describer.describe_link(token)
        if not body.pop("open", False):
            return None
        return body

    @property
    def worker_count(self) -> int:
        return len(self._ports)

    async def tell_worker(self, index: int, path: str, body: dict[str, Any]) -> bool:
        """POST to one worker's internal endpoint; False when it did not answer 200 (it is
        being started again, and reads what it needs from storage when it is back)."""
        try:
            async with self.http.post(
                self._url(index, path), json=body, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            log.warning("worker %d did not take %s", index, path)
            return False

    async def serve(
        self,
        ws: web.WebSocketResponse,
        *,
        join_timeout: float,
        address: str = "",
        on_joined: Callable[[], None] | None = None,
    ) -> None:
        """Answer what comes before a join as one process does; pipe from the join on.

        ``address`` (the client's) goes to the worker with the join; ``on_joined`` is called
        once the worker has seated the socket or given it a lobby place (``joined`` or
        ``waiting`` came back), so the front can count the sockets that have not joined."""
        try:
            async with asyncio.timeout(join_timeout):
                found = await self._until_join(ws)
        except TimeoutError:
            # As one process does: a socket that never joins is closed.
            message = error_message(protocol.JOIN_TIMEOUT, protocol.JOIN_TIMEOUT_MESSAGE, None)
            await _tell(ws, message)
            await ws.close(code=protocol.CLOSE_JOIN_TIMEOUT)
            return
        if found is None:
            return
        index, first, opener = found
        answered = None
        if opener is not None:
            waiting = [opener]

            def answered() -> None:
                if waiting:  # once: at the worker's first answer, or when the pipe ends
                    self._host_answered(waiting.pop())

        try:
            await self._pipe(ws, index, first, address, on_joined, answered)
        finally:
            if answered is not None:
                answered()  # also when the pipe ends before any answer

    async def _until_join(self, ws: web.WebSocketResponse) -> tuple[int, str, str | None] | None:
        """Reads up to the first usable ``join``: (its worker, the raw message, the circle
        it may open as a host's arrival), or None."""
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await _tell(ws, error_message(protocol.INVALID_JSON, protocol.BINARY_MESSAGE, None))
                continue
            if msg.type != WSMsgType.TEXT:
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
                refusal = error_message(SERVER_DRAINING, REFUSAL_MESSAGES[SERVER_DRAINING], "join")
                await _tell(ws, refusal)
                await ws.close(code=CLOSE_SERVICE_RESTART)
                return None
            try:
                index, opener = await self._route(message.token)
            except StorageUnavailable:
                remembered = self._routes.get(_route_key(message.token))
                if message.seat_token and remembered is not None:
                    # Coming back to a seat: its worker may hold it in memory.
                    return remembered, msg.data, None
                # As a worker says it: refused at once, the page may try again.
                await _tell(ws, error_message(*_storage_unavailable()))
                continue
            except Exception:
                log.exception("finding the circle of a join failed")
                await _tell(
                    ws, error_message(protocol.INTERNAL_ERROR, protocol.INTERNAL_MESSAGE, "join")
                )
                continue
            return index, msg.data, opener
        return None

    async def _route(self, token: str) -> tuple[int, str | None]:
        """The worker for a join's link, once the arrivals before it that may open its
        circle have reached that worker; and the circle id when this join is a host's
        that may open it (counted until the worker answers: see ``answered``)."""
        ticket = self._tickets
        self._tickets += 1
        self._lookups.add(ticket)
        try:
            match = await self._store.find_by_link(token)
        finally:
            await self._arrivals_changed_by(lambda: self._lookups.discard(ticket))
        index = self._worker_of(token, match)
        if match is None or match.circle is None:
            return index, None
        circle = match.circle
        if circle.status is not CircleStatus.SCHEDULED:
            return index, None
        if match.role is Role.HOST:
            self._hosts_arriving[circle.id] = self._hosts_arriving.get(circle.id, 0) + 1
            return index, circle.id

        def settled() -> bool:
            return not self._hosts_arriving.get(circle.id) and not any(
                t < ticket for t in self._lookups
            )

        async with self._arrivals_changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOST_ARRIVAL_WAIT):
                    await self._arrivals_changed.wait_for(settled)
        return index, None

    def _host_answered(self, circle_id: str) -> None:
        """A host's join to that circle was answered by its worker (or its pipe ended)."""
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

    async def _pipe(
        self,
        ws: web.WebSocketResponse,
        index: int,
        first: str,
        address: str = "",
        on_joined: Callable[[], None] | None = None,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        await pipe_websocket(
            self.http,
            ws,
            self._url(index, "/ws", "ws"),
            first,
            headers={CLIENT_ADDRESS_HEADER: address} if address else None,
            on_joined=on_joined,
            on_answer=on_answer,
        )


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
        to_client = loop.create_task(_worker_to_client(upstream, ws, on_joined, on_answer))
        to_worker = loop.create_task(_client_to_worker(ws, upstream))
        try:
            done, _ = await asyncio.wait(
                {to_client, to_worker}, return_when=asyncio.FIRST_COMPLETED
            )
            if to_client in done:
                # The worker closed: the page gets its code (4404, 4403, 4409, 4410,
                # 1000); a worker that died means "going away", and the page reconnects.
                code = upstream.close_code
                if code is None or code not in _SENDABLE:
                    code = WSCloseCode.GOING_AWAY
                await ws.close(code=code)
            else:
                await upstream.close()
            await asyncio.wait({to_client, to_worker}, timeout=5)
        finally:
            for task in (to_client, to_worker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    return True


def _route_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_seated(data: str) -> bool:
    """Whether a worker's message seats the socket (``joined``) or holds it a lobby place
    (``waiting``); read only until one does."""
    if '"joined"' not in data and '"waiting"' not in data:
        return False
    with contextlib.suppress(ValueError):
        message = json.loads(data)
        return isinstance(message, dict) and message.get("type") in ("joined", "waiting")
    return False


def _storage_unavailable() -> tuple[str, str, str]:
    return protocol.STORAGE_UNAVAILABLE, protocol.STORAGE_UNAVAILABLE_MESSAGE, "join"


async def _tell(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json(message)


async def _worker_to_client(
    upstream: aiohttp.ClientWebSocketResponse,
    ws: web.WebSocketResponse,
    on_joined: Callable[[], None] | None = None,
    on_answer: Callable[[], None] | None = None,
) -> None:
    async for msg in upstream:
        if msg.type == WSMsgType.TEXT:
            if on_answer is not None:
                on_answer()  # the worker's first word on the join: seated or refused
                on_answer = None
            if on_joined is not None and _is_seated(msg.data):
                on_joined()
                on_joined = None
            try:
                await ws.send_str(msg.data)
            except (ConnectionError, RuntimeError):
                return


async def _client_to_worker(
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
