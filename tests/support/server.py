"""A real Hearth server in a child process, as a person would run it."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    extra_env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    # Worker processes for live circles (``--workers``); None runs the one-process server.
    workers: int | None = None
    # A command the server runs under, e.g. nsenter into a test's own network namespace;
    # the test's own HTTP calls then go through it too.
    prefix: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    # The address it listens on (nodes of one cluster take 127.0.0.2, .3, ...).
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def start(self, timeout: float = 30) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (several nodes start at one moment)."""
        env = dict(os.environ)
        env.update(
            HEARTH_ADMIN_TOKEN=self.admin_token,
            # Media stays on loopback: the tests send nothing to any other address.
            HEARTH_ICE_ADDRESSES=self.host,
            PYTHONUNBUFFERED="1",
            # A test's server stops at once when its people are still connected at the end.
            HEARTH_DRAIN_SECONDS="2",
            # The shared test machine lags at times: refusing joins for load is turned on
            # only by the tests (and bench runs) about it.
            HEARTH_BUSY_LAG_MS="0",
        )
        env.update(self.extra_env)
        self.log_path = self.log_path or self.data_dir / "server.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *([] if self.workers is None else ["--workers", str(self.workers)]),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_text()}")
            try:
                self._http("GET", f"{self.base_url}/api/v1/openapi.json", None, {}, 1)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def worker_processes(self) -> dict[int, tuple[int, int]]:
        """Each worker's (pid, port) as the front last logged it (a restart logs again)."""
        found: dict[int, tuple[int, int]] = {}
        for index, pid, port in _WORKER_LINE.findall(self.log_text()):
            found[int(index)] = (int(pid), int(port))
        return found

    def worker_url(self, index: int) -> str:
        """Where a worker listens: 127.0.0.1, or the front's address with Redis."""
        host = self.host if self.extra_env.get("HEARTH_REDIS_URL") else "127.0.0.1"
        _, port = self.worker_processes()[index]
        return f"http://{host}:{port}"

    def worker_live(self, index: int) -> dict[str, Any]:
        """A worker's internal /internal/live: its pid and the circles it runs."""
        with urllib.request.urlopen(f"{self.worker_url(index)}/internal/live", timeout=5) as r:
            return dict(json.loads(r.read()))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {
            "Authorization": f"Bearer {self.admin_token}",
            "Content-Type": "application/json",
        }
        status, reply = self._http(method, f"{self.base_url}{path}", data, headers, 10)
        return status, json.loads(reply or b"null")

    def _http(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        if self.prefix:
            # From inside the server's namespace: a one-off Python there makes the call.
            done = subprocess.run(
                [*self.prefix, sys.executable, "-c", _HTTP_IN_NAMESPACE],
                input=json.dumps(
                    [method, url, (data or b"").decode(), headers, timeout, data is not None]
                ).encode(),
                capture_output=True,
                check=False,
                cwd=REPO_ROOT,
            )
            if done.returncode != 0:
                raise ConnectionError(done.stderr.decode(errors="replace")[-500:])
            status, text = json.loads(done.stdout)
            return int(status), text.encode()
        return _http_here(method, url, data, headers, timeout)

    def create_circle(self, title: str = "Tuesday circle", **overrides: Any) -> dict[str, Any]:
        body = {
            "title": title,
            "starts_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "duration_minutes": 60,
            "timezone": "Europe/Berlin",
        }
        body.update(overrides)
        status, circle = self.api("POST", "/api/v1/circles", body)
        assert status == 201, (status, circle)
        return dict(circle)


def _http_here(
    method: str, url: str, data: bytes | None, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


_HTTP_IN_NAMESPACE = """
import json, sys
from tests.support.server import _http_here
method, url, text, headers, timeout, has_body = json.load(sys.stdin)
status, reply = _http_here(method, url, text.encode() if has_body else None, headers, timeout)
print(json.dumps([status, reply.decode()]))
"""

_WORKER_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) on port (\d+)")


def link_token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]
