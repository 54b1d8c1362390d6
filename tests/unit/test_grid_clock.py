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


async def test_a_sleeper_that_must_go_first_runs_before_the_instant_s_others() -> None:
    """The reads of voices go ahead of the ticks that mix them, at every instant, though
    the reader went to sleep after the ticks did."""
    order: list[tuple[float, str]] = []

    async def sleeper(name: str, first: bool) -> None:
        for _ in range(10):
            instant = await sleep_to_grid(1, first=first)
            order.append((instant, name))

    ticks = [asyncio.create_task(sleeper(f"tick {n}", False)) for n in range(3)]
    await asyncio.sleep(0)
    await sleeper("reads", True)
    await asyncio.gather(*ticks)
    instants = sorted({instant for instant, _ in order})
    for instant in instants[:9]:
        names = [name for when, name in order if when == instant]
        assert names[0] == "reads", names
        assert sorted(names[1:]) == ["tick 0", "tick 1", "tick 2"]
