"""When a series meets: RFC 5545 recurrence rules expanded in the series' own time zone.

Local time is what is kept. A rule is expanded over the *wall-clock* time of the first
occurrence (naive, in the series' zone) and each result is then placed in that zone, so a
weekly 19:00 Europe/Berlin circle is at 19:00 Berlin time on both sides of a daylight-saving
change (18:00 UTC in summer, 19:00 UTC in winter). A wall-clock time that does not exist on
one day (02:30 on the night the clocks go forward) is moved forward by the gap; an ambiguous
one (the night they go back) takes its first, earlier instant.

Everything here is pure: no clock is read, every instant comes in and goes out in UTC.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

MAX_RULE_CHARS = 500
MAX_COUNT = 1000
MAX_INTERVAL = 52
# Years a schedule may reach: far enough for any real circle, near enough that expansion
# stays cheap and every instant (and its zone's offset) is representable.
FIRST_YEAR = 1970
LAST_YEAR = 2200
# Rule parts a circle's schedule may use. BYHOUR/BYMINUTE/BYSECOND may only repeat the
# start's own wall time (a circle meets once a day at the most); BYYEARDAY, BYWEEKNO and
# the sub-daily frequencies make no circle and are refused.
ALLOWED_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"}
    | {"BYHOUR", "BYMINUTE", "BYSECOND"}
)
# Expansion never walks further than this, whatever the rule says (an endless weekly rule
# is 52 occurrences a year; a lookup near "now" must stay cheap).
MAX_EXPANSION = 5000
ALLOWED_FREQUENCIES = {DAILY: "DAILY", WEEKLY: "WEEKLY", MONTHLY: "MONTHLY", YEARLY: "YEARLY"}

_UNTIL = re.compile(r"(?:^|;)UNTIL=([0-9TZ]+)(?=;|$)", re.IGNORECASE)
_PART = re.compile(r"^[A-Z]+=[A-Z0-9,+\-]+$")


class RecurrenceError(ValueError):
    """A rule or schedule that cannot be used; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class SeriesSchedule:
    """When a series meets.

    ``first_start`` is the first occurrence (UTC); its wall-clock time in ``timezone`` is the
    time every occurrence keeps. ``rule`` is an RRULE value without the ``RRULE:`` prefix, or
    None for a one-off. ``ends_on`` (a local date, inclusive) ends the series early.
    """

    first_start: datetime
    timezone: str
    duration_minutes: int
    rule: str | None = None
    ends_on: date | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def local_first_start(self) -> datetime:
        return self.first_start.astimezone(self.zone).replace(tzinfo=None)


def normalise_rule(text: str) -> str:
    """The rule as stored: upper case, no ``RRULE:`` prefix, no blanks. Not yet validated."""
    rule = "".join(text.split()).upper()
    return rule.removeprefix("RRULE:")


def validate(schedule: SeriesSchedule) -> None:
    """Raise RecurrenceError (naming ``rrule`` or ``ends_on``) unless the schedule is usable.

    Usable means: a rule dateutil understands, of a frequency a circle can have (daily at the
    most often), with no DTSTART of its own (the first start is), occurrences that do not
    overlap, and at least one occurrence.
    """
    check_year("starts_at", schedule.first_start)
    if schedule.ends_on is not None:
        if schedule.ends_on.year > LAST_YEAR:
            raise RecurrenceError("ends_on", f"'ends_on' must be before the year {LAST_YEAR + 1}.")
        if schedule.ends_on < schedule.local_first_start.date():
            raise RecurrenceError("ends_on", "'ends_on' is before the first occurrence.")
    if schedule.rule is not None:
        _build(schedule)  # raises on a bad rule
    if schedule.rule is None:
        return
    first = _first_probed(schedule)
    if first is None:
        raise RecurrenceError("rrule", "The rule gives no occurrence at all.")
    if first != _shift(schedule.local_first_start, _probe_shift(schedule)):
        # RFC 5545 counts DTSTART as the first occurrence even when the rule would not give
        # it; dateutil does not. Only a start the rule itself gives keeps the two the same.
        raise RecurrenceError(
            "starts_at",
            "'starts_at' must be a meeting of the rule (its month, day, weekday and time).",
        )
    starts = _probe_starts(schedule, limit=12)
    duration = timedelta(minutes=schedule.duration_minutes)
    for earlier, later in itertools.pairwise(starts):
        if _to_utc(later, schedule.zone) - _to_utc(earlier, schedule.zone) < duration:
            raise RecurrenceError(
                "rrule", "Occurrences would overlap: the rule repeats sooner than they last."
            )
        if later - earlier > MAX_GAP:
            raise RecurrenceError("rrule", "The rule leaves more than 8 years between meetings.")
    ends = "COUNT=" in schedule.rule or "UNTIL=" in schedule.rule or schedule.ends_on is not None
    if len(starts) == 1 and not ends:
        raise RecurrenceError("rrule", "The rule never repeats; leave it out for a one-off.")


