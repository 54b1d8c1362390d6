"""What an operator watches: metrics that move as people come and go, health and readiness,
and logs that never hold an address, a token or a display name."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, free_port, link_token

TURN_SECRET = "turn-secret-for-tests"
TURN_URLS = "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443?transport=tcp"


def _free_port_range(size: int) -> tuple[int, int]:
    # A run of ports nothing listens on now, for HEARTH_MEDIA_PORTS.
    for _ in range(50):
        first = free_port()
        if first + size > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return first, first + size - 1
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    first, last = _free_port_range(20)
    metrics_port = free_port()
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-watched")),
        extra_env={
            "HEARTH_METRICS_PORT": str(metrics_port),
            "HEARTH_MEDIA_PORTS": f"{first}-{last}",
            "HEARTH_MEDIA_PUBLIC_ADDRESS": "127.0.0.3",
            "HEARTH_TURN_SECRET": TURN_SECRET,
            "HEARTH_TURN_URLS": TURN_URLS,
            "HEARTH_LOG_FORMAT": "json",
        },
    )
    process.start()
    process.metrics_port = metrics_port  # type: ignore[attr-defined]
    process.media_ports = (first, last)  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        process.stop()


def scrape(server: ServerProcess) -> dict[str, float]:
    port = server.metrics_port  # type: ignore[attr-defined]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_metrics_follow_people_joining_and_leaving_and_refusals_are_counted(
    watched: ServerProcess,
) -> None:
    before = scrape(watched)
    circle = watched.create_circle()
    host = ScriptedParticipant(watched.ws_url, link_token(circle["host_url"]), "Ana", 500)
    guest = ScriptedParticipant(watched.ws_url, link_token(circle["join_url"]), "Sam", 1300)
    stranger = ScriptedParticipant(watched.ws_url, "no-such-link-token", "Eve", None)
    try:
        for person in (host, guest):
            await person.connect()
            await person.join(muted=False)
            await person.start_audio()
        for person in (host, guest):
            await person.wait_connected()
        await stranger.connect()
        await stranger.send({"type": "join", "token": "no-such-link-token", "display_name": "Eve"})
        await stranger.wait_for("error")
        await asyncio.sleep(1.0)  # some media flows

        during = scrape(watched)
        assert during["hearth_live_circles"] == before["hearth_live_circles"] + 1
        assert during["hearth_participants"] == before["hearth_participants"] + 2
        assert during["hearth_joins_total"] == before.get("hearth_joins_total", 0) + 2
        assert during["hearth_join_seconds_count"] == during["hearth_joins_total"]
        assert during['hearth_join_refusals_total{code="circle_not_open"}'] >= 1
        assert during["hearth_media_connect_seconds_count"] >= 2
        assert during['hearth_media_packets_total{direction="received"}'] > 0
        assert during['hearth_media_packets_total{direction="sent"}'] > 0
        assert 'hearth_listener_rtt_seconds{stat="mean"}' in during
        assert 'hearth_listener_loss_ratio{stat="max"}' in during
        assert "hearth_cpu_seconds_per_participant_second" in during
        assert during["hearth_event_loop_lag_seconds_count"] > 0
        assert during["hearth_database_write_seconds_count"] > 0
        assert during["process_cpu_seconds_total"] > 0

        await guest.send({"type": "leave"})
        deadline = time.monotonic() + 10
        while scrape(watched)["hearth_participants"] != before["hearth_participants"] + 1:
            assert time.monotonic() < deadline, "the metrics never saw Sam leave"
            await asyncio.sleep(0.2)
        await host.send({"type": "leave"})
        deadline = time.monotonic() + 10
        while scrape(watched)["hearth_live_circles"] != before["hearth_live_circles"]:
            assert time.monotonic() < deadline, "the metrics never saw the circle close"
            await asyncio.sleep(0.2)
        after = scrape(watched)
        # Packet totals never go down when peers close.
        assert (
            after['hearth_media_packets_total{direction="received"}']
            >= during['hearth_media_packets_total{direction="received"}']
        )
    finally:
        for person in (host, guest, stranger):
            await person.close()


async def test_a_muted_voice_is_dropped_and_the_drop_is_counted_by_reason(
    watched: ServerProcess,
) -> None:
    reasons = ("inaudible", "late", "duplicate", "overflow", "catch_up", "undecodable")
    before = scrape(watched)
    for reason in (*reasons, "send_blocked", "send_error"):
        assert f'hearth_media_dropped_packets_total{{reason="{reason}"}}' in before
    inaudible = 'hearth_media_dropped_packets_total{reason="inaudible"}'
    circle = watched.create_circle()
    host = ScriptedParticipant(watched.ws_url, link_token(circle["host_url"]), "Ana", None)
    # Muted at the door, yet sending a tone: the server drops it and nobody hears it.
    guest = ScriptedParticipant(watched.ws_url, link_token(circle["join_url"]), "Sam", 1300)
    try:
        await host.connect()
        await host.join(muted=True)
        await guest.connect()
        await guest.join(muted=True)
        for person in (host, guest):
            await person.start_audio()
        for person in (host, guest):
            await person.wait_connected()
        deadline = time.monotonic() + 10
        # 50 packets a second: a second and a half of a muted voice, dropped.
        while scrape(watched)[inaudible] < before[inaudible] + 75:
            assert time.monotonic() < deadline, "no inaudible packet was counted as dropped"
            await asyncio.sleep(0.2)
    finally:
        for person in (host, guest):
            await person.close()


@pytest.fixture(scope="module")
def watched_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    metrics_port = free_port()
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-watched-workers")),
        workers=2,
        extra_env={"HEARTH_METRICS_PORT": str(metrics_port)},
    )
    process.start()
    process.metrics_port = metrics_port  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        process.stop()


def scrape_by_worker(server: ServerProcess) -> dict[str, dict[str, float]]:
    """{sample name with its labels but ``worker``: {worker: value}} from the front's /metrics."""
    port = server.metrics_port  # type: ignore[attr-defined]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {}
    # Prometheus's own parser: a family named twice or a malformed line would raise here.
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            worker = labels.pop("worker")  # every sample says where it came from
            pairs = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            key = f"{sample.name}{{{pairs}}}" if pairs else sample.name
            found.setdefault(key, {})[worker] = sample.value
    return found


