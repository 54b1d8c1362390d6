"""Whether the server takes a new arrival now: the overload and drain rule, time passed in.

The live circles come first. Every circle in a process shares one event loop, which also
carries their audio every 20 ms; when that loop falls behind (its *lag*: how late a timer
fires), one more arrival (SDP, DTLS handshake, a database write) makes every circle's audio
later still. So while the loop lags past a threshold, new arrivals are refused with
``server_busy`` (the page tries again a little later), and the people already seated keep
their voices. The lag is smoothed over about a second (weighted by time, so one long stall
counts as much as many short ones and a lone 300 ms hiccup does not), and the server stays
busy until the smoothed lag has been under the threshold for ``calm_seconds``, so the
answer does not flap.

A draining server (stopping on SIGTERM) takes no new arrival at all: ``server_draining``.
People who are already seated and come back with their seat token are not arrivals: the
caller lets them through (see docs/architecture.md, "Drain and overload").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SERVER_BUSY = "server_busy"
SERVER_DRAINING = "server_draining"

BUSY_MESSAGE = "The server is very busy right now. Trying again in a moment."
DRAINING_MESSAGE = "The server is restarting. Trying again in a moment."


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """``busy_lag`` in seconds; 0 turns the overload refusal off."""

    busy_lag: float = 0.2
    calm_seconds: float = 2.0
    # Time constant of the smoothing, seconds.
    smoothing_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class LoadState:
    """What the lag monitor has seen (times in monotonic seconds): the smoothed lag, when
    it was last sampled and when it last stood past the threshold (None: never)."""

    smoothed_lag: float = 0.0
    sampled_at: float | None = None
    last_overloaded_at: float | None = None


def observe_lag(state: LoadState, limits: LoadLimits, *, lag: float, now: float) -> LoadState:
    """The state after one lag sample taken at ``now``."""
    elapsed = lag if state.sampled_at is None else max(0.0, now - state.sampled_at)
    weight = 1.0 - math.exp(-elapsed / limits.smoothing_seconds)
    smoothed = state.smoothed_lag + weight * (lag - state.smoothed_lag)
    overloaded = limits.busy_lag > 0 and smoothed > limits.busy_lag
    return LoadState(
        smoothed_lag=smoothed,
        sampled_at=now,
        last_overloaded_at=now if overloaded else state.last_overloaded_at,
    )


def is_busy(state: LoadState, limits: LoadLimits, *, now: float) -> bool:
    """Busy from a smoothed lag past the threshold until it has been under it ``calm_seconds``."""
    if limits.busy_lag <= 0 or state.last_overloaded_at is None:
        return False
    return now - state.last_overloaded_at < limits.calm_seconds


def arrival_refusal(
    state: LoadState, limits: LoadLimits, *, draining: bool, now: float
) -> str | None:
    """The code a new arrival is refused with now, or None to let it in."""
    if draining:
        return SERVER_DRAINING
    if is_busy(state, limits, now=now):
        return SERVER_BUSY
    return None
