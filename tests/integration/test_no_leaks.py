"""No leaks over time: after many cycles of churn, the server holds what it held before.

The server runs in this process (on a real port, with real sockets and aiortc peers), so
its asyncio tasks, file descriptors and live objects can be counted: after the churn of
bench/soak.py (joins, mute toggles, a raised hand, a host's mute and removal, leaves,
drops and come-backs by seat token) they are back to their count before it. Counts, not
times: the test waits for them to settle, then compares.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection

from bench.soak import churn_cycle
from server.app import create_app
from server.appkeys import HUB
from server.config import Settings
from signaling.hub import LiveCircle
from signaling.peer import MediaPeer
from signaling.session import ClientSession
from tests.support.peer import ScriptedParticipant
from tests.support.server import free_port, link_token

ADMIN_TOKEN = "churn-admin-token-0123456789"
CYCLES = 12
TRACKED = (LiveCircle, ClientSession, MediaPeer, RTCPeerConnection)


def census() -> dict[str, int]:
    gc.collect()
    counts = {kind.__name__: 0 for kind in TRACKED}
    for thing in gc.get_objects():
        for kind in TRACKED:
            if isinstance(thing, kind):
                counts[kind.__name__] += 1
    counts["tasks"] = len(asyncio.all_tasks())
    counts["fds"] = len(os.listdir("/proc/self/fd"))
    return counts


async def settled(expected: dict[str, int], timeout: float = 20) -> dict[str, int]:
    """The census once it equals ``expected`` (peers close in the background), or the last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        now = census()
        if now == expected or loop.time() > deadline:
            return now
        await asyncio.sleep(0.25)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[web.Application, str]]:
    settings = Settings(
        host="127.0.0.1",
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        ice_addresses=("127.0.0.1",),
        # Counts, not times: a loaded machine's loop lag must not turn the churn away.
        busy_lag_ms=0,
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_churn_leaves_tasks_descriptors_and_live_objects_where_they_were(
    served: tuple[web.Application, str],
) -> None:
    app, base = served
    async with aiohttp.ClientSession() as http:
        body = {
            "title": "Churn",
            "starts_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "duration_minutes": 120,
            "timezone": "Europe/Berlin",
        }
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with http.post(f"{base}/api/v1/circles", json=body, headers=headers) as r:
            assert r.status == 201
            circle = await r.json()
    ws_url = base.replace("http", "ws") + "/ws"
    join = link_token(circle["join_url"])
    host = ScriptedParticipant(ws_url, link_token(circle["host_url"]), "Host", 500.0)
    await host.connect()
    await host.join(muted=False)
    await host.start_audio()
    await host.wait_connected(timeout=20)
    # A first cycle warms up what is made once (thread pools, codecs, caches).
    await churn_cycle(ws_url, host, join, 0)
    baseline = await settled(census())
    assert baseline["LiveCircle"] == 1 and baseline["ClientSession"] == 1

    sent = 0
    for n in range(1, CYCLES + 1):
        sent += await churn_cycle(ws_url, host, join, n)
    after = await settled(baseline)
    print(f"\n{CYCLES} cycles, {sent} messages: before {baseline}, after {after}")
    assert after == baseline

    # The host leaves: the circle is released, nothing of it stays.
    await host.send({"type": "leave"})
    await host.wait_until(lambda: host.closed_code is not None)
    await host.close()
    hub = app[HUB]
    async with asyncio.timeout(10):
        while not hub.is_idle():
            await asyncio.sleep(0.05)
    empty = await settled({**baseline, "LiveCircle": 0, "ClientSession": 0})
    assert (empty["LiveCircle"], empty["ClientSession"], empty["MediaPeer"]) == (0, 0, 0)
    assert empty["RTCPeerConnection"] == 0
