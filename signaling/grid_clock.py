"""The process's timer grid at the I/O edge: sleeping until an instant of it.

Where the instants fall is pure (``rooms.tick_schedule.next_grid_time``); sleeping until one
is here. Every periodic timer of the process (each circle's tick, the reads of quiet voices,
the RTCP reports) sleeps this way, so timers due at the same instant run in one turn of the
event loop: one wake-up for all of them (docs/performance.md, "one timer grid").
"""

from __future__ import annotations

import asyncio

from rooms.tick_schedule import next_grid_time


async def sleep_until(when: float) -> None:
    """Sleep until the loop's clock reads ``when`` exactly (``asyncio.sleep`` adds its delay
    to a fresh clock read, which would spread timers meant for one instant by microseconds).
    A sleeper cancelled meanwhile leaves no timer behind."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    handle = loop.call_at(when, _finish, done)
    try:
        await done
    finally:
        handle.cancel()


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# How far ahead of an instant a timer that must run before the instant's others is set. The
# loop runs every timer due when it wakes in the order they fall due, and it wakes for an
# instant a fraction of a millisecond after it (epoll's timeout is in whole milliseconds), so
# a microsecond orders the two in the same turn without a wake-up of its own.
AHEAD_OF_INSTANT = 1e-6


async def sleep_to_grid(every: int = 1, at_least: float = 0.0, first: bool = False) -> float:
    """Sleep until the first instant of every ``every``-th grid instant that is more than
    ``at_least`` seconds away; return that instant (the loop's clock). ``first``: run
    before the timers due at that instant (the reads of voices before the ticks that mix
    them)."""
    when = next_grid_time(asyncio.get_running_loop().time() + at_least, every)
    await sleep_until(when - AHEAD_OF_INSTANT if first else when)
    return when
