"""SingleFlight: one piece of work per key, shared, and never left with an unread failure."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from signaling.single_flight import SingleFlight


async def test_callers_at_the_same_moment_share_one_run_and_its_result() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    runs = 0

    async def load() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        return 7

    results = await asyncio.gather(*(flight.run("circle", load) for _ in range(50)))
    assert results == [7] * 50
    assert runs == 1
    await asyncio.sleep(0)
    assert "circle" not in flight and not flight
    # Once landed, the next caller runs it afresh; another key never shares.
    await asyncio.gather(flight.run("circle", load), flight.run("other", load))
    assert runs == 3


async def test_one_caller_giving_up_does_not_cancel_the_work_for_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    started = asyncio.Event()

    async def place() -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "node-2"

    quitter = asyncio.create_task(flight.run("circle", place))
    await started.wait()
    stayer = asyncio.create_task(flight.run("circle", place))
    await asyncio.sleep(0)
    quitter.cancel()
    assert await stayer == "node-2"
    with pytest.raises(asyncio.CancelledError):
        await quitter


async def test_a_failure_reaches_every_caller_and_the_next_one_tries_again() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise ConnectionError("database away")
        return 1

    outcomes = await asyncio.gather(
        *(flight.run("c", flaky) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    # Asked again after the failure: run anew, not answered with the stale failure.
    assert await flight.run("c", flaky) == 1
    assert attempts == 2


async def test_work_that_fails_after_everyone_gave_up_is_not_logged_as_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flight: SingleFlight[str, int] = SingleFlight()

    async def fails_late() -> int:
        await asyncio.sleep(0.02)
        raise ConnectionError("database away")

    caller = asyncio.create_task(flight.run("c", fails_late))
    await asyncio.sleep(0)
    caller.cancel()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        await asyncio.sleep(0.05)
        del caller
        gc.collect()
        await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
