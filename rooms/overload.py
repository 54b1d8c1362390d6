"""Whether the server takes a new arrival now: the overload and drain rule, time passed in.

The live circles come first. Every circle in a process shares one event loop, which also
carries their audio every 20 ms; when that loop falls behind (its *lag*: how late a timer
fires) *because of the process's own circles*, one more arrival (SDP, DTLS handshake, a
database write) makes every circle's audio later still. Then new arrivals are refused with
``server_busy`` (the page tries again a little later), and the people already seated keep
their voices.

A lagging loop is not always the server's own doing: on a machine starved by other work
(a busy host, a noisy neighbour) the loop lags whatever the server carries, and refusing
newcomers there protects nobody; it only keeps the first circles from ever forming. So the
lag alone does not make the server busy. All of these must hold:

- **a sustained lag**: the lag, smoothed over about a second (weighted by time, so one long
  stall counts as much as many short ones and a lone 300 ms hiccup does not), has stood
  past ``busy_lag`` for ``sustain_seconds`` without a break (a window, not one sample);
- **a real live load of its own**: at least ``min_seated`` people are seated in the
  process's circles (fewer cannot be what overloads it: a small server always admits);
- **the process is the one using the CPU**: its own CPU time, smoothed the same way, is at
  least ``min_cpu_share`` of a core. A process that lags while it gets a small slice of a
  core is starved by others, not overloaded by its circles.

Once busy, the server stays busy until the smoothed lag has been under the threshold for
``calm_seconds``, so the answer does not flap.

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

    busy_lag: float = 0.025
    calm_seconds: float = 2.0
    # Time constant of the smoothing (lag and CPU share), seconds.
    smoothing_seconds: float = 1.0
    # The smoothed lag must stay past busy_lag this long, without a break, to count.
    sustain_seconds: float = 1.0
    # Fewer people seated in the process than this: its own circles are not the overload.
    min_seated: int = 12
    # The process's own CPU use (cores, smoothed) below which a lag is the machine's.
    min_cpu_share: float = 0.1


@dataclass(frozen=True, slots=True)
class LoadState:
    """What the lag monitor has seen (times in monotonic seconds): the smoothed lag and CPU
    share, when they were last sampled (with the process's CPU seconds then), since when the
    smoothed lag has stood past the threshold without a break (None: it is not), and when
    the server was last overloaded by its own circles (None: never)."""

    smoothed_lag: float = 0.0
    sampled_at: float | None = None
    last_overloaded_at: float | None = None
    cpu_share: float = 0.0
    cpu_seconds: float | None = None
    lagging_since: float | None = None


def observe_lag(
    state: LoadState,
    limits: LoadLimits,
    *,
    lag: float,
    now: float,
    cpu_seconds: float | None = None,
    seated: int | None = None,
) -> LoadState:
    """The state after one lag sample taken at ``now``. ``cpu_seconds`` is the process's
    CPU time so far (None: not measured, counted as a full core) and ``seated`` the people
    seated in its circles (None: not counted, taken as enough)."""
    elapsed = lag if state.sampled_at is None else max(0.0, now - state.sampled_at)
    weight = 1.0 - math.exp(-elapsed / limits.smoothing_seconds)
    smoothed = state.smoothed_lag + weight * (lag - state.smoothed_lag)
    if cpu_seconds is None:
        share = 1.0
    elif state.cpu_seconds is None or elapsed <= 0:
        share = state.cpu_share
    else:
        used = max(0.0, cpu_seconds - state.cpu_seconds) / elapsed
        share = state.cpu_share + weight * (used - state.cpu_share)
    lagging = limits.busy_lag > 0 and smoothed > limits.busy_lag
    # The window starts when the loop started to be late: a long stall counts from its start.
    since = state.lagging_since if state.lagging_since is not None else now - max(0.0, lag)
    lagging_since = since if lagging else None
    overloaded = (
        lagging_since is not None
        and now - lagging_since >= limits.sustain_seconds
        and (seated is None or seated >= limits.min_seated)
        and share >= limits.min_cpu_share
    )
    return LoadState(
        smoothed_lag=smoothed,
        sampled_at=now,
        last_overloaded_at=now if overloaded else state.last_overloaded_at,
        cpu_share=share,
        cpu_seconds=cpu_seconds,
        lagging_since=lagging_since,
    )


def is_busy(state: LoadState, limits: LoadLimits, *, now: float) -> bool:
    """Busy from an overload of its own (see the module) until the smoothed lag has been
    under the threshold ``calm_seconds``."""
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
