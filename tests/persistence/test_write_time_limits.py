"""How long a write may take before the database counts as away, on SQLite and PostgreSQL.

Waiting in line for a connection (a pool shared by many circles in a join burst, or SQLite's
one writer) is not an outage: those writes succeed, however long the line. A write that holds
its connection past the limit is (a hung server): it fails fast with StorageUnavailable, and
the next write works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.storage.database import Database
from signaling.store import StorageUnavailable

ON_CONNECTION = 0.5
# Each write holds the only connection this long: under the limit alone, far over it queued.
HOLD = 0.3
QUEUED_WRITES = 6


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    """A database whose pool has a single connection, so every second write queues."""
    db = Database(database_url, on_connection_timeout=ON_CONNECTION, pool_size=1, max_overflow=0)
    await db.connect()
    await db.write(lambda s: s.execute(text("CREATE TABLE marks (n INTEGER)")))
    yield db
    await db.close()


def _mark(n: int, hold: float):  # type: ignore[no-untyped-def]
    async def work(session: AsyncSession) -> int:
        await session.execute(text("INSERT INTO marks (n) VALUES (:n)"), {"n": n})
        await asyncio.sleep(hold)
        return n

    return work


async def _marks(db: Database) -> list[int]:
    async with db.sessions() as session:
        return sorted((await session.scalars(text("SELECT n FROM marks"))).all())


async def test_writes_queued_longer_than_the_limit_all_succeed(one_connection: Database) -> None:
    db = one_connection
    before = db.transactions
    started = time.monotonic()
    done = await asyncio.gather(*(db.write(_mark(n, HOLD)) for n in range(QUEUED_WRITES)))
    waited = time.monotonic() - started
    # The last one queued behind five others: far longer than the limit, and not an outage.
    assert waited > 3 * ON_CONNECTION
    assert done == list(range(QUEUED_WRITES))
    assert await _marks(db) == list(range(QUEUED_WRITES))
    assert db.transactions - before == QUEUED_WRITES


async def test_a_write_that_holds_its_connection_too_long_fails_fast_and_stores_nothing(
    one_connection: Database,
) -> None:
    db = one_connection
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="on a connection"):
        await db.write(_mark(1, hold=30.0))
    # Not tried again: the database did not answer, and a circle should know at once.
    assert time.monotonic() - started < ON_CONNECTION + 2.0
    # Rolled back, and the connection is usable (or replaced) for the next write.
    assert await db.write(_mark(2, hold=0)) == 2
    assert await _marks(db) == [2]


async def test_maintenance_may_hold_its_connection_past_the_limit(
    one_connection: Database,
) -> None:
    # A purge of a year of records on a large database rightly takes longer than a circle's
    # write may: it is not an outage.
    db = one_connection
    assert await db.write(_mark(4, hold=3 * ON_CONNECTION), bounded=False) == 4
    assert await _marks(db) == [4]


@pytest.mark.postgres
async def test_a_server_that_hangs_mid_statement_fails_fast(postgres_server_url: str) -> None:
    db = Database(postgres_server_url, on_connection_timeout=ON_CONNECTION)
    await db.connect()
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await db.write(lambda s: s.execute(text("SELECT pg_sleep(30)")))
        assert time.monotonic() - started < ON_CONNECTION + 2.0
        assert await db.write(lambda s: s.scalar(text("SELECT 7"))) == 7
    finally:
        await db.close()


async def test_a_queue_that_never_moves_counts_as_away(database_url: str) -> None:
    db = Database(database_url, queue_timeout=0.5, pool_size=1, max_overflow=0)
    await db.connect()
    try:
        holder = asyncio.create_task(db.write(lambda s: asyncio.sleep(3)))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="no connection"):
            await db.write(lambda s: s.scalar(text("SELECT 1")))
        assert time.monotonic() - started < 2.0
        await holder
    finally:
        await db.close()
