"""The mixer's clock under load: late ticks are caught up as far as the process can afford
them and the rest skipped (never a growing backlog), and a mix that cannot keep up is shed
(the loudest voice forwarded) until the load has been calm."""

from __future__ import annotations

import pytest

from rooms.tick_schedule import (
    GRID_SECONDS,
    MAX_CATCH_UP_PERIODS,
    MixLoad,
    ShedLimits,
    TickPlan,
    loudest,
    next_grid_time,
    observe_tick,
    plan_tick,
)

PERIOD = 0.02


def test_a_tick_a_little_late_runs_and_the_next_catches_up_on_the_grid() -> None:
    assert plan_tick(1.0, 1.0, PERIOD) == TickPlan(0, pytest.approx(1.02))
    late = plan_tick(1.0, 1.045, PERIOD)  # 45 ms late: under three periods
    assert late.skipped == 0
    # The next is due at 1.02 (already past): it runs at once, no frame is lost.
    assert late.next_deadline == pytest.approx(1.02)


def test_a_tick_late_by_three_periods_or_more_skips_them_instead_of_a_burst() -> None:
    plan = plan_tick(1.0, 1.075, PERIOD)  # 75 ms late: three whole ticks missed
    assert plan.skipped == 3
    # The next one is the first grid point after now, not one period after each missed.
    assert plan.next_deadline == pytest.approx(1.08)
    assert plan.next_deadline > 1.075


def test_a_clock_that_keeps_waking_late_never_falls_further_behind() -> None:
    deadline, now, ran, skipped = 0.0, 0.0, 0, 0
    for _ in range(200):
        now = max(now, deadline) + 0.075  # every wake-up 75 ms after its deadline
        plan = plan_tick(deadline, now, PERIOD)
        ran += 1
        skipped += plan.skipped
        deadline = plan.next_deadline
        assert deadline > now  # never a tick already overdue: no back-to-back catch-up
    # Every 20 ms slot of the elapsed time was either run or skipped, none twice.
    assert ran + skipped == pytest.approx(deadline / PERIOD, abs=1)


def test_a_cheap_mix_woken_late_runs_the_ticks_it_missed_and_loses_no_frame() -> None:
    # 100 ms late (five whole ticks missed) and a tick of every circle costs 1 ms of CPU:
    # running the five back to back costs 5 ms of the 100, so none is dropped.
    plan = plan_tick(1.0, 1.1, PERIOD, tick_cost=0.001)
    assert (plan.skipped, plan.catch_up) == (0, 5)
    assert plan.next_deadline == pytest.approx(1.12)


def test_a_costly_mix_woken_late_catches_up_only_what_it_can_afford() -> None:
    # The same 100 ms, but a tick costs 20 ms: two back to back (40 ms, under half of the
    # 100) and the three oldest skipped; the grid is kept either way.
    plan = plan_tick(1.0, 1.1, PERIOD, tick_cost=0.02)
    assert (plan.skipped, plan.catch_up) == (3, 2)
    assert plan.next_deadline == pytest.approx(1.12)


def test_a_very_late_tick_catches_up_at_most_200_ms_and_drops_older_frames() -> None:
    plan = plan_tick(1.0, 1.51, PERIOD, tick_cost=0.0005)  # 25 ticks missed
    assert (plan.skipped, plan.catch_up) == (15, MAX_CATCH_UP_PERIODS)


def test_a_clock_woken_in_clumps_on_a_busy_machine_plays_every_frame_on_the_grid() -> None:
    # Another program has the CPU: the clock wakes only every 150 ms, but the mix is cheap.
    deadline, now, ran, skipped = 0.0, 0.0, 0, 0
    for _ in range(100):
        now = max(now, deadline) + 0.15
        plan = plan_tick(deadline, now, PERIOD, tick_cost=0.002)
        ran += 1 + plan.catch_up
        skipped += plan.skipped
        deadline = plan.next_deadline
        assert deadline > now  # on the grid: nothing left overdue, no growing backlog
    assert skipped == 0
    assert ran == pytest.approx(deadline / PERIOD, abs=1)


