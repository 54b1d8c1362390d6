"""Recurrence keeps local time across daylight-saving changes, in both hemispheres."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rooms.lifecycle import Occurrence, Override, Windows, clashing_neighbour, occurrences_between
from rooms.recurrence import (
    RecurrenceError,
    SeriesSchedule,
    next_start,
    starts_between,
    validate,
)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def wall_times(starts: list[datetime], zone: str) -> list[str]:
    return [s.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %a %H:%M") for s in starts]


# (zone, first start (local), a range that crosses a DST change, UTC hours seen on each side)
DST_CASES = {
    # Berlin: summer time ends 2026-10-25 (UTC+2 -> UTC+1).
    "Europe/Berlin autumn": ("Europe/Berlin", (2026, 10, 13, 19, 0), {17, 18}),
    # Berlin: summer time starts 2027-03-28 (UTC+1 -> UTC+2).
    "Europe/Berlin spring": ("Europe/Berlin", (2027, 3, 16, 19, 0), {18, 17}),
    # New York: standard time from 2026-11-01 (UTC-4 -> UTC-5).
    "America/New_York": ("America/New_York", (2026, 10, 20, 19, 0), {23, 0}),
    # Sydney (southern hemisphere): summer time starts 2026-10-04 (UTC+10 -> UTC+11).
    "Australia/Sydney": ("Australia/Sydney", (2026, 9, 22, 19, 0), {9, 8}),
}


@pytest.mark.parametrize(("zone", "first", "utc_hours"), DST_CASES.values(), ids=DST_CASES)
def test_weekly_series_keeps_its_local_time_across_a_dst_change(
    zone: str, first: tuple[int, ...], utc_hours: set[int]
) -> None:
    schedule = SeriesSchedule(
        first_start=local(zone, *first), timezone=zone, duration_minutes=90, rule="FREQ=WEEKLY"
    )
    starts = starts_between(
        schedule, schedule.first_start, schedule.first_start + timedelta(weeks=4, hours=-2)
    )

    assert len(starts) == 4
    assert {s.astimezone(ZoneInfo(zone)).strftime("%a %H:%M") for s in starts} == {
        schedule.first_start.astimezone(ZoneInfo(zone)).strftime("%a %H:%M")
    }
    # The instant moves in UTC: that is the DST change, seen from outside.
    assert {s.hour for s in starts} == utc_hours


def test_monthly_nth_weekday_follows_the_calendar() -> None:
    schedule = SeriesSchedule(
        first_start=local("Europe/Berlin", 2026, 12, 6, 10, 0),
        timezone="Europe/Berlin",
        duration_minutes=60,
        rule="FREQ=MONTHLY;BYDAY=1SU",
    )
    starts = starts_between(schedule, schedule.first_start, local("Europe/Berlin", 2027, 5, 1, 0))

    assert wall_times(starts, "Europe/Berlin") == [
        "2026-12-06 Sun 10:00",
        "2027-01-03 Sun 10:00",
        "2027-02-07 Sun 10:00",
        "2027-03-07 Sun 10:00",
        "2027-04-04 Sun 10:00",
    ]


def test_count_until_and_ends_on_end_the_series() -> None:
    first = local("America/New_York", 2026, 12, 1, 19, 0)
    base = SeriesSchedule(first, "America/New_York", 60, "FREQ=WEEKLY;COUNT=3")
    later = first + timedelta(days=365)
    assert len(starts_between(base, first, later)) == 3

    until = SeriesSchedule(first, "America/New_York", 60, "FREQ=WEEKLY;UNTIL=20261215T235959Z")
    assert wall_times(starts_between(until, first, later), "America/New_York") == [
        "2026-12-01 Tue 19:00",
        "2026-12-08 Tue 19:00",
    ]  # 15 Dec 19:00 New York is 16 Dec 00:00 UTC: after UNTIL

    ends_on = SeriesSchedule(first, "America/New_York", 60, "FREQ=WEEKLY", date(2026, 12, 15))
    assert len(starts_between(ends_on, first, later)) == 3


def test_a_time_missing_on_the_spring_forward_night_moves_forward_by_the_gap() -> None:
    schedule = SeriesSchedule(
        local("Europe/Berlin", 2027, 3, 27, 2, 30), "Europe/Berlin", 30, "FREQ=DAILY;COUNT=3"
    )
    starts = starts_between(schedule, schedule.first_start, local("Europe/Berlin", 2027, 4, 1, 0))

    assert wall_times(starts, "Europe/Berlin") == [
        "2027-03-27 Sat 02:30",
        "2027-03-28 Sun 03:30",
        "2027-03-29 Mon 02:30",
    ]


def test_next_start_skips_what_already_began() -> None:
    schedule = SeriesSchedule(
        local("Europe/Berlin", 2026, 12, 1, 19, 0), "Europe/Berlin", 90, "FREQ=WEEKLY;BYDAY=TU"
    )
    assert next_start(schedule, local("Europe/Berlin", 2026, 12, 1, 19, 1)) == local(
        "Europe/Berlin", 2026, 12, 8, 19, 0
    )


def test_cancel_and_move_touch_one_occurrence_only() -> None:
    schedule = SeriesSchedule(
        local("Europe/Berlin", 2026, 12, 1, 19, 0), "Europe/Berlin", 90, "FREQ=WEEKLY"
    )
    second = local("Europe/Berlin", 2026, 12, 8, 19, 0)
    third = local("Europe/Berlin", 2026, 12, 15, 19, 0)
    moved_to = local("Europe/Berlin", 2026, 12, 17, 18, 0)
    overrides = {
        second: Override(starts_at=second, duration_minutes=90, cancelled=True),
        third: Override(starts_at=moved_to, duration_minutes=90, cancelled=False),
    }
    found = occurrences_between(
        "s1", schedule, overrides, schedule.first_start, local("Europe/Berlin", 2026, 12, 30, 0)
    )

    assert [(wall_times([o.starts_at], "Europe/Berlin")[0], o.cancelled) for o in found] == [
        ("2026-12-01 Tue 19:00", False),
        ("2026-12-08 Tue 19:00", True),
        ("2026-12-17 Thu 18:00", False),
        ("2026-12-22 Tue 19:00", False),
        ("2026-12-29 Tue 19:00", False),
    ]
    assert found[2].original_start == third and found[2].moved
    # Moved out of a range, it is not in it; its original slot stays empty.
    week_of_the_15th = occurrences_between("s1", schedule, overrides, third, moved_to)
    assert week_of_the_15th == []


BAD_RULES = {
    "garbage": "EVERY TUESDAY",
    "unknown frequency": "FREQ=FORTNIGHTLY",
    "too often": "FREQ=HOURLY",
    "minutely": "FREQ=MINUTELY",
    "dtstart inside": "DTSTART=20261201T190000;FREQ=WEEKLY",
    "count and until": "FREQ=WEEKLY;COUNT=2;UNTIL=20270101",
    "count zero": "FREQ=WEEKLY;COUNT=0",
    "until before start": "FREQ=WEEKLY;UNTIL=20201231",
    "bad until": "FREQ=WEEKLY;UNTIL=2027-01-01",
    "overlapping": "FREQ=DAILY;BYHOUR=19,20",
    "no occurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "part twice": "FREQ=WEEKLY;FREQ=DAILY",
    "bad day": "FREQ=WEEKLY;BYDAY=XX",
}


@pytest.mark.parametrize("rule", BAD_RULES.values(), ids=BAD_RULES)
def test_unusable_rules_are_refused_naming_rrule(rule: str) -> None:
    schedule = SeriesSchedule(local("Europe/Berlin", 2026, 12, 1, 19, 0), "Europe/Berlin", 90, rule)
    with pytest.raises(RecurrenceError) as refused:
        validate(schedule)
    assert refused.value.field == "rrule"


def test_an_end_date_before_the_start_is_refused_naming_ends_on() -> None:
    schedule = SeriesSchedule(
        local("Europe/Berlin", 2026, 12, 1, 19, 0),
        "Europe/Berlin",
        90,
        "FREQ=WEEKLY",
        date(2026, 11, 30),
    )
    with pytest.raises(RecurrenceError) as refused:
        validate(schedule)
    assert refused.value.field == "ends_on"


def test_windows_that_touch_do_not_clash_but_overlapping_ones_do() -> None:
    windows = Windows(lobby_minutes=30, grace_minutes=15)
    base = datetime(2026, 10, 13, 17, 0, tzinfo=UTC)
    first = Occurrence("s", base, base, 60)  # window 16:30 - 18:15
    later = base + timedelta(hours=2)
    touching = Occurrence("s", later, later - timedelta(minutes=15), 60)  # opens 18:15
    overlapping = Occurrence("s", later, later - timedelta(minutes=16), 60)  # opens 18:14
    assert clashing_neighbour(touching, [first], windows) is None
    assert clashing_neighbour(overlapping, [first], windows) == first
    cancelled = Occurrence("s", base, base, 60, cancelled=True)
    assert clashing_neighbour(overlapping, [cancelled], windows) is None
    # An occurrence never clashes with itself (where it stood before the move).
    assert clashing_neighbour(first, [first], windows) is None


def test_a_live_circle_and_its_occurrence_share_one_time_window() -> None:
    from rooms.model import Circle
    from rooms.window import TimeWindow

    start = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    occurrence = Occurrence("s1", start, start, 90, extended_minutes=20)
    circle = Circle(
        "c1", "t", start, 90, "UTC", lobby_minutes=10, grace_minutes=5, extended_minutes=20
    )
    window = TimeWindow(start, 90, 10, 5, 20)

    assert occurrence.window(Windows(10, 5)) == circle.window == window
    assert (window.opens_at, window.closes_at) == (
        start - timedelta(minutes=10),
        start + timedelta(minutes=90 + 5 + 20),
    )
    assert window.contains(window.opens_at) and not window.contains(window.closes_at)
