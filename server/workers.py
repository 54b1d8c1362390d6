"""Live circles spread over worker processes on one machine (``hearth serve --workers N``).

One event loop per process is what the audio engine assumes, so a circle lives in exactly
one process. The front process (pages, API, feeds, admin console, start-up tasks) starts N
workers, each on its own port, and supervises them: one that dies is started again, all are
stopped with the front.

The front routes WebSockets with the same door as every node (server/doors.py): a socket's
first ``join`` names a link, the store resolves it to the circle, and the door pipes it to
the process its directory names. Which directory depends on Redis:

- without it, ``WorkerDirectory``: the worker ``pick_worker(circle id, N)`` gives, on
  127.0.0.1 (the workers listen there only and believe the client's address the front
  passes);
- with ``HEARTH_REDIS_URL``, every worker is a node in the registry (its own id, lease,
  heartbeat; it listens on the front's address so other machines' doors reach it) and the
  front is a door over ``server.doors.RegistryDirectory`` that runs no circle itself.

Signalling is a few messages per person per minute; media never passes the front (a
worker's answer carries its own ICE candidates). Everything a refusal says (unknown link,
closed circle, ``next_starts_at``) is said by the worker, exactly as a single process says it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from rooms.placement import pick_worker
from server.config import REPO_ROOT, Settings
from server.doors import Destination

log = logging.getLogger(__name__)

# How long the front waits for its workers to answer at start.
START_TIMEOUT = 60.0
# A worker that dies this soon after starting is crashing: wait longer before the next try.
CRASH_LOOP_SECONDS = 10.0
FIRST_RESTART_DELAY = 0.2
MAX_RESTART_DELAY = 10.0
STOP_TIMEOUT = 10.0

__all__ = ["WorkerDirectory", "WorkerSupervisor", "pick_worker"]


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _everywhere(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


class WorkerSupervisor:
    """Starts the worker processes, starts again one that exits, stops them all.

    Without Redis the workers listen on 127.0.0.1 only. With it they are nodes: each listens
    on the front's address (other machines' doors pipe to it), registers as
    ``{node_id}-w{index}`` and says it is reached at ``node_url`` with its own port.
    """

    def __init__(
        self, settings: Settings, count: int, *, node_id: str = "", node_url: str = ""
    ) -> None:
        self._settings = settings
        self.as_nodes = bool(settings.redis_url)
        self.listen_host = settings.host if self.as_nodes else "127.0.0.1"
        # Where the front itself reaches them.
        self.host = "127.0.0.1" if _everywhere(self.listen_host) else self.listen_host
        self._node_id = node_id
        self._node_url = node_url
        self.ports = [free_port(self.host) for _ in range(count)]
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
            "--host",
            self.listen_host,
            "--data-dir",
            str(self._settings.data_dir.resolve()),
        ]

    async def _spawn(self, index: int) -> None:
        env = dict(os.environ)
        # The worker imports the same code as the front, wherever that was started from.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        if self.as_nodes:
            # The same id after a restart: the worker takes back its own leases at once.
            env["HEARTH_NODE_ID"] = self.node_id(index)
            env["HEARTH_NODE_URL"] = _with_port(self._node_url, self.ports[index])
        process = await asyncio.create_subprocess_exec(
            *self._command(index),
            env=env,
            # Its own session: a Ctrl-C on the terminal reaches the front only, which then
            # stops the workers (rather than racing to start them again).
            start_new_session=True,
        )
        self._processes[index] = process
        self._started_at[index] = time.monotonic()
        # The port only: the log redacts addresses (they are 127.0.0.1, or the front's own).
        log.info("worker %d (pid %d) on port %d", index, process.pid, self.ports[index])

    def node_id(self, index: int) -> str:
        """A worker's id in the registry (with Redis)."""
        return f"{self._node_id}-w{index}"

    def base_url(self, index: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.ports[index]}"

    async def start(self) -> None:
        for index in range(len(self.ports)):
            await self._spawn(index)
        loop = asyncio.get_running_loop()
        self._watchers = [loop.create_task(self._watch(i)) for i in range(len(self.ports))]
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            for index in range(len(self.ports)):
                while True:
                    process = self._processes[index]
                    if process is not None and process.returncode is not None:
                        raise RuntimeError(f"worker {index} exited while starting")
                    try:
                        url = f"{self.base_url(index)}/internal/live"
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


class WorkerDirectory:
    """One machine's workers without Redis: a circle lives on the worker a stable hash of
    its id gives (``rooms.placement.pick_worker``). The front supervises them: one that died
    is started again on the same port, and a page piped to it meanwhile is closed with
    "going away" and reconnects."""

    def __init__(self, supervisor: WorkerSupervisor) -> None:
        self._supervisor = supervisor

    @property
    def secret(self) -> str:
        return ""  # workers listen on 127.0.0.1 only

    def _worker(self, key: str) -> Destination:
        index = pick_worker(key, len(self._supervisor.ports))
        return Destination(self._supervisor.base_url(index), f"worker {index}")

    async def place(self, circle_id: str) -> Destination:
        return self._worker(circle_id)

    async def running(self, circle_id: str) -> Destination | None:
        # The worker answers from storage for a circle it does not run.
        return self._worker(circle_id)

    async def unplaced(self, token: str) -> Destination:
        return self._worker(token)


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme or "http", f"{host}:{port}", "", "", ""))