def feed(
    load: MixLoad,
    late: float,
    start: float,
    ticks: int,
    cost: float = 0.3,
    *,
    skipped: int = 0,
    ran: int = 1,
) -> tuple[MixLoad, float]:
    """``ticks`` wake-ups ``late`` periods late, each skipping ``skipped`` ticks and running
    ``ran``, a tick taking ``cost`` of a period."""
    now = start
    for _ in range(ticks):
        now += PERIOD * (skipped + ran)
        load = observe_tick(
            load,
            ShedLimits(),
            late=late * PERIOD,
            cost=cost * PERIOD,
            period=PERIOD,
            now=now,
            skipped=skipped,
            ran=ran,
        )
    return load, now


def test_late_ticks_that_are_caught_up_never_shed_the_mix() -> None:
    # Ticks 80 ms late for long, but every missed tick is run (no frame lost): the machine is
    # busy, the mix keeps up. The first shedding rule shed here (by lateness alone).
    load, now = feed(MixLoad(), 4.0, 0.0, 200, ran=5)
    assert not load.shedding
    # A lone stall that skipped ten ticks does not shed either.
    load, now = feed(load, 20.0, now, 1, skipped=10, ran=11)
    assert not load.shedding


def test_the_mix_is_shed_when_ticks_keep_being_skipped_and_the_mix_is_what_costs() -> None:
    # A process starved by others while its mix is cheap: shedding would not help.
    starved, _ = feed(MixLoad(), 12.0, 0.0, 50, cost=0.05, skipped=6, ran=6)
    assert not starved.shedding
    # A costly mix that cannot be caught up: half the frames lost for a few wake-ups: shed.
    load, _ = feed(MixLoad(), 6.0, 0.0, 20, skipped=3, ran=3)
    assert load.shedding


def test_shedding_ends_only_after_no_tick_has_been_skipped_for_a_while() -> None:
    load, now = feed(MixLoad(), 6.0, 0.0, 20, skipped=3, ran=3)
    assert load.shedding
    # Shedding makes the ticks cheap; still skipping (the process is stalled): it goes on.
    load, now = feed(load, 12.0, now, 20, cost=0.0, skipped=2, ran=11)
    assert load.shedding
    load, now = feed(load, 1.0, now, 100, cost=0.0)  # nothing skipped, under calm_seconds yet
    assert load.shedding
    load, now = feed(load, 1.0, now, 60, cost=0.0)
    assert not load.shedding


def test_while_shedding_the_voice_forwarded_stays_until_it_stops_then_the_loudest() -> None:
    assert loudest({}, None) is None
    assert loudest({"a": -40.0, "b": -20.0, "c": -30.0}, None) == "b"
    # Already forwarded and still speaking: kept, even if another is louder now.
    assert loudest({"a": -40.0, "b": -20.0}, "a") == "a"
    # It stopped (not in the speaking voices any more): the loudest of the rest.
    assert loudest({"b": -35.0, "c": -30.0}, "a") == "c"
    # Equal levels: the same choice whatever the order they were seen in.
    assert loudest({"c": -30.0, "b": -30.0}, None) == loudest({"b": -30.0, "c": -30.0}, None)


def test_timers_on_the_grid_meet_whatever_their_period() -> None:
    """Every periodic timer of a process fires on instants of one grid, so timers with
    different periods meet (one wake-up of the loop for all due together)."""
    for now in (0.0, 0.013, 1.999, 12345.678):
        tick = next_grid_time(now)
        assert now < tick <= now + GRID_SECONDS
        every_5 = next_grid_time(now, 5)
        assert now < every_5 <= now + 5 * GRID_SECONDS
        # every 5th instant is an instant of the 20 ms grid too
        assert abs(every_5 / GRID_SECONDS - round(every_5 / GRID_SECONDS)) < 1e-6
    assert next_grid_time(0.02) == pytest.approx(0.04)  # strictly after now
