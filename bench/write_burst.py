"""Writes per burst of commands: how many full-state writes 200 mute toggles cost.

    python -m bench.write_burst --toggles 200 [--postgres postgresql+asyncpg://postgres@127.0.0.1/test]

A real server on a PostgreSQL database of its own (created in the given server, dropped
after); a host and one participant join, then the participant sends ``--toggles`` mute
toggles on its socket as fast as it can. The writes are counted by PostgreSQL itself: rows
updated in ``live_states`` (one per stored state) and transactions committed
(``pg_stat_database.xact_commit``, which also counts the server's other statements).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STATS_DELAY = 11.0


async def _counters(url: str, database: str) -> tuple[int, int]:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as c:
            await c.execute(text("SELECT pg_stat_clear_snapshot()"))
            xact = await c.scalar(
                text("SELECT xact_commit FROM pg_stat_database WHERE datname = :d"), {"d": database}
            )
            updates = await c.scalar(
                text(
                    "SELECT n_tup_upd + n_tup_ins FROM pg_stat_user_tables"
                    " WHERE relname = 'live_states'"
                )
            )
        return int(xact or 0), int(updates or 0)
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as c:
            await c.execute(text(statement))
    finally:
        await engine.dispose()


async def burst(toggles: int, postgres: str) -> dict[str, Any]:
    name = f"hearth_burst_{secrets.token_hex(4)}"
    await _admin(postgres, f'CREATE DATABASE "{name}"')
    url = make_url(postgres).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            server = ServerProcess(data_dir=Path(tmp), extra_env={"HEARTH_DATABASE_URL": url})
            server.start()
            try:
                circle = server.create_circle("Burst")
                host = ScriptedParticipant(
                    server.ws_url, link_token(circle["host_url"]), "Ana", None
                )
                sam = ScriptedParticipant(
                    server.ws_url, link_token(circle["join_url"]), "Sam", None
                )
                for person in (host, sam):
                    await person.connect()
                    await person.join(muted=True)
                assert sam.me is not None
                sam_id = sam.me["id"]
                # An idle backend reports its statistics within about 10 s (PostgreSQL 15).
                await asyncio.sleep(STATS_DELAY)
                xact0, rows0 = await _counters(url, name)
                started = time.monotonic()
                for i in range(toggles):
                    await sam.send({"type": "mute", "muted": i % 2 == 1})

                def told() -> int:
                    return sum(
                        1
                        for m in host.messages
                        if m["type"] == "participant_updated" and m["participant"]["id"] == sam_id
                    )

                # Each toggle changes the state, so each is told: wait for all of them.
                await host.wait_until(lambda: told() >= toggles, timeout=300)
                elapsed = time.monotonic() - started
                await asyncio.sleep(STATS_DELAY)
                xact1, rows1 = await _counters(url, name)
                told_to_host = told()
                for person in (host, sam):
                    await person.close()
            finally:
                server.stop()
    finally:
        await _admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "toggles": toggles,
        "state_writes": rows1 - rows0,
        "transactions": xact1 - xact0,
        "updates_told_to_host": told_to_host,
        "seconds": round(elapsed, 2),
        "load": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--toggles", type=int, default=200)
    parser.add_argument(
        "--postgres", default=os.environ.get("HEARTH_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(burst(args.toggles, args.postgres))))


if __name__ == "__main__":
    main()
