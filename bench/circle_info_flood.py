"""Does a flood of POST /circle-info with random tokens slow another circle down?

One circle runs with a host and a participant; the participant toggles its mute and waits
for the server's `participant_updated`, again and again (a command's round trip: parse,
decide, store, publish). That is measured quiet, then while `--flooders` HTTP clients post
random tokens to /circle-info as fast as they can, from one address or spread over many
loopback addresses (127.0.0.2 ...), as a distributed flood would be.

    .venv/bin/python -m bench.circle_info_flood [--repo PATH] [--addresses N]

``--repo`` runs the server from another checkout (e.g. ``git archive main`` unpacked) to
compare before and after in one run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import server as server_support
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


async def round_trips(someone: ScriptedParticipant, count: int) -> list[float]:
    times = []
    assert someone.me is not None
    muted = bool(someone.participants[someone.me["id"]]["muted"])
    for _ in range(count):
        muted = not muted
        mark = len(someone.messages)
        start = time.perf_counter()
        await someone.send({"type": "mute", "muted": muted})
        await someone.wait_for("participant_updated", after=mark)
        times.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.05)  # well under any message limit
    return times


async def flood(base_url: str, address: str, stop: asyncio.Event, counts: dict[int, int]) -> None:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        while not stop.is_set():
            body = {"token": secrets.token_urlsafe(24)}
            try:
                async with http.post(f"{base_url}/circle-info", json=body) as response:
                    await response.read()
                    counts[response.status] = counts.get(response.status, 0) + 1
            except aiohttp.ClientError:
                counts[0] = counts.get(0, 0) + 1


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def measure(server: ServerProcess, flooders: int, addresses: int, count: int) -> Any:
    circle = server.create_circle(title="Measured")
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", None)
    await host.connect()
    await sam.connect()
    await host.join()
    await sam.join()
    try:
        await round_trips(sam, 10)  # warm up
        quiet = await round_trips(sam, count)
        stop = asyncio.Event()
        counts: dict[int, int] = {}
        tasks = [
            asyncio.create_task(
                flood(server.base_url, f"127.0.0.{2 + i % addresses}", stop, counts)
            )
            for i in range(flooders)
        ]
        await asyncio.sleep(1)
        started = time.perf_counter()
        loaded = await round_trips(sam, count)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        await sam.close()
        await host.close()
    return {
        "quiet": summary(quiet),
        "flooded": summary(loaded),
        "flood_answers": {str(k): v for k, v in sorted(counts.items())},
        "flood_requests_per_second": round(sum(counts.values()) / (elapsed + 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=None, help="run the server from here")
    parser.add_argument("--flooders", type=int, default=32)
    parser.add_argument("--addresses", type=int, default=1)
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    if args.repo is not None:
        server_support.REPO_ROOT = args.repo.resolve()
    with tempfile.TemporaryDirectory(prefix="h9l-flood-") as data:
        server = ServerProcess(data_dir=Path(data))
        server.start()
        try:
            result = asyncio.run(measure(server, args.flooders, args.addresses, args.count))
        finally:
            server.stop()
    result.update(
        {
            "repo": str(args.repo or "this checkout"),
            "flooders": args.flooders,
            "addresses": args.addresses,
            "load_before": os.getloadavg()[0],
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
