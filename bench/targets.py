"""How a bot joins: Hearth's WebSocket protocol, or Janus AudioBridge's HTTP API.

Both give the bot an SDP answer for its offer; the media side is the same for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp


class Session(Protocol):
    async def exchange(self, offer_sdp: str) -> str: ...
    async def leave(self) -> None: ...


class Refused(ConnectionError):
    """The server answered ``error``; ``code`` is its stable code."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"refused: {error}")
        self.code = str(error.get("code"))


class HearthSession:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, spec: dict[str, Any]) -> None:
        self._ws = ws
        self._spec = spec
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data["type"] in ("joined", "answer", "error"):
                    self._answers.put_nowait(data)

    async def _expect(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(30):
            data = await self._answers.get()
        if data["type"] == "error" and kind != "error":
            raise Refused(data)
        if data["type"] != kind:
            raise ConnectionError(f"expected {kind}, got {data}")
        return data

    async def join(self) -> None:
        await self._ws.send_json(
            {
                "type": "join",
                "token": self._spec["token"],
                "display_name": self._spec["name"],
                "muted": bool(self._spec.get("muted", False)),
            }
        )
        await self._expect("joined")

    async def exchange(self, offer_sdp: str) -> str:
        await self._ws.send_json({"type": "offer", "sdp": offer_sdp})
        return str((await self._expect("answer"))["sdp"])

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.send_json({"type": "leave"})
        self._reader.cancel()


# The page's reconnect schedule (web/app.js, scheduleReconnect): the first retry after
# 0.5 s, doubling up to 15 s, each with +-20% jitter so refused pages do not return together.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 15.0
# A guest at a door not open yet looks again this often (the page waits 15 s; the bench
# is in a hurry, and its hosts are only a little ahead of their guests).
NOT_OPEN_RETRY_SECONDS = 0.5


class HearthSignaller:
    @contextlib.asynccontextmanager
    async def session(
        self, http: aiohttp.ClientSession, spec: dict[str, Any]
    ) -> AsyncIterator[Session]:
        """Join like the web page does: knock again with backoff after ``server_busy``
        (closed 1013) or ``storage_unavailable`` (a write slower than the server's write
        timeout on a starved machine), and look again a little later at a door not open yet.

        A guest may find its circle not open because its host is not in yet: bot processes
        start slowly on a loaded machine, and past capacity the host is a newcomer refused
        with ``server_busy`` like anyone else, knocking again with backoff. Every refusal's
        code is appended to ``spec["refusals"]`` (the report counts them); the bot gives up
        at ``spec["give_up_at"]`` (monotonic; default 20 s from now) with the last error.
        """
        refusals: list[str] = spec.setdefault("refusals", [])
        give_up_at = spec.get("give_up_at") or time.monotonic() + 20.0
        busy_knocks = 0
        while True:
            async with http.ws_connect(spec["ws_url"]) as ws:
                session = HearthSession(ws, spec)
                try:
                    await session.join()
                except Refused as refused:
                    session._reader.cancel()
                    code = refused.code
                    if code not in ("server_busy", "storage_unavailable", "circle_not_open"):
                        raise
                    refusals.append(code)
                    if code != "circle_not_open":
                        base = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2**busy_knocks)
                        delay = base * random.uniform(0.8, 1.2)
                        busy_knocks += 1
                    else:
                        delay = NOT_OPEN_RETRY_SECONDS
                    if time.monotonic() + delay >= give_up_at:
                        raise
                else:
                    yield session
                    return
            await asyncio.sleep(delay)


class JanusSession:
    """One AudioBridge participant over Janus's HTTP transport (long-poll for events)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, spec: dict[str, Any]) -> None:
        self._http = http
        self._base = base
        self._spec = spec
        self._session_url = ""
        self._handle_url = ""
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(6)}
        async with self._http.post(url, json=body) as response:
            data: dict[str, Any] = await response.json(content_type=None)
        if data.get("janus") == "error":
            raise ConnectionError(str(data))
        return data

    async def open(self) -> None:
        created = await self._post(self._base, {"janus": "create"})
        self._session_url = f"{self._base}/{created['data']['id']}"
        attached = await self._post(
            self._session_url, {"janus": "attach", "plugin": "janus.plugin.audiobridge"}
        )
        self._handle_url = f"{self._session_url}/{attached['data']['id']}"
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        # The long poll also keeps the Janus session alive.
        while True:
            try:
                async with self._http.get(f"{self._session_url}?maxev=5") as response:
                    data = await response.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.5)
                continue
            for event in data if isinstance(data, list) else [data]:
                if event.get("janus") == "event":
                    self._events.put_nowait(event)

    async def exchange(self, offer_sdp: str) -> str:
        await self._post(
            self._handle_url,
            {
                "janus": "message",
                "body": {
                    "request": "join",
                    "room": self._spec["room"],
                    "display": self._spec["name"],
                    "muted": bool(self._spec.get("muted", False)),
                },
                "jsep": {"type": "offer", "sdp": offer_sdp},
            },
        )
        async with asyncio.timeout(30):
            while True:
                event = await self._events.get()
                if "jsep" in event:
                    break
        # Joined: no more events are needed, only a keepalive. One long poll per bot would
        # hold hundreds of HTTP connections open against Janus's HTTP transport.
        if self._poller is not None:
            self._poller.cancel()
        self._poller = asyncio.get_running_loop().create_task(self._keepalive())
        return str(event["jsep"]["sdp"])

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(25)
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                await self._post(self._session_url, {"janus": "keepalive"})

    async def leave(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        with contextlib.suppress(Exception):
            await self._post(self._session_url, {"janus": "destroy"})


class JanusSignaller:
    @contextlib.asynccontextmanager
    async def session(
        self, http: aiohttp.ClientSession, spec: dict[str, Any]
    ) -> AsyncIterator[Session]:
        session = JanusSession(http, spec["janus_url"], spec)
        await session.open()
        try:
            yield session
        finally:
            await session.leave()


def signaller_for(target: str) -> HearthSignaller | JanusSignaller:
    return HearthSignaller() if target.startswith("hearth") else JanusSignaller()
