"""One piece of work in flight per key, shared by everyone who asks for it meanwhile.

A whole circle arriving at once (a host link opened by several people, everyone reconnecting
after a drain) must load or place that circle once, not once each: the first caller starts
the work, the others wait on the same task. Each waits shielded, so one person giving up
(a closed page, a join timeout) does not cancel the work the others wait on; and the task's
outcome is always retrieved, so work that failed after every waiter gave up is not logged as
"Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._in_flight: dict[K, asyncio.Future[V]] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._in_flight

    def __bool__(self) -> bool:
        return bool(self._in_flight)

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """The result of ``work()`` for ``key``: started now if nothing is in flight for it,
        else the one already running."""
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task)

    def _landed(self, key: K, done: asyncio.Future[V]) -> None:
        if self._in_flight.get(key) is done:
            del self._in_flight[key]
        if not done.cancelled():
            done.exception()  # retrieved, in case every waiter gave up
