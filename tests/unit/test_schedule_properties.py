"""Property tests over generated schedules: three independent readings agree, work is bounded.

For any rule a circle may have, in any of several zones (DST north and south, half-hour
offsets, none): the API's expansion (rooms.recurrence) == the `.ics` feed expanded by
recurring_ical_events == dateutil run on zone-aware datetimes. And for any body at all,
parsing a series either works or is a 422 (never another exception, so never a 500), after
a bounded number of dateutil steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events
from dateutil import rrule as dateutil_rrule
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from rooms.recurrence import RecurrenceError, SeriesSchedule, starts_between, validate
from server.errors import ApiError
from server.feeds import calendar
from server.series_api import parse_series
from server.storage.series import Series, SeriesFields

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "UTC",
]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
EPOCH = datetime(2026, 1, 1)


@st.composite
def schedules(draw: st.DrawFn) -> SeriesSchedule:
    zone = draw(st.sampled_from(ZONES))
    local = EPOCH + timedelta(
        days=draw(st.integers(0, 3 * 365)),
        hours=draw(st.integers(0, 23)),
        minutes=draw(st.sampled_from([0, 15, 30, 45])),
    )
    first = local.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)
    # The wall time the zone really shows at that instant (a gap time moves forward).
    local = first.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 3))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    own_day = DAYS[local.weekday()]
    if freq == "WEEKLY":
        days = draw(st.sets(st.sampled_from(DAYS), max_size=3)) | {own_day}
        parts.append("BYDAY=" + ",".join(sorted(days, key=DAYS.index)))
    if freq == "MONTHLY" and draw(st.booleans()):
        parts.append(f"BYDAY={(local.day - 1) // 7 + 1}{own_day}")
    end = draw(st.sampled_from(["none", "count", "until", "ends_on"]))
    ends_on = None
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif end == "until":
        until = local.date() + timedelta(days=draw(st.integers(0, 300)))
        parts.append(f"UNTIL={until:%Y%m%d}")
    elif end == "ends_on":
        ends_on = local.date() + timedelta(days=draw(st.integers(0, 300)))
    return SeriesSchedule(first, zone, 30, ";".join(parts), ends_on)


def dateutil_starts(schedule: SeriesSchedule, after: datetime, before: datetime) -> set[datetime]:
    """dateutil on zone-aware datetimes: the wall time is kept, the zone gives the instant."""
    zone = schedule.zone
    assert schedule.rule is not None
    parts = dict(part.split("=", 1) for part in schedule.rule.split(";"))
    # The generated UNTIL is a date: the series' last local day, inclusive (as ends_on).
    last_day = [schedule.ends_on] if schedule.ends_on else []
    if "UNTIL" in parts:
        last_day.append(datetime.strptime(parts.pop("UNTIL"), "%Y%m%d").date())
    text = ";".join(f"{name}={value}" for name, value in parts.items())
    rule = rrulestr(text, dtstart=schedule.first_start.astimezone(zone))
    if last_day:
        rule = rule.replace(
            until=datetime.combine(min(last_day), datetime.max.time()).replace(tzinfo=zone)
        )
    return {s.astimezone(UTC) for s in rule.between(after, before, inc=True) if s < before}


def feed_starts(schedule: SeriesSchedule, after: datetime, before: datetime) -> set[datetime]:
    fields = SeriesFields(
        title="t",
        description="",
        first_start=schedule.first_start,
        timezone=schedule.timezone,
        duration_minutes=schedule.duration_minutes,
        rrule=schedule.rule,
        ends_on=schedule.ends_on,
        capacity=30,
        lobby_minutes=0,
        grace_minutes=0,
        public=True,
        attendance_names_visible=False,
    )
    series = Series("s1", fields, "join", (), EPOCH.replace(tzinfo=UTC), EPOCH.replace(tzinfo=UTC))
    parsed = Calendar.from_ical(calendar([(series, {})], "https://hearth.example"))
    return {
        e.decoded("dtstart").astimezone(UTC)
        for e in recurring_ical_events.of(parsed).between(after, before)
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(), offset_days=st.integers(0, 500))
def test_api_expansion_equals_the_feed_read_by_recurring_ical_events_and_dateutil(
    schedule: SeriesSchedule, offset_days: int
) -> None:
    try:
        validate(schedule)
    except RecurrenceError as error:
        # Only a fall-back night's second wall time is refused among these rules.
        assert error.field == "starts_at", error.message
        return
    after = schedule.first_start + timedelta(days=offset_days) - timedelta(days=3)
    before = after + timedelta(days=120)

    api = set(starts_between(schedule, after, before))

    assert api == dateutil_starts(schedule, after, before)
    assert api == feed_starts(schedule, after, before)


# --- no 500, bounded work --------------------------------------------------------------------


@contextmanager
def counting_dateutil_steps() -> Iterator[list[int]]:
    """Count the periods dateutil walks (one day-set per period), across every rule."""
    steps = [0]
    info = dateutil_rrule._iterinfo
    originals = {name: getattr(info, name) for name in ("ydayset", "mdayset", "wdayset", "ddayset")}

    def counting(original: Any) -> Any:
        def wrapper(self: Any, *args: Any) -> Any:
            steps[0] += 1
            return original(self, *args)

        return wrapper

    for name, original in originals.items():
        setattr(info, name, counting(original))
    try:
        yield steps
    finally:
        for name, original in originals.items():
            setattr(info, name, original)


# A year's worth of days for 400 years (the probe's longest walk), plus the real expansion.
MAX_STEPS = 400 * 366 + 20_000

rule_parts = st.lists(
    st.sampled_from(
        [
            "FREQ=DAILY",
            "FREQ=WEEKLY",
            "FREQ=MONTHLY",
            "FREQ=YEARLY",
            "FREQ=HOURLY",
            "INTERVAL=-1",
            "INTERVAL=0",
            "INTERVAL=52",
            "INTERVAL=99999",
            "COUNT=1000",
            "COUNT=0",
            "UNTIL=99991231",
            "UNTIL=00010101",
            "UNTIL=20270101T000000Z",
            "BYMONTH=2",
            "BYMONTHDAY=30",
            "BYMONTHDAY=31",
            "BYMONTHDAY=-1",
            "BYDAY=TU",
            "BYDAY=1SU",
            "BYDAY=5FR",
            "BYSETPOS=2",
            "BYSETPOS=-1",
            "BYHOUR=19",
            "BYHOUR=19,20",
            "BYMINUTE=0,30",
            "BYYEARDAY=366",
            "BYWEEKNO=53",
            "WKST=SU",
        ]
    ),
    min_size=1,
    max_size=5,
)
starts = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-05:00",
            "9999-12-31T00:00:00Z",
            "1969-12-31T23:30:00Z",
            "2200-12-31T23:00:00Z",
            "2026-10-25T02:30:00+01:00",
            "2026-03-29T02:30:00+01:00",
            "2026-12-01T19:00:00+01:00",
            "2026-12-01T19:00:00Z",
        ]
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda d: d.replace(tzinfo=UTC).isoformat()
    ),
    st.text(max_size=30),
)
bodies = st.fixed_dictionaries(
    {
        "title": st.one_of(st.text(max_size=210), st.integers()),
        "starts_at": starts,
        "timezone": st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Mars/Base"]),
        "duration_minutes": st.one_of(st.integers(-5, 2000), st.booleans()),
    },
    optional={
        "rrule": st.one_of(st.none(), rule_parts.map(";".join), st.text(max_size=40)),
        "ends_on": st.one_of(
            st.none(),
            st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(str),
            st.text(max_size=12),
        ),
        "capacity": st.one_of(st.none(), st.integers(-2, 2000)),
        "lobby_minutes": st.integers(-1, 300),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_any_series_body_is_taken_or_refused_with_a_422_after_bounded_work(
    body: dict[str, Any],
) -> None:
    with counting_dateutil_steps() as steps:
        try:
            fields = parse_series(body)
        except ApiError as error:
            assert (error.status, error.code) == (422, "invalid_field")
            assert error.field is not None
        else:
            # What was taken expands near any date cheaply too.
            now = datetime(2026, 12, 2, tzinfo=UTC)
            starts_between(fields.schedule, now, now + timedelta(days=400))
    assert steps[0] <= MAX_STEPS, (body, steps[0])
