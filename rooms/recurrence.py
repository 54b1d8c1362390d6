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
    if schedule.rule is not None:
        _build(schedule)  # raises on a bad rule
    if schedule.ends_on is not None and schedule.ends_on < schedule.local_first_start.date():
        raise RecurrenceError("ends_on", "'ends_on' is before the first occurrence.")
    starts = local_starts(schedule, limit=3)
    if not starts:
        raise RecurrenceError("rrule", "The rule gives no occurrence at all.")
    if schedule.rule is not None:
        many = local_starts(schedule, limit=60)
        duration = timedelta(minutes=schedule.duration_minutes)
        for earlier, later in itertools.pairwise(many):
            if _to_utc(later, schedule.zone) - _to_utc(earlier, schedule.zone) < duration:
                raise RecurrenceError(
                    "rrule", "Occurrences would overlap: the rule repeats sooner than they last."
                )


def _build(schedule: SeriesSchedule) -> rrule:
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
    if "COUNT" in names and "UNTIL" in names:
        raise RecurrenceError("rrule", "'rrule' may have COUNT or UNTIL, not both.")
    until = _until(text, schedule.zone)
    if "UNTIL" in names and until is None:
        raise RecurrenceError("rrule", "UNTIL is not a valid date or date-time.")
    without_until = _UNTIL.sub("", text).strip(";")
    try:
        parsed = rrulestr(without_until, dtstart=schedule.local_first_start)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        raise RecurrenceError("rrule", "'rrule' is not a valid RFC 5545 RRULE.") from None
    if not isinstance(parsed, rrule):
        raise RecurrenceError("rrule", "'rrule' must be a single RRULE.")
    if parsed._freq not in ALLOWED_FREQUENCIES:
        raise RecurrenceError("rrule", "'rrule' must repeat DAILY, WEEKLY, MONTHLY or YEARLY.")
    if parsed._count is not None and not 1 <= parsed._count <= MAX_COUNT:
        raise RecurrenceError("rrule", f"COUNT must be from 1 to {MAX_COUNT}.")
    if until is not None:
        if until < schedule.local_first_start:
            raise RecurrenceError("rrule", "UNTIL is before the first occurrence.")
        parsed = parsed.replace(until=until)
    if schedule.ends_on is not None:
        last = datetime.combine(schedule.ends_on, time.max)
        if parsed._until is None or parsed._until > last:
            parsed = parsed.replace(until=last)
    return parsed


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


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time takes its first instant; a missing one moves forward.
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_starts(schedule: SeriesSchedule, *, limit: int) -> list[datetime]:
    """The first ``limit`` wall-clock starts (naive, local)."""
    if schedule.rule is None:
        return [schedule.local_first_start][:limit]
    found: list[datetime] = []
    for start in _build(schedule):
        found.append(start)
        if len(found) >= min(limit, MAX_EXPANSION):
            break
    return found


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
    for local in _build(schedule).between(local_after, local_before, inc=True):
        instant = _to_utc(local, zone)
        if after <= instant < before:
            result.append(instant)
        if len(result) >= MAX_EXPANSION:
            break
    return result


def is_start(schedule: SeriesSchedule, instant: datetime) -> bool:
    """True when ``instant`` (UTC) is one of the series' original starts."""
    return instant in starts_between(schedule, instant, instant + timedelta(seconds=1))


def next_start(
    schedule: SeriesSchedule, after: datetime, *, horizon_days: int = 400
) -> datetime | None:
    """The first original start at or after ``after`` within ``horizon_days``, or None."""
    found = starts_between(schedule, after, after + timedelta(days=horizon_days))
    return found[0] if found else None
