"""Public feeds of public series: iCalendar (RFC 5545) and Meeting Guide JSON.

Only series an admin marked ``public`` appear, and for those the join link is public too
(it is what a directory lists). No attendance, no host link, nothing about people.

- ``/api/v1/feeds/calendar.ics``: every public series, one VEVENT each with its RRULE in its
  own time zone (VTIMEZONE included), EXDATE for cancelled occurrences and an overriding
  VEVENT (RECURRENCE-ID) for each moved one.
- ``/api/v1/feeds/series/{id}.ics``: the same for one public series.
- ``/api/v1/feeds/meeting-guide.json``: the Meeting Guide format (code4recovery spec) used by
  meeting directories; it describes weekly meetings, so only weekly series are listed, one
  entry per weekday, with ``conference_url`` = the join link.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from icalendar import Calendar, Event, vRecur

from rooms.lifecycle import Override
from server.api import links_are_configured, public_base
from server.appkeys import DATABASE
from server.errors import NOT_FOUND, ApiError
from server.openapi import API_BASE
from server.storage.series import Series, SeriesStore

PRODID = "-//Hearth//Support circles//EN"
WEEKDAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # Meeting Guide: 0 = Sunday
PYTHON_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # datetime.weekday()


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone)


def _rule(series: Series) -> vRecur | None:
    fields = series.fields
    if fields.rrule is None:
        return None
    rule: vRecur = vRecur.from_ical(fields.rrule)
    if fields.ends_on is not None:
        last = datetime.combine(fields.ends_on, time.max).replace(tzinfo=ZoneInfo(fields.timezone))
        until = last.astimezone(UTC).replace(microsecond=0)
        existing = rule.get("UNTIL")
        if not existing or existing[0] > until:
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
        for item in series_events(series, overrides, base):
            cal.add_component(item)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def _weekly_days(series: Series) -> list[str] | None:
    """The weekdays of a weekly series (every week), or None when it is not one."""
    fields = series.fields
    if fields.rrule is None:
        return None
    parts = dict(part.split("=", 1) for part in fields.rrule.split(";"))
    if parts.get("FREQ") != "WEEKLY" or parts.get("INTERVAL", "1") != "1":
        return None
    if any(name in parts for name in ("BYSETPOS", "BYMONTH", "BYMONTHDAY", "BYYEARDAY")):
        return None
    local = fields.first_start.astimezone(ZoneInfo(fields.timezone))
    days = parts.get("BYDAY", PYTHON_WEEKDAYS[local.weekday()]).split(",")
    if not all(day in WEEKDAYS for day in days):
        return None
    return days


def meeting_guide(series_list: list[Series], base: str) -> list[dict[str, Any]]:
    meetings: list[dict[str, Any]] = []
    for series in series_list:
        days = _weekly_days(series)
        if days is None:
            continue
        fields = series.fields
        zone = ZoneInfo(fields.timezone)
        start = fields.first_start.astimezone(zone)
        end = start + timedelta(minutes=fields.duration_minutes)
        for day in sorted(days, key=WEEKDAYS.index):
            meetings.append(
                {
                    "name": fields.title,
                    "slug": f"{series.id}-{day.lower()}",
                    "day": WEEKDAYS.index(day),
                    "time": start.strftime("%H:%M"),
                    "end_time": end.strftime("%H:%M"),
                    "timezone": fields.timezone,
                    "conference_url": f"{base}/c/{series.join_token}",
                    "conference_url_notes": "Audio only, in the browser. No account needed.",
                    "notes": fields.description,
                    "types": ["ONL"],
                    "attendance_option": "online",
                    "updated": series.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
    return meetings


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
    meetings = meeting_guide(await store.all_series(public_only=True), public_base(request))
    response = web.json_response(meetings)
    _cache(request, response)
    return response


def add_feed_routes(app: web.Application) -> None:
    app.router.add_get(f"{API_BASE}/feeds/calendar.ics", public_calendar)
    app.router.add_get(f"{API_BASE}/feeds/series/{{series_id}}.ics", series_calendar)
    app.router.add_get(f"{API_BASE}/feeds/meeting-guide.json", meeting_guide_feed)