# Validation expands the rule far in the future, where dateutil's walk is short. dateutil
# gives up only after the year 9999 (datetime.MAXYEAR): a rule that matches nothing walks
# every day until then (~3 s for a DAILY rule from 2026). The Gregorian calendar repeats
# exactly every 400 years (146097 days, 20871 weeks), and a rule's periods count from its
# start, so the same schedule moved forward by whole 400-year cycles gives the same starts
# moved by as much. Moved to within PROBE_YEARS + 400 of 9999, no walk is longer than that.
CALENDAR_CYCLE_YEARS = 400
PROBE_LAST_YEAR = 9998  # a year spare: offsets must not push an instant past 9999
PROBE_YEARS = 20
MAX_GAP = timedelta(days=8 * 366 + 1)  # 29 February, across a century that skips it


def _probe_shift(schedule: SeriesSchedule) -> int:
    year = schedule.local_first_start.year
    cycles = (PROBE_LAST_YEAR - PROBE_YEARS - year) // CALENDAR_CYCLE_YEARS
    return max(cycles, 0) * CALENDAR_CYCLE_YEARS


def _shift(local: datetime, years: int) -> datetime:
    return local.replace(year=local.year + years)


def _first_probed(schedule: SeriesSchedule) -> datetime | None:
    """The rule's first start on or after the (moved) first start, or None.

    A DAILY or WEEKLY rule is walked a day or a week at a time; a date filter it never meets
    (BYMONTH=2;BYMONTHDAY=30) would walk 400 years of days. The same filters in a YEARLY
    rule pick the same days a year at a time, and the first start is always in phase with
    its own INTERVAL, so that rule answers the question in at most 400 steps.
    """
    assert schedule.rule is not None
    years = _probe_shift(schedule)
    first = _shift(schedule.local_first_start, years)
    rule = _build(schedule, shift_years=years)
    if rule._freq in (DAILY, WEEKLY) and rule._bysetpos is None:
        weekdays = rule._byweekday or ()
        rule = rrule(
            YEARLY,
            dtstart=first,
            bymonth=rule._bymonth,
            bymonthday=(rule._bymonthday or ()) + (rule._bynmonthday or ()) or None,
            byweekday=tuple(weekdays) or None,
            byhour=first.hour,
            byminute=first.minute,
            bysecond=first.second,
        )
    found: datetime | None = next(iter(rule), None)
    return found


def _probe_starts(schedule: SeriesSchedule, *, limit: int) -> list[datetime]:
    """The first ``limit`` wall-clock starts, moved forward by _probe_shift years."""
    years = _probe_shift(schedule)
    first = _shift(schedule.local_first_start, years)
    if schedule.rule is None:
        return [first]
    found: list[datetime] = []
    for start in _build(schedule, shift_years=years):
        if start.year > PROBE_LAST_YEAR or len(found) >= limit:
            break
        found.append(start)
    return found


