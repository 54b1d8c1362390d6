"""SQLite written by several processes at once (``hearth serve --workers N``)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from rooms.model import CircleState
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from tests.persistence.test_circle_store import NOW, opened, schedule, seat

WRITES_EACH = 40


async def test_two_engines_on_one_sqlite_file_write_at_once_without_locking(
    sqlite_database_url: str,
) -> None:
    # Two Database objects stand for two worker processes: separate engines and pools on
    # the same file, each writing as fast as it can while the other does too.
    first, second = Database(sqlite_database_url), Database(sqlite_database_url)
    await first.connect()
    await second.connect()
    try:
        async with first.engine.connect() as connection:
            mode = await connection.scalar(text("PRAGMA journal_mode"))
            timeout = await connection.scalar(text("PRAGMA busy_timeout"))
        assert (mode, timeout) == ("wal", 5000)

        stores = [SqlCircleStore(first), SqlCircleStore(second)]
        circles = [(await schedule(store, f"Circle {i}")).circle for i, store in enumerate(stores)]

        async def write(store: SqlCircleStore, index: int) -> None:
            circle = circles[index % 2]
            state = CircleState(opened(circle, NOW))
            for n in range(WRITES_EACH):
                state = state.with_seat(seat(f"s{index}-{n}", muted=n % 2 == 0))
                await store.save_state(state, now=NOW)
                if n % 10 == 0:
                    await schedule(store, f"Made by {index} at {n}")

        # Several writers per engine too, as a worker's circles each save on their own.
        await asyncio.gather(*(write(stores[i % 2], i) for i in range(6)))

        for index in range(2):
            present = await stores[1 - index].present_seats(circles[index].id)
            assert len(present) >= WRITES_EACH
        listed = await stores[0].list_circles()
        assert len(listed) == 2 + 6 * (WRITES_EACH // 10)
    finally:
        await first.close()
        await second.close()
