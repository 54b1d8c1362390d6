"""The admin API for series (/api/v1/series...): schedules, occurrences, host links.

As in server/api.py: authenticate, parse and validate the whole request (nothing is stored
when any part is wrong), call storage, render. Bodies are the models of server/api_models.py.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from rooms.lifecycle import (
    DEFAULT_GRACE_MINUTES,
    DEFAULT_LOBBY_MINUTES,
    Occurrence,
    clashing_neighbour,
    phase,
)
from rooms.recurrence import (
    RecurrenceError,
    SeriesSchedule,
    check_year,
    normalise_rule,
    starts_between,
    validate,
)
from server import api_models as out
from server.api import (
    check_wall_time,
    has_control_characters,
    json_answer,
    parse_body,
    parse_starts_at,
    parse_timezone,
    parse_title,
    public_base,
    read_json_object,
)
from server.api_models import (
    DEFAULT_RANGE_DAYS,
    MAX_LISTED,
    MAX_RANGE_DAYS,
    NEXT_STARTS_SHOWN,
    HostLinkCreate,
    OccurrenceChange,
    OccurrenceRange,
    RecurrencePreviewRequest,
    SeriesCreate,
    SeriesUpdate,
)
from server.appkeys import CLOCK, DATABASE, SETTINGS
from server.auth import require_admin
from server.config import DEFAULT_CAPACITY
from server.errors import NOT_FOUND, ApiError, invalid_field
from server.openapi import API_BASE
from server.storage.series import (
    HostLink,
    ScheduledOccurrence,
    Series,
    SeriesFields,
    SeriesStore,
)

MAX_RANGE = timedelta(days=MAX_RANGE_DAYS)
DEFAULT_RANGE = timedelta(days=DEFAULT_RANGE_DAYS)


# --- parsing -----------------------------------------------------------------------------


def _description(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise invalid_field("description", "'description' must not contain control characters.")
    return value.strip()


def _rrule(value: str | None) -> str | None:
    return None if value is None else normalise_rule(value) or None


def _ends_on(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid_field("ends_on", "'ends_on' must be a date (YYYY-MM-DD) or null.") from None


def parse_series(
    body: dict[str, Any],
    existing: SeriesFields | None = None,
    *,
    default_capacity: int = DEFAULT_CAPACITY,
) -> SeriesFields:
    """A complete, validated SeriesFields from a create body, or from a change to ``existing``."""
    given: SeriesCreate | SeriesUpdate
    if existing is None:
        given = parse_body(SeriesCreate, body)
        fields = SeriesFields(
            title="",
            description="",
            first_start=datetime.now(UTC),
            timezone="UTC",
            duration_minutes=60,
            rrule=None,
            ends_on=None,
            capacity=default_capacity,
            lobby_minutes=DEFAULT_LOBBY_MINUTES,
            grace_minutes=DEFAULT_GRACE_MINUTES,
            public=False,
            attendance_names_visible=False,
        )
    else:
        given = parse_body(SeriesUpdate, body)
        fields = existing
    changes: dict[str, Any] = {}
    # Only what was sent changes (absent is "as before"); the model checked types and ranges.
    for name in given.model_fields_set:
        value = getattr(given, name)
        if name == "title":
            changes["title"] = parse_title(value)
        elif name == "description":
            changes["description"] = _description(value)
        elif name == "starts_at":
            changes["first_start"] = parse_starts_at(value)
        elif name == "timezone":
            changes["timezone"] = parse_timezone(value)
        elif name == "rrule":
            changes["rrule"] = _rrule(value)
        elif name == "ends_on":
            changes["ends_on"] = _ends_on(value)
        else:
            changes[name] = value
    fields = replace(fields, **changes)
    try:
        validate(fields.schedule)
    except RecurrenceError as error:
        raise invalid_field(error.field, error.message) from None
    sent = given.model_fields_set
    if "starts_at" in sent or "timezone" in sent:
        raw = given.starts_at if "starts_at" in sent else None
        check_wall_time("starts_at", raw, fields.first_start, fields.timezone)
    return fields


def within_years(name: str, instant: datetime) -> None:
    try:
        check_year(name, instant)
    except RecurrenceError as error:
        raise invalid_field(name, error.message) from None


def parse_range(request: web.Request, now: datetime) -> tuple[datetime, datetime]:
    """``from`` and ``to`` of an occurrence list (server/api_models.py ``OccurrenceRange``),
    with their defaults, in order, and at most MAX_RANGE apart; a 422 naming the first
    parameter at fault otherwise."""
    asked = {name: request.query[name] for name in ("from", "to") if name in request.query}
    try:
        query = OccurrenceRange.model_validate(asked)
    except ValidationError as error:
        problem = error.errors()[0]
        raise invalid_field(str(problem["loc"][0]), problem["msg"]) from None
    after = now if query.from_ is None else query.from_
    before = after + DEFAULT_RANGE if query.to is None else query.to
    if before <= after:
        raise invalid_field("to", "'to' must be after 'from'.")
    if before - after > MAX_RANGE:
        raise invalid_field("to", f"The range may span at most {MAX_RANGE.days} days.")
    return after, before


# --- rendering ---------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


def render_host_link(link: HostLink, base: str) -> out.HostLink:
    """A roster entry; ``url`` only in the answer that made or rotated it (stored hashed)."""
    return out.HostLink(
        id=link.id,
        name=link.name,
        url=None if link.token is None else f"{base}/c/{link.token}",
        created_at=_iso(link.created_at),
    )


def _series_fields(series: Series, base: str, now: datetime) -> dict[str, Any]:
    fields = series.fields
    upcoming = starts_between(fields.schedule, now, now + MAX_RANGE)[:NEXT_STARTS_SHOWN]
    return {
        "id": series.id,
        "title": fields.title,
        "description": fields.description,
        "starts_at": _iso(fields.first_start),
        "timezone": fields.timezone,
        "duration_minutes": fields.duration_minutes,
        "rrule": fields.rrule,
        "ends_on": None if fields.ends_on is None else fields.ends_on.isoformat(),
        "capacity": fields.capacity,
        "lobby_minutes": fields.lobby_minutes,
        "grace_minutes": fields.grace_minutes,
        "public": fields.public,
        "attendance_names_visible": fields.attendance_names_visible,
        "join_url": f"{base}/c/{series.join_token}",
        "host_links": [render_host_link(link, base) for link in series.host_links],
        "next_starts": [_iso(s) for s in upcoming],
        "created_at": _iso(series.created_at),
        "updated_at": _iso(series.updated_at),
    }


def render_series(series: Series, base: str, now: datetime) -> out.Series:
    return out.Series(**_series_fields(series, base, now))


def render_occurrence(scheduled: ScheduledOccurrence, now: datetime) -> out.Occurrence:
    series, occurrence = scheduled.series, scheduled.occurrence
    attendance = scheduled.attendance
    return out.Occurrence(
        id=occurrence.id,
        series_id=series.id,
        title=series.fields.title,
        timezone=series.fields.timezone,
        starts_at=_iso(occurrence.starts_at),
        ends_at=_iso(occurrence.ends_at),
        original_start=_iso(occurrence.original_start),
        moved=occurrence.moved,
        status=phase(occurrence, series.windows, now).value,
        extended_minutes=occurrence.extended_minutes,
        present=attendance.present,
        attended=attendance.total,
        attendees=None
        if attendance.attendees is None
        else [
            out.Attendee(
                display_name=a.display_name,
                joined_at=_iso(a.joined_at),
                left_at=_iso_or_none(a.left_at),
            )
            for a in attendance.attendees
        ],
    )


def _json(body: BaseModel, status: int = 200) -> web.Response:
    return json_answer(body, status)


def _no_series() -> ApiError:
    return ApiError(404, NOT_FOUND, "No series has this id.")


# --- handlers ----------------------------------------------------------------------------


def _store(request: web.Request) -> SeriesStore:
    return SeriesStore(request.app[DATABASE])


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


async def create_series(request: web.Request) -> web.Response:
    await require_admin(request)
    default_capacity = request.app[SETTINGS].default_capacity
    body = await read_json_object(request)
    # Checking a rule walks dateutil for up to ~0.1 s (a rule that never matches): off the loop.
    fields = await asyncio.to_thread(parse_series, body, default_capacity=default_capacity)
    now = _now(request)
    series = await _store(request).create(fields, now=now)
    response = _json(render_series(series, public_base(request), now), status=201)
    response.headers["Location"] = f"{API_BASE}/series/{series.id}"
    return response


async def list_series(request: web.Request) -> web.Response:
    await require_admin(request)
    base, now = public_base(request), _now(request)
    everything = await _store(request).all_series()
    return _json(out.SeriesList(series=[render_series(s, base, now) for s in everything]))


async def get_series(request: web.Request) -> web.Response:
    await require_admin(request)
    series = await _store(request).get(request.match_info["series_id"])
    if series is None:
        raise _no_series()
    return _json(render_series(series, public_base(request), _now(request)))


async def update_series(request: web.Request) -> web.Response:
    await require_admin(request)
    store = _store(request)
    series = await store.get(request.match_info["series_id"])
    if series is None:
        raise _no_series()
    body = await read_json_object(request)
    fields = await asyncio.to_thread(parse_series, body, series.fields)
    now = _now(request)
    updated = await store.update(series.id, fields, now=now)
    if updated is None:
        raise _no_series()
    not_kept = [
        out.NotKept(original_start=_iso(d.original_start), change=d.change, reason=d.reason)
        for d in updated.dropped
    ]
    rendered = _series_fields(updated.series, public_base(request), now)
    return _json(out.SeriesUpdated(**rendered, not_kept=not_kept))


async def delete_series(request: web.Request) -> web.Response:
    await require_admin(request)
    if not await _store(request).delete(request.match_info["series_id"]):
        raise _no_series()
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def rotate_join_link(request: web.Request) -> web.Response:
    await require_admin(request)
    now = _now(request)
    series = await _store(request).rotate_join_link(request.match_info["series_id"], now=now)
    if series is None:
        raise _no_series()
    return _json(render_series(series, public_base(request), now))


async def list_series_occurrences(request: web.Request) -> web.Response:
    await require_admin(request)
    now = _now(request)
    after, before = parse_range(request, now)
    found = await _store(request).occurrences(request.match_info["series_id"], after, before)
    if found is None:
        raise _no_series()
    return _json(_occurrence_list(found, now))


async def list_all_occurrences(request: web.Request) -> web.Response:
    await require_admin(request)
    now = _now(request)
    after, before = parse_range(request, now)
    found = await _store(request).occurrences(None, after, before)
    assert found is not None
    return _json(_occurrence_list(found, now))


def _occurrence_list(found: list[ScheduledOccurrence], now: datetime) -> out.OccurrenceList:
    """At most MAX_LISTED occurrences, the soonest; ``truncated`` says when some were left out
    (ask again from the last one's start for the rest)."""
    return out.OccurrenceList(
        occurrences=[render_occurrence(o, now) for o in found[:MAX_LISTED]],
        truncated=len(found) > MAX_LISTED,
    )


async def change_occurrence(request: web.Request) -> web.Response:
    """Cancel (``cancelled: true``), restore (``false``) or move (``starts_at``) one occurrence."""
    await require_admin(request)
    store = _store(request)
    found = await store.find_occurrence(
        request.match_info["series_id"], request.match_info["occurrence_id"]
    )
    if found is None:
        raise ApiError(404, NOT_FOUND, "This series has no such occurrence.")
    series, occurrence, _row = found
    change = parse_body(OccurrenceChange, await read_json_object(request))
    if not change.model_fields_set:
        raise invalid_field("cancelled", "Send 'cancelled' or 'starts_at'.")
    cancelled = change.cancelled
    starts_at = None if change.starts_at is None else parse_starts_at(change.starts_at)
    if starts_at is not None:
        within_years("starts_at", starts_at)
        check_wall_time("starts_at", change.starts_at, starts_at, series.fields.timezone)
    now = _now(request)
    if occurrence.starts_at <= now or (starts_at is not None and starts_at <= now):
        field = "starts_at" if starts_at is not None else "cancelled"
        raise invalid_field(
            field, "Only an occurrence that has not begun can change, and only to the future."
        )
    if starts_at is not None:
        await _refuse_clash(store, series, replace(occurrence, starts_at=starts_at))
    changed = await store.change_occurrence(
        series, occurrence, cancelled=cancelled, starts_at=starts_at, now=now
    )
    return _json(render_occurrence(changed, now))


async def _refuse_clash(store: SeriesStore, series: Series, moved: Occurrence) -> None:
    # Durations are at most a day and extensions two hours: neighbours further than two
    # days away cannot overlap.
    span = timedelta(days=2)
    nearby = await store.occurrences(series.id, moved.starts_at - span, moved.starts_at + span)
    others = [found.occurrence for found in nearby or []]
    clash = clashing_neighbour(moved, others, series.windows)
    if clash is not None:
        raise invalid_field(
            "starts_at",
            "That time would overlap the occurrence starting at "
            f"{clash.starts_at.isoformat()} (lobby and grace included).",
        )


def _host_name(body: dict[str, Any]) -> str:
    name = parse_body(HostLinkCreate, body).name.strip()
    if not name:
        raise invalid_field("name", "'name' must not be blank.")
    if has_control_characters(name):
        raise invalid_field("name", "'name' must not contain control characters.")
    return name


async def add_host_link(request: web.Request) -> web.Response:
    await require_admin(request)
    name = _host_name(await read_json_object(request))
    link = await _store(request).add_host_link(
        request.match_info["series_id"], name, now=_now(request)
    )
    if link is None:
        raise _no_series()
    return _json(render_host_link(link, public_base(request)), status=201)


async def revoke_host_link(request: web.Request) -> web.Response:
    await require_admin(request)
    revoked = await _store(request).revoke_host_link(
        request.match_info["series_id"], request.match_info["link_id"], now=_now(request)
    )
    if not revoked:
        raise ApiError(404, NOT_FOUND, "This series has no such host link.")
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def rename_host_link(request: web.Request) -> web.Response:
    await require_admin(request)
    name = _host_name(await read_json_object(request))
    link = await _store(request).rename_host_link(
        request.match_info["series_id"], request.match_info["link_id"], name
    )
    if link is None:
        raise ApiError(404, NOT_FOUND, "This series has no such host link.")
    return _json(render_host_link(link, public_base(request)))


async def rotate_host_link(request: web.Request) -> web.Response:
    await require_admin(request)
    link = await _store(request).rotate_host_link(
        request.match_info["series_id"], request.match_info["link_id"], now=_now(request)
    )
    if link is None:
        raise ApiError(404, NOT_FOUND, "This series has no such host link.")
    return _json(render_host_link(link, public_base(request)))


async def preview_recurrence(request: web.Request) -> web.Response:
    """The next starts a schedule would give, for the console's form (nothing is stored)."""
    await require_admin(request)
    given = parse_body(RecurrencePreviewRequest, await read_json_object(request))
    schedule = SeriesSchedule(
        first_start=parse_starts_at(given.starts_at),
        timezone=parse_timezone(given.timezone),
        duration_minutes=given.duration_minutes,
        rule=_rrule(given.rrule),
        ends_on=_ends_on(given.ends_on),
    )
    count = given.count
    try:
        await asyncio.to_thread(validate, schedule)
    except RecurrenceError as error:
        raise invalid_field(error.field, error.message) from None
    check_wall_time("starts_at", given.starts_at, schedule.first_start, schedule.timezone)
    starts = starts_between(schedule, schedule.first_start, schedule.first_start + MAX_RANGE)
    return _json(out.RecurrencePreview(starts=[_iso(s) for s in starts[:count]]))


def add_series_routes(app: web.Application) -> None:
    base = f"{API_BASE}/series"
    app.router.add_post(base, create_series)
    app.router.add_get(base, list_series)
    app.router.add_get(f"{base}/{{series_id}}", get_series)
    app.router.add_patch(f"{base}/{{series_id}}", update_series)
    app.router.add_delete(f"{base}/{{series_id}}", delete_series)
    app.router.add_post(f"{base}/{{series_id}}/join-link/rotate", rotate_join_link)
    app.router.add_get(f"{base}/{{series_id}}/occurrences", list_series_occurrences)
    app.router.add_patch(f"{base}/{{series_id}}/occurrences/{{occurrence_id}}", change_occurrence)
    app.router.add_post(f"{base}/{{series_id}}/host-links", add_host_link)
    app.router.add_delete(f"{base}/{{series_id}}/host-links/{{link_id}}", revoke_host_link)
    app.router.add_patch(f"{base}/{{series_id}}/host-links/{{link_id}}", rename_host_link)
    app.router.add_post(f"{base}/{{series_id}}/host-links/{{link_id}}/rotate", rotate_host_link)
    app.router.add_get(f"{API_BASE}/occurrences", list_all_occurrences)
    app.router.add_post(f"{API_BASE}/recurrence/preview", preview_recurrence)
