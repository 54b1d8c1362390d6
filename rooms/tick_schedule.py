"""When the mixer's 20 ms tick runs, and whether the mixer sheds load: time passed in.

Two decisions for the audio path's clock (signaling.audio), both pure:

- **Skip rather than fall behind.** A tick woken a little late (under three periods) is
  caught up: the next ones run at once, and no frame is lost. A tick later than that keeps
  to the original 20 ms grid: it runs the ticks it missed back to back only as far as the
  process can afford them (their CPU cost, every circle's, under half the wall time they
  cover, and at most MAX_CATCH_UP_PERIODS), and skips the rest, the oldest first (their
  frames are dropped). So a process that is merely woken late (a machine busy with other
  work: its timers fire in clumps, but the CPU it gets is enough for its mix) loses no
  frame, and one whose mix costs more than it gets drops frames rather than falling
  further behind (a backlog that grows, and latency that never comes back).
- **Shed the mix when it cannot keep up.** Each wake-up of the clock reports how many ticks
  it skipped and ran and the CPU time the process's mixing takes per tick; the share of
  ticks skipped and the cost are smoothed over a few ticks. When a good share of the ticks
  due are skipped (frames lost even with the catch-up) while mixing takes a good share of
  the period, the mixer sheds: it stops decoding and encoding and forwards the loudest voice
  unchanged, which costs no codec work and does not wait for ticks. It mixes again once no
  tick has been skipped for ``calm_seconds``, so the choice does not flap. Lateness alone
  sheds nothing: a late tick whose missed ticks are caught up loses no frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# One grid for every periodic timer of a process: each circle's 20 ms tick, the reads of
# voices nobody may hear, the RTCP reports. Timers due at the same instant are run in one
# turn of the event loop, so the loop wakes once for all of them; on a virtual machine a
# wake-up costs more than the work most of them do (docs/performance.md).
GRID_SECONDS = 0.02


def next_grid_time(now: float, every: int = 1, grid: float = GRID_SECONDS) -> float:
    """The first instant after ``now`` that falls on every ``every``-th instant of the grid
    (instants are whole multiples of ``grid``, so callers with different ``every`` meet)."""
    step = every * grid
    return (math.floor(now / step) + 1) * step


def is_every_nth_instant(instant: float, every: int, grid: float = GRID_SECONDS) -> bool:
    """Whether ``instant`` (an instant of the grid) is also one of every ``every``-th."""
    return round(instant / grid) % every == 0


@dataclass(frozen=True, slots=True)
class TickPlan:
    """What to do now that the tick due at some deadline woke: ``skipped`` ticks are
    dropped before running this one, ``catch_up`` more run right after it (back to back),
    and the next is due at ``next_deadline``."""

    skipped: int
    next_deadline: float
    catch_up: int = 0


# A tick late by less than this many periods is caught up (the next ones run at once): the
# voices' buffers hold that much, and a busy machine's short delays lose no frame. Later
# than that, the missed ticks are run back to back as far as they are affordable, the rest
# skipped.
CATCH_UP_PERIODS = 3
# At most this many missed ticks are run back to back in one wake-up (200 ms of audio): older
# frames are dropped; a listener's jitter buffer would only play them late.
MAX_CATCH_UP_PERIODS = 10
# Missed ticks are run back to back while their CPU cost stays under this share of the wall
# time they cover: the process keeps the rest for its sockets and everything else.
CATCH_UP_BUDGET = 0.5


def plan_tick(
    deadline: float, now: float, period: float, *, tick_cost: float | None = None
) -> TickPlan:
    """The tick due at ``deadline`` woke at ``now``: run it; if it is CATCH_UP_PERIODS or
    more late, run the whole periods missed since as far as they are affordable (each
    costs ``tick_cost`` seconds of CPU, every circle of the process together; None: not
    known, so none is run) and skip the rest; stay on the grid of ``deadline``."""
    late = now - deadline
    if late < CATCH_UP_PERIODS * period:
        return TickPlan(skipped=0, next_deadline=deadline + period)
    missed = int(late // period)
    if tick_cost is None:
        affordable = 0
    elif tick_cost <= 0:
        affordable = missed
    else:
        affordable = int(CATCH_UP_BUDGET * late / tick_cost)
    catch_up = min(missed, MAX_CATCH_UP_PERIODS, affordable)
    return TickPlan(
        skipped=missed - catch_up,
        next_deadline=deadline + (missed + 1) * period,
        catch_up=catch_up,
    )


@dataclass(frozen=True, slots=True)
class ShedLimits:
    # Shed when this share of the ticks due is skipped (smoothed: their frames are lost, the
    # mix cannot keep up even catching up) ... A first version shed when ticks woke two and
    # a half periods late on average; on a machine busy with other work (load 6-12) that
    # stayed true for good, and the mix was shed while catching up would have kept it whole.
    shed_skipped: float = 0.2
    # ... and the mix itself takes this share of the period: then shedding it helps. A
    # process starved by others while its mix is cheap keeps mixing.
    shed_cost: float = 0.2
    # Mix again once no tick has been skipped for calm_seconds.
    calm_seconds: float = 3.0
    # Weight of the newest tick in the smoothing (about 10 ticks, 200 ms).
    smoothing: float = 0.1
    # One stall counts at most this many periods in the smoothed lateness (reported only).
    max_late: float = 6.0


@dataclass(frozen=True, slots=True)
class MixLoad:
    """Smoothed lateness and cost of the ticks (in periods) and share of the due ticks
    skipped, whether the mixer sheds, and since when no tick has been skipped while it does."""

    late: float = 0.0
    cost: float = 0.0
    shedding: bool = False
    calm_since: float | None = None
    skipped: float = 0.0


def observe_tick(
    load: MixLoad,
    limits: ShedLimits,
    *,
    late: float,
    cost: float,
    period: float,
    now: float,
    skipped: int = 0,
    ran: int = 1,
) -> MixLoad:
    """The load after a wake-up of the clock ``late`` seconds after its deadline, at ``now``,
    that skipped ``skipped`` ticks and ran ``ran`` (rooms.tick_schedule.plan_tick); ``cost``
    is the CPU time the process's mixing takes per tick (every circle's)."""
    w = limits.smoothing
    late_share = load.late + w * (min(limits.max_late, max(0.0, late) / period) - load.late)
    cost_share = load.cost + w * (max(0.0, cost) / period - load.cost)
    # Smoothed per wake-up: a lone stall (one wake-up that skipped) does not shed.
    due = max(1, skipped + ran)
    skipped_share = load.skipped + w * (skipped / due - load.skipped)
    if not load.shedding:
        shedding = skipped_share > limits.shed_skipped and cost_share > limits.shed_cost
        return MixLoad(late_share, cost_share, shedding=shedding, skipped=skipped_share)
    if skipped:
        return MixLoad(late_share, cost_share, shedding=True, skipped=skipped_share)
    calm_since = now if load.calm_since is None else load.calm_since
    if now - calm_since >= limits.calm_seconds:
        return MixLoad(late_share, cost_share, shedding=False)
    return MixLoad(
        late_share, cost_share, shedding=True, calm_since=calm_since, skipped=skipped_share
    )


def loudest(levels: dict[str, float], current: str | None) -> str | None:
    """The voice to forward while shedding: the one already forwarded while it still
    speaks (a switch costs the listener a jump in the stream), else the loudest (dBov),
    ties broken by seat id so the choice does not depend on arrival order."""
    if not levels:
        return None
    if current in levels:
        return current
    return max(sorted(levels), key=lambda seat_id: levels[seat_id])
