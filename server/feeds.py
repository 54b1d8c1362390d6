"""Public feeds of public series: iCalendar (RFC 5545) and Meeting Guide JSON.

Only series an admin marked ``public`` appear, and for those the join link is public too
(it is what a directory lists). No attendance, no host link, nothing about people.

- ``/api/v1/feeds/calendar.ics``: every public series, one VEVENT each with its RRULE in its
  own time zone (VTIMEZONE included), EXDATE for cancelled occurrences and an overriding
  VEVENT (RECURRENCE-ID) for each moved one.
- ``/api/v1/feeds/series/{id}.ics``: the same for one public series.
- ``/api/v1/feeds/meeting-guide.json``: the Meeting Guide format (code4recovery spec) used by
  meeting directories; it describes weekly meetings, so only series that meet every week and
  are running (begun, not over) are listed, one entry each with ``day`` listing its weekdays
  and ``conference_url`` = the join link.

One series that cannot be rendered is left out (and logged); it never takes a feed down.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from icalendar import Calendar, Event, vRecur
from pydantic import ValidationError

from rooms.lifecycle import Override
from rooms.recurrence import FIRST_YEAR, LAST_YEAR, last_instant, next_start
from server.api import links_are_configured, public_base
from server.api_models import MeetingGuideMeeting
from server.appkeys import CLOCK, DATABASE
from server.errors import NOT_FOUND, ApiError
from server.openapi import API_BASE
from server.storage.series import Series, SeriesStore

log = logging.getLogger(__name__)

# A series that begins within this lead is listed already (directories show the week ahead).
LISTING_LEAD = timedelta(days=7)
EARLIEST = date(FIRST_YEAR, 1, 1)
PRODID = "-//Hearth//Support circles//EN"
WEEKDAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # Meeting Guide: 0 = Sunday
PYTHON_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # datetime.weekday()


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone)


def _rule(series: Series) -> vRecur | None:
    """The stored rule with UNTIL in UTC (RFC 5545 with a TZID start), ends_on included."""
    fields = series.fields
    if fields.rrule is None:
        return None
    rule: vRecur = vRecur.from_ical(fields.rrule)
    until = last_instant(fields.schedule)
    if until is not None:
        rule["UNTIL"] = [until]
    return rule


def series_events(series: Series, overrides: dict[datetime, Override], base: str) -> list[Event]:
    fields = series.fields
    zone = ZoneInfo(fields.timezone)
    join_url = f"{base}/c/{series.join_token}"
    uid = f"{series.id}@hearth"

    def event(start: datetime, duration_minutes: int) -> Event:
        item = Event()
        item.add("uid", uid)
        item.add("dtstamp", series.updated_at.astimezone(UTC))
        item.add("summary", fields.title)
        description = f"{fields.description}\n\nJoin: {join_url}".strip()
        item.add("description", description)
        item.add("url", join_url)
        item.add("location", join_url)
        item.add("dtstart", _local(start, zone))
        item.add("duration", timedelta(minutes=duration_minutes))
        return item

    main = event(fields.first_start, fields.duration_minutes)
    rule = _rule(series)
    if rule is not None:
        main.add("rrule", rule)
    cancelled = sorted(start for start, o in overrides.items() if o.cancelled)
    if cancelled:
        main.add("exdate", [_local(start, zone) for start in cancelled])
    events = [main]
    for original, override in sorted(overrides.items()):
        if override.cancelled or override.starts_at == original:
            continue
        moved = event(override.starts_at, override.duration_minutes)
        moved.add("recurrence-id", _local(original, zone))
        events.append(moved)
    return events


def calendar(entries: list[tuple[Series, dict[datetime, Override]]], base: str) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Hearth circles")
    for series, overrides in entries:
        try:
            items = series_events(series, overrides, base)
        except (ValueError, OverflowError):
            log.warning("series %s left out of the calendar feed", series.id)
            continue
        for item in items:
            cal.add_component(item)
    # icalendar writes zone transitions up to 2038 by default; a series may run to LAST_YEAR,
    # and a calendar past the VTIMEZONE's last transition would keep one offset all year.
    # From a week before the first start (a moved first occurrence may come a little early).
    firsts = [series.fields.first_start.date() for series, _ in entries]
    first_date = max(min(firsts, default=EARLIEST), EARLIEST + timedelta(days=7))
    cal.add_missing_timezones(
        first_date=first_date - timedelta(days=7), last_date=date(LAST_YEAR + 1, 1, 1)
    )
    return bytes(cal.to_ical())


def _weekly_days(series: Series) -> list[int] | None:
    """Meeting Guide days (0 = Sunday) of a series that meets every week on fixed weekdays,
    or None when it does not (the spec is for weekly meetings only).

    Weekly means: WEEKLY with INTERVAL 1, or DAILY with INTERVAL 1 (every day, or the days
    BYDAY names), with no part that skips weeks or months.
    """
    fields = series.fields
    if fields.rrule is None:
        return None
    parts = dict(part.split("=", 1) for part in fields.rrule.split(";"))
    if parts.get("FREQ") not in ("WEEKLY", "DAILY") or parts.get("INTERVAL", "1") != "1":
        return None
    if any(name in parts for name in ("BYSETPOS", "BYMONTH", "BYMONTHDAY", "COUNT")):
        return None
    local = fields.first_start.astimezone(ZoneInfo(fields.timezone))
    if "BYDAY" in parts:
        days = parts["BYDAY"].split(",")
    elif parts["FREQ"] == "DAILY":
        days = list(WEEKDAYS)
    else:
        days = [PYTHON_WEEKDAYS[local.weekday()]]
    if not all(day in WEEKDAYS for day in days):
        return None  # ordinals such as 1MO are not weekly
    return sorted({WEEKDAYS.index(day) for day in days})


def _listed_now(series: Series, now: datetime) -> bool:
    """A directory shows a weekly meeting as happening every week from now on: list a series
    only when it has begun (or begins within the week) and still has a meeting to come."""
    schedule = series.fields.schedule
    if series.fields.first_start >= now + LISTING_LEAD:
        return False
    return next_start(schedule, now, horizon_days=LISTING_LEAD.days) is not None


def meeting_guide(series_list: list[Series], base: str, now: datetime) -> list[dict[str, Any]]:
    """The Meeting Guide feed: one entry per weekly public series (``day`` lists its days).

    Follows the code4recovery spec: online meetings are marked by ``conference_url`` (which
    launches straight into the meeting: the join link); no address, since circles have none.
    """
    meetings: list[dict[str, Any]] = []
    for series in series_list:
        try:
            days = _weekly_days(series)
            if days is None or not _listed_now(series, now):
                continue
        except (ValueError, OverflowError):
            log.warning("series %s left out of the Meeting Guide feed", series.id)
            continue
        try:
            meetings.append(_meeting_guide_entry(series, days, base).model_dump(exclude_unset=True))
        except ValidationError:
            # One series the format cannot carry must not take the whole feed down.
            log.warning("series %s does not fit the Meeting Guide format", series.id)
    return meetings


def _meeting_guide_entry(series: Series, days: list[int], base: str) -> MeetingGuideMeeting:
    fields = series.fields
    zone = ZoneInfo(fields.timezone)
    start = fields.first_start.astimezone(zone)
    end = start + timedelta(minutes=fields.duration_minutes)
    # ``notes`` only when there is a description (the format has no null).
    notes = {"notes": fields.description} if fields.description else {}
    return MeetingGuideMeeting(
        **notes,
        name=fields.title,
        slug=series.id,
        day=days,
        time=start.strftime("%H:%M"),
        end_time=end.strftime("%H:%M"),
        timezone=fields.timezone,
        conference_url=f"{base}/c/{series.join_token}",
        conference_url_notes="Audio only, in the browser. No account needed.",
        updated=series.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    )


def _ics(request: web.Request, body: bytes) -> web.Response:
    response = web.Response(body=body, content_type="text/calendar", charset="utf-8")
    _cache(request, response)
    return response


def _cache(request: web.Request, response: web.Response) -> None:
    # Cacheable only when the links inside come from HEARTH_PUBLIC_URL: a feed whose links
    # were built from a request must never be served to anyone else.
    configured = links_are_configured(request)
    response.headers["Cache-Control"] = "public, max-age=300" if configured else "no-store"


async def public_calendar(request: web.Request) -> web.Response:
    store = SeriesStore(request.app[DATABASE])
    entries = [(s, await store.overrides(s.id)) for s in await store.all_series(public_only=True)]
    return _ics(request, calendar(entries, public_base(request)))


async def series_calendar(request: web.Request) -> web.Response:
    store = SeriesStore(request.app[DATABASE])
    series = await store.get(request.match_info["series_id"])
    if series is None or not series.fields.public:
        # A private series is not told apart from a missing one.
        raise ApiError(404, NOT_FOUND, "No public series has this id.")
    body = calendar([(series, await store.overrides(series.id))], public_base(request))
    return _ics(request, body)


async def meeting_guide_feed(request: web.Request) -> web.Response:
    store = SeriesStore(request.app[DATABASE])
    now = request.app[CLOCK]()
    meetings = meeting_guide(await store.all_series(public_only=True), public_base(request), now)
    response = web.json_response(meetings)
    _cache(request, response)
    return response


def add_feed_routes(app: web.Application) -> None:
    app.router.add_get(f"{API_BASE}/feeds/calendar.ics", public_calendar)
    app.router.add_get(f"{API_BASE}/feeds/series/{{series_id}}.ics", series_calendar)
    app.router.add_get(f"{API_BASE}/feeds/meeting-guide.json", meeting_guide_feed)
