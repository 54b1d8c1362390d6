"""Whether this process takes new arrivals: the event-loop lag monitor and the drain switch.

The rule is rooms/overload.py's; this is its I/O edge. ``monitor`` runs for the life of a
process: it sleeps a short interval and measures how late it wakes (the loop's lag, which is
what every circle's audio in this process feels), with the process's CPU time and the people
seated in its circles, which tell an overload of its own from a slow machine. A session asks
``refusal()`` before seating a new arrival.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from rooms.overload import (
    BUSY_MESSAGE,
    DRAINING_MESSAGE,
    SERVER_BUSY,
    SERVER_DRAINING,
    LoadLimits,
    LoadState,
    arrival_refusal,
    is_busy,
    observe_lag,
)

log = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455 7.4.1, IANA registry): 1013 "try again later" after
# server_busy, 1012 "service restart" when a draining server closes (the page comes back
# by itself with its seat token).
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_SERVICE_RESTART = 1012

REFUSAL_MESSAGES = {SERVER_BUSY: BUSY_MESSAGE, SERVER_DRAINING: DRAINING_MESSAGE}
REFUSAL_CLOSE_CODES = {SERVER_BUSY: CLOSE_TRY_AGAIN_LATER, SERVER_DRAINING: CLOSE_SERVICE_RESTART}

# How often the loop's lag is sampled: ten samples in the lag's smoothing second, enough to
# see a busy second. Its timer is its own, off the process's grid (signaling.grid_clock): on
# a grid instant it would always wake behind that instant's ticks and count their work as
# lag. Each sample is a wake-up of the loop, which on a virtual machine costs more than the
# sample (docs/performance.md), so no more often than this.
SAMPLE_SECONDS = 0.1


class Admission:
    def __init__(self, limits: LoadLimits) -> None:
        self.limits = limits
        self.draining = False
        self._state = LoadState()
        self._busy = False
        # Newcomers turned away in the current busy spell (logged when it ends).
        self.refused = 0

    def refusal(self) -> str | None:
        """``server_draining``, ``server_busy`` or None (let the arrival in)."""
        now = asyncio.get_running_loop().time()
        return arrival_refusal(self._state, self.limits, draining=self.draining, now=now)

    @property
    def smoothed_lag(self) -> float:
        """The loop's lag (s) as the monitor smooths it: a node reports it as its load."""
        return self._state.smoothed_lag

    def start_draining(self) -> None:
        self.draining = True

    def observe(
        self, lag: float, now: float, *, cpu_seconds: float | None = None, seated: int | None = None
    ) -> None:
        was_busy = self._busy
        self._state = observe_lag(
            self._state, self.limits, lag=lag, now=now, cpu_seconds=cpu_seconds, seated=seated
        )
        busy = self._busy = is_busy(self._state, self.limits, now=now)
        if busy and not was_busy:
            log.warning(
                "event loop %.0f ms late (threshold %.0f ms), %s seated, %.0f%% of a core: "
                "refusing new arrivals",
                self._state.smoothed_lag * 1000,
                self.limits.busy_lag * 1000,
                "?" if seated is None else seated,
                self._state.cpu_share * 100,
            )
        elif was_busy and not busy:
            log.info("event loop calm again: taking new arrivals (%d refused)", self.refused)
            self.refused = 0

    async def monitor(self, seated: Callable[[], int] | None = None) -> None:
        """Sample the loop's lag forever (cancel to stop), with the process's CPU time and
        the people ``seated`` in its circles."""
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + SAMPLE_SECONDS
            await asyncio.sleep(SAMPLE_SECONDS)
            now = loop.time()
            self.observe(
                max(0.0, now - expected),
                now,
                cpu_seconds=time.process_time(),
                seated=None if seated is None else seated(),
            )