async def test_with_two_workers_the_fronts_metrics_hold_every_workers_counts(
    watched_workers: ServerProcess,
) -> None:
    server = watched_workers
    before = scrape_by_worker(server)
    assert before["hearth_worker_up"] == {"0": 1, "1": 1}
    assert "front" in before["process_cpu_seconds_total"]
    people: list[ScriptedParticipant] = []
    try:
        # Circles land on a worker by a hash of their id: open circles (one person each)
        # until both workers' metrics count someone.
        for attempt in range(12):
            circle = server.create_circle(title=f"Circle {attempt}")
            host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "H", 500)
            people.append(host)
            await host.connect()
            await host.join(muted=False)
            seated = scrape_by_worker(server)["hearth_participants"]
            assert sum(seated.values()) == len(people)
            if seated.get("0", 0) >= 1 and seated.get("1", 0) >= 1:
                break
        during = scrape_by_worker(server)
        assert during["hearth_participants"]["0"] >= 1, during["hearth_participants"]
        assert during["hearth_participants"]["1"] >= 1, during["hearth_participants"]
        assert sum(during["hearth_live_circles"].values()) == len(people)
        joins = during["hearth_joins_total"]
        assert sum(joins.values()) - sum(before.get("hearth_joins_total", {}).values()) == len(
            people
        )
        # Media runs in the workers, and is counted there.
        for person in people[-2:]:
            await person.start_audio()
        for person in people[-2:]:
            await person.wait_connected()
        received = 'hearth_media_packets_total{direction="received"}'
        deadline = time.monotonic() + 10
        while not all(scrape_by_worker(server)[received].get(w, 0) > 0 for w in ("0", "1")):
            assert time.monotonic() < deadline, "a worker's media packets never showed"
            await asyncio.sleep(0.2)
        for person in people:
            await person.send({"type": "leave"})
        deadline = time.monotonic() + 10
        while sum(scrape_by_worker(server)["hearth_participants"].values()) != 0:
            assert time.monotonic() < deadline, "the front's metrics never saw everyone leave"
            await asyncio.sleep(0.2)
    finally:
        for person in people:
            await person.close()