def _build(schedule: SeriesSchedule, *, shift_years: int = 0) -> rrule:
    """The schedule's rule for dateutil, over naive local times (moved by ``shift_years``)."""
    assert schedule.rule is not None
    text = schedule.rule
    if not text or len(text) > MAX_RULE_CHARS:
        raise RecurrenceError("rrule", f"'rrule' must be 1 to {MAX_RULE_CHARS} characters.")
    parts = text.split(";")
    if not all(_PART.match(part) for part in parts):
        raise RecurrenceError("rrule", "'rrule' must be NAME=VALUE pairs separated by ';'.")
    names = [part.split("=", 1)[0] for part in parts]
    if len(set(names)) != len(names):
        raise RecurrenceError("rrule", "'rrule' names a part twice.")
    if "DTSTART" in names:
        raise RecurrenceError("rrule", "'rrule' must not carry DTSTART; 'starts_at' is the start.")
    unknown = [name for name in names if name not in ALLOWED_PARTS]
    if unknown:
        raise RecurrenceError("rrule", f"'rrule' may not use {unknown[0]} for a circle.")
    values = dict(part.split("=", 1) for part in parts)
    if "BYSETPOS" in values and values.get("FREQ") not in ("MONTHLY", "YEARLY"):
        raise RecurrenceError("rrule", "BYSETPOS is for MONTHLY and YEARLY rules only.")
    if values.get("FREQ") in ("DAILY", "WEEKLY") and any(
        not day.isalpha() for day in values.get("BYDAY", "").split(",") if day
    ):
        raise RecurrenceError(
            "rrule", "BYDAY with a number (1MO, -1FR) is for MONTHLY and YEARLY rules only."
        )
    _check_interval(values.get("INTERVAL"))
    _check_time_parts(values, schedule.local_first_start)
    if "COUNT" in names and "UNTIL" in names:
        raise RecurrenceError("rrule", "'rrule' may have COUNT or UNTIL, not both.")
    until = _until(text, schedule.zone)
    if "UNTIL" in names and until is None:
        raise RecurrenceError("rrule", "UNTIL is not a valid date or date-time.")
    without_until = _UNTIL.sub("", text).strip(";")
    try:
        parsed = rrulestr(without_until, dtstart=_shift(schedule.local_first_start, shift_years))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        raise RecurrenceError("rrule", "'rrule' is not a valid RFC 5545 RRULE.") from None
    if not isinstance(parsed, rrule):
        raise RecurrenceError("rrule", "'rrule' must be a single RRULE.")
    if parsed._freq not in ALLOWED_FREQUENCIES:
        raise RecurrenceError("rrule", "'rrule' must repeat DAILY, WEEKLY, MONTHLY or YEARLY.")
    if parsed._count is not None and not 1 <= parsed._count <= MAX_COUNT:
        raise RecurrenceError("rrule", f"COUNT must be from 1 to {MAX_COUNT}.")
    if until is not None:
        if until.year > LAST_YEAR:
            raise RecurrenceError("rrule", f"UNTIL must be before the year {LAST_YEAR + 1}.")
        if until < schedule.local_first_start:
            raise RecurrenceError("rrule", "UNTIL is before the first occurrence.")
        parsed = parsed.replace(until=_shift(until, shift_years))
    if schedule.ends_on is not None:
        last = _shift(datetime.combine(schedule.ends_on, time.max), shift_years)
        if parsed._until is None or parsed._until > last:
            parsed = parsed.replace(until=last)
    return parsed


def _check_interval(value: str | None) -> None:
    if value is None:
        return
    if not value.isdigit() or not 1 <= int(value) <= MAX_INTERVAL:
        raise RecurrenceError("rrule", f"INTERVAL must be a whole number from 1 to {MAX_INTERVAL}.")


def _check_time_parts(values: dict[str, str], first: datetime) -> None:
    """BYHOUR, BYMINUTE and BYSECOND may only name the start's own time, once."""
    own = {"BYHOUR": first.hour, "BYMINUTE": first.minute, "BYSECOND": first.second}
    for name, expected in own.items():
        if name not in values:
            continue
        value = values[name]
        if not value.isdigit() or int(value) != expected:
            raise RecurrenceError(
                "rrule",
                f"{name} may only repeat the start's own time ({expected}): "
                "a circle meets once a day at the most, at the time 'starts_at' gives.",
            )


