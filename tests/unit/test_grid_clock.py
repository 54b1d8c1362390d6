"""Sleeping until instants of the process's timer grid (signaling.grid_clock)."""

from __future__ import annotations

import asyncio

from rooms.tick_schedule import GRID_SECONDS
from signaling.grid_clock import sleep_to_grid


async def test_sleepers_wake_on_the_grid_never_early_and_together() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    woke: dict[str, float] = {}

    async def sleeper(name: str, every: int, at_least: float = 0.0) -> float:
        instant = await sleep_to_grid(every, at_least)
        woke[name] = loop.time()
        return instant

    tick, report, later = await asyncio.gather(
        sleeper("tick", 1), sleeper("report", 5), sleeper("later", 5, at_least=0.15)
    )
    for name, instant, every in (("tick", tick, 1), ("report", report, 5), ("later", later, 5)):
        assert woke[name] >= instant, name  # never before its instant
        steps = instant / (every * GRID_SECONDS)
        assert abs(steps - round(steps)) < 1e-6, name  # on the grid
    assert start < tick <= start + GRID_SECONDS
    assert start < report <= start + 5 * GRID_SECONDS
    assert start + 0.15 < later <= start + 0.15 + 5 * GRID_SECONDS


async def test_a_sleeper_given_up_does_not_keep_the_others_waiting() -> None:
    quitter = asyncio.create_task(sleep_to_grid(5))
    stayer = asyncio.create_task(sleep_to_grid(5))
    await asyncio.sleep(0)
    quitter.cancel()
    instant = await asyncio.wait_for(stayer, 1.0)
    assert asyncio.get_running_loop().time() >= instant
    assert quitter.cancelled()