async def test_joined_gives_this_deployments_turn_with_credentials_coturn_accepts(
    watched: ServerProcess,
) -> None:
    circle = watched.create_circle()
    host = ScriptedParticipant(watched.ws_url, link_token(circle["host_url"]), "Ana", None)
    try:
        await host.connect()
        joined = await host.join(muted=True)
        (server,) = joined["ice_servers"]
        assert server["urls"] == TURN_URLS.split(",")
        expiry, _, _ = server["username"].partition(":")
        # Valid for HEARTH_TURN_TTL_SECONDS (12 hours by default), from now.
        assert abs(int(expiry) - (time.time() + 12 * 3600)) < 60
        # The TURN REST scheme coturn checks with use-auth-secret.
        expected = hmac.new(TURN_SECRET.encode(), server["username"].encode(), hashlib.sha1)
        assert server["credential"] == base64.b64encode(expected.digest()).decode()

        # The answer's media ports are in HEARTH_MEDIA_PORTS, and the public address is offered.
        await host.start_audio()
        await host.wait_connected()
        answer = host.pc.remoteDescription.sdp  # type: ignore[attr-defined]
        first, last = watched.media_ports  # type: ignore[attr-defined]
        hosts = re.findall(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", answer)
        assert {address for address, _ in hosts} == {"127.0.0.1", "127.0.0.3"}
        assert all(first <= int(port) <= last for _, port in hosts), (hosts, first, last)
    finally:
        await host.close()


async def test_health_and_readiness(watched: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{watched.base_url}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "alive"}
        async with http.get(f"{watched.base_url}/readyz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ready"}
    # Metrics are not on the public port.
    async with aiohttp.ClientSession() as http, http.get(f"{watched.base_url}/metrics") as r:
        assert r.status == 404


async def test_no_log_line_holds_an_address_a_token_or_a_display_name(
    watched: ServerProcess,
) -> None:
    """Every kind of request a stranger or a participant makes, from an address that is not
    the server's own (127.0.0.2); then the log is searched for what must never be in it."""
    circle = watched.create_circle()
    join_token, host_token = link_token(circle["join_url"]), link_token(circle["host_url"])
    name = "Zephyrine Quillfeather"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.ws_connect(watched.ws_url) as ws:
            await ws.send_json(
                {
                    "type": "join",
                    "token": host_token,
                    "display_name": name,
                    "device_key": "device-key-secret-123456",
                }
            )
            joined = await ws.receive_json(timeout=10)
            while joined["type"] != "joined":
                joined = await ws.receive_json(timeout=10)
            seat_token = joined["seat_token"]
            await ws.send_str("{not json")
            await ws.send_json({"type": "rename", "display_name": name + " Two"})
            await ws.send_json({"type": "offer", "sdp": "v=0 garbage " + name})
            await asyncio.sleep(0.5)
        for path in (f"/c/{join_token}", f"/c/{host_token}", "/nowhere", "/static/../x"):
            async with http.get(f"{watched.base_url}{path}") as response:
                await response.read()
        async with http.post(f"{watched.base_url}/circle-info", data=b"\xff\xfe") as response:
            await response.read()
        # A WebSocket asking for a protocol nobody speaks (aiohttp logs the client for it).
        async with http.ws_connect(watched.ws_url, protocols=("nonsense",)) as ws:
            await ws.close()
    # A malformed HTTP request (aiohttp logs "Error handling request from <address>").
    with socket.create_connection(
        ("127.0.0.1", watched.port), source_address=("127.0.0.2", 0)
    ) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        s.recv(1024)
    await asyncio.sleep(0.5)

    log = watched.log_text()
    assert log.strip(), "the server logged nothing at all"
    for line in log.splitlines():
        if line.startswith("{"):
            json.loads(line)  # HEARTH_LOG_FORMAT=json: every log line is one JSON object
    for secret in (
        join_token,
        host_token,
        seat_token,
        "device-key-secret-123456",
        watched.admin_token,
        TURN_SECRET,
        "Zephyrine",
        "Quillfeather",
        "127.0.0.2",
    ):
        assert secret and secret not in log, f"the log holds {secret!r}"