def _until(text: str, zone: ZoneInfo) -> datetime | None:
    """UNTIL as a naive local time in ``zone`` (RFC 5545 allows a date, a local or a UTC time)."""
    found = _UNTIL.search(text)
    if found is None:
        return None
    value = found.group(1).upper()
    try:
        if len(value) == 8:
            return datetime.combine(datetime.strptime(value, "%Y%m%d").date(), time.max)
        if value.endswith("Z"):
            instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return instant.astimezone(zone).replace(tzinfo=None)
        return datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError:
        raise RecurrenceError("rrule", "UNTIL is not a valid date or date-time.") from None


def check_year(field: str, instant: datetime) -> None:
    """Refuse an instant outside the years a schedule may reach (FIRST_YEAR..LAST_YEAR)."""
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise RecurrenceError(field, f"'{field}' must be in the years {FIRST_YEAR} to {LAST_YEAR}.")


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time takes its first instant; a missing one moves forward.
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def starts_between(schedule: SeriesSchedule, after: datetime, before: datetime) -> list[datetime]:
    """Original starts (UTC) with ``after <= start < before``, in order."""
    zone = schedule.zone
    if schedule.rule is None:
        first = schedule.first_start
        return [first] if after <= first < before else []
    # Widen by a day on each side: offsets move local times by at most 26 hours.
    local_after = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    local_before = before.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    result: list[datetime] = []
    rule = _near(_build(schedule), schedule.local_first_start, local_after)
    for local in rule.between(local_after, local_before, inc=True):
        instant = _to_utc(local, zone)
        if after <= instant < before:
            result.append(instant)
        if len(result) >= MAX_EXPANSION:
            break
    return result


def _near(rule: rrule, first: datetime, local_after: datetime) -> rrule:
    """The same rule anchored at a start near ``local_after`` instead of the first one.

    dateutil walks every period from DTSTART, so a daily series begun years ago would cost
    thousands of steps on every lookup. A DAILY or WEEKLY rule without COUNT repeats exactly
    every INTERVAL days or weeks, so moving DTSTART forward by whole periods changes nothing
    it gives after the new anchor. (MONTHLY and YEARLY walk 12 or 1 steps a year: cheap.)
    """
    if rule._count is not None or rule._freq not in (DAILY, WEEKLY):
        return rule
    period_days = rule._interval * (1 if rule._freq == DAILY else 7)
    periods = (local_after - first).days // period_days - 1
    if periods <= 0:
        return rule
    return rule.replace(dtstart=first + timedelta(days=periods * period_days))


def is_start(schedule: SeriesSchedule, instant: datetime) -> bool:
    """True when ``instant`` (UTC) is one of the series' original starts."""
    return instant in starts_between(schedule, instant, instant + timedelta(seconds=1))


def next_start(
    schedule: SeriesSchedule, after: datetime, *, horizon_days: int = 400
) -> datetime | None:
    """The first original start at or after ``after`` within ``horizon_days``, or None."""
    found = starts_between(schedule, after, after + timedelta(days=horizon_days))
    return found[0] if found else None


def last_instant(schedule: SeriesSchedule) -> datetime | None:
    """The latest instant (UTC, whole seconds) a start may have: UNTIL and ``ends_on``
    combined, or None when neither bounds the series.

    RFC 5545 wants UNTIL in UTC when DTSTART carries a TZID; this is that value.
    """
    candidates: list[datetime] = []
    if schedule.rule is not None:
        until = _until(schedule.rule, schedule.zone)
        if until is not None:
            candidates.append(until)
    if schedule.ends_on is not None:
        candidates.append(datetime.combine(schedule.ends_on, time.max))
    if not candidates:
        return None
    return _to_utc(min(candidates), schedule.zone).replace(microsecond=0)
