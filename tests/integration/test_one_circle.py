"""One circle, always: people arriving at the same moment end up in the same circle.

Rounds of concurrent real WebSocket joins against a real server process: several hosts on
the host link, participants on the join link right behind them (while the hosts' arrival is
in flight), and refusals (a wrong passcode) mixed in, whose clean-up must not close the
circle the others are joining. A split is a joined person who does not see someone else
who joined the same circle: they were seated in a second, separate circle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.server import ServerProcess, link_token

HOSTS, PARTICIPANTS, REFUSED = 3, 5, 2
PASSCODE = "4321"


@dataclass
class RoundResult:
    joined: int = 0
    refused_not_open: int = 0
    refused_passcode: int = 0
    other_errors: int = 0
    # Extra circles: distinct worlds among the joined, minus one.
    splits: int = 0


async def _arrive(
    http: aiohttp.ClientSession,
    ws_url: str,
    message: dict[str, Any],
    settle: asyncio.Event,
    decided: asyncio.Queue[None],
) -> tuple[str, Any]:
    """Join; returns ('joined', (my id, ids I see)) or ('error', code)."""
    async with http.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps(message))
        me: str | None = None
        seen: set[str] = set()
        async with asyncio.timeout(20):
            async for msg in ws:
                data = json.loads(msg.data)
                kind = data["type"]
                if kind == "error" and me is None:
                    decided.put_nowait(None)
                    return "error", data["code"]
                if kind == "joined":
                    me = data["you"]["id"]
                    seen = {p["id"] for p in data["participants"]}
                    decided.put_nowait(None)
                    break
        # Keep listening until every arrival of the round is settled.
        waiter = asyncio.ensure_future(settle.wait())
        while not waiter.done():
            receive = asyncio.ensure_future(ws.receive())
            await asyncio.wait({waiter, receive}, return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receive
                break
            msg = receive.result()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data["type"] == "participant_joined":
                seen.add(data["participant"]["id"])
            elif data["type"] == "participant_left":
                seen.discard(data["participant_id"])
        # Leave on purpose, so the next round starts from an empty server.
        await ws.send_str(json.dumps({"type": "leave"}))
        return "joined", (me, seen)


async def run_round(server: ServerProcess, http: aiohttp.ClientSession) -> RoundResult:
    circle = server.create_circle("Arrivals")
    status, _ = server.api(
        "PUT",
        f"/api/v1/circles/{circle['id']}/moderation",
        {
            "speaking_mode": "open",
            "lobby": False,
            "passcode": PASSCODE,
            "wait_for_host": False,
            "no_host_policy": "continue",
            "allow_rename": True,
            "share_seconds": None,
            "crisis_text": "",
        },
    )
    assert status == 200, status
    host, join = link_token(circle["host_url"]), link_token(circle["join_url"])

    def message(token: str, name: str, passcode: str | None) -> dict[str, Any]:
        return {
            "type": "join",
            "token": token,
            "display_name": name,
            "muted": True,
            "passcode": passcode,
        }

    settle, decided = asyncio.Event(), asyncio.Queue[None]()
    hosts = [message(host, f"Host {i}", None) for i in range(HOSTS)]
    others = [message(join, f"Sam {i}", PASSCODE) for i in range(PARTICIPANTS)]
    others += [message(join, f"Wrong {i}", "0000") for i in range(REFUSED)]

    def arrive(m: dict[str, Any]) -> asyncio.Future[tuple[str, Any]]:
        return asyncio.ensure_future(_arrive(http, server.ws_url, m, settle, decided))

    tasks = [arrive(m) for m in hosts]
    # The others come a moment later, while the hosts' arrival is in flight.
    await asyncio.sleep(0.02)
    tasks += [arrive(m) for m in others]
    async with asyncio.timeout(30):
        for _ in tasks:
            await decided.get()
    # Everyone who got in has had time to hear of everyone else who did.
    await asyncio.sleep(1.0)
    settle.set()
    outcomes = await asyncio.gather(*tasks)
    result = RoundResult()
    worlds: list[set[str]] = []
    for kind, value in outcomes:
        if kind == "joined":
            result.joined += 1
            me, seen = value
            worlds.append({me, *seen})
        elif value == "circle_not_open":
            result.refused_not_open += 1
        elif value in ("passcode_required", "wrong_passcode"):
            result.refused_passcode += 1
        else:
            result.other_errors += 1
    everyone = set().union(*worlds) if worlds else set()
    distinct = {frozenset(w) for w in worlds}
    result.splits = 0 if not worlds else len(distinct) - 1
    # Also a split: someone joined and the world they see lacks others who joined.
    if any(w != everyone for w in worlds):
        result.splits = max(result.splits, 1)
    return result


async def run_rounds(server: ServerProcess, rounds: int) -> list[RoundResult]:
    async with aiohttp.ClientSession() as http:
        return [await run_round(server, http) for _ in range(rounds)]


def summary(results: list[RoundResult]) -> dict[str, int]:
    return {
        "rounds": len(results),
        "rounds_split": sum(r.splits > 0 for r in results),
        "extra_circles": sum(r.splits for r in results),
        "joined": sum(r.joined for r in results),
        "refused_not_open": sum(r.refused_not_open for r in results),
        "refused_passcode": sum(r.refused_passcode for r in results),
        "other_errors": sum(r.other_errors for r in results),
    }


@pytest.fixture(
    scope="module",
    params=[
        "one process",
        "two workers",
        pytest.param("two workers on PostgreSQL", marks=pytest.mark.postgres),
    ],
)
def arrivals_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    workers = None if request.param == "one process" else 2
    # Every arrival comes from 127.0.0.1: the per-address passcode backoff (issue 9's limits,
    # tested in test_limits.py) would hold back the right passcodes after a few wrong ones.
    env = {"HEARTH_PASSCODE_FREE_FAILURES": "1000"}
    postgres_url = None
    if "PostgreSQL" in request.param:
        postgres_url = request.getfixturevalue("postgres_server_url")
        env["HEARTH_DATABASE_URL"] = postgres_url
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("arrivals")), workers=workers, extra_env=env
    )
    process.start(timeout=120)
    try:
        yield process
    finally:
        process.stop()
        if postgres_url is not None:
            # The session's database, left empty for the next test that uses it.
            _empty(postgres_url)


def _empty(url: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    # On a thread of its own: no event loop of the tests' is touched.
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, run()).result()


ROUNDS = 12


async def test_people_arriving_together_share_one_circle(arrivals_server: ServerProcess) -> None:
    results = await run_rounds(arrivals_server, ROUNDS)
    totals = summary(results)
    print("one circle:", totals)
    assert totals["extra_circles"] == 0, totals
    # Participants who came while the hosts' arrival was in flight were let in, not refused.
    assert totals["refused_not_open"] == 0, totals
    assert totals["joined"] == ROUNDS * (HOSTS + PARTICIPANTS), totals
    assert totals["refused_passcode"] == ROUNDS * REFUSED, totals
    assert totals["other_errors"] == 0, totals
