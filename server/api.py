"""The admin HTTP API under /api/v1: schedule circles and hand out their links.

Handlers are thin: authenticate, parse and validate the body completely (so nothing is
written when any part of it is wrong), call storage, render. Bodies are the pydantic models
of server/api_models.py (``parse_body``), from which server/openapi.py makes the document;
what a schema cannot say (a zone that exists, an offset that is the zone's) is checked here.
"""

from __future__ import annotations

import ipaddress
import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

from aiohttp import web
from pydantic import BaseModel, ValidationError

from rooms.recurrence import FIRST_YEAR, LAST_YEAR
from server.api_models import MAX_TITLE, Circle, CircleCreate, CircleList
from server.appkeys import DATABASE, SETTINGS
from server.auth import require_admin
from server.errors import INVALID_FIELD, INVALID_JSON, NOT_FOUND, ApiError, invalid_field
from server.openapi import API_BASE, openapi_document
from server.storage.repository import ScheduledCircle, SqlCircleStore


@dataclass(frozen=True, slots=True)
class NewCircle:
    title: str
    starts_at: datetime
    duration_minutes: int
    timezone: str
    capacity: int


@cache
def known_timezones() -> frozenset[str]:
    # Listing the zone database reads the disk; once per process is plenty.
    return frozenset(available_timezones())


async def read_json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:  # also covers bytes that are not UTF-8
        raise ApiError(400, INVALID_JSON, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, INVALID_JSON, "The body must be a JSON object.")
    return body


Model = TypeVar("Model", bound=BaseModel)


def parse_body(model: type[Model], body: dict[str, Any]) -> Model:
    """``body`` as ``model`` (server/api_models.py), or a 422 naming the first field at fault:
    an unknown field before a missing one before a wrong one, as clients have always seen.
    The message says what the field must be, in the words of the model's own schema."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problems = sorted(error.errors(), key=lambda e: _PROBLEM_ORDER.get(e["type"], 2))
        first = problems[0]
        if not first["loc"]:  # e.g. a field name that is not text (a lone surrogate)
            raise ApiError(422, INVALID_FIELD, "A field name is not valid text.") from None
        name = str(first["loc"][0])[:100]
        if first["type"] == "extra_forbidden":
            raise invalid_field(name, f"Unknown field '{name}'.") from None
        if first["type"] == "missing":
            raise invalid_field(name, f"'{name}' is required.") from None
        schema = _field_schemas(model).get(name)
        if schema is None:
            raise invalid_field(name, f"'{name}' is not valid.") from None
        must_be = what_it_must_be(schema)
        raise invalid_field(name, f"'{name}' must be {must_be}.") from None


_PROBLEM_ORDER = {"extra_forbidden": 0, "missing": 1}


@cache
def _field_schemas(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    properties: dict[str, Any] = schema.get("properties", {})
    return properties


def what_it_must_be(schema: dict[str, Any]) -> str:
    """``a whole number from 1 to 1440``, ``true or false``, ``null or ...``: a field's JSON
    schema said in words."""
    options = schema.get("anyOf")
    if options:
        outer = {k: v for k, v in schema.items() if k == "format"}
        kinds = [what_it_must_be({**outer, **o}) for o in options if o.get("type") != "null"]
        nullable = len(kinds) < len(options)
        return " or ".join((["null"] if nullable else []) + kinds)
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return "one of " + ", ".join(f"'{v}'" for v in values)
    kind = schema.get("type")
    if kind == "boolean":
        return "true or false"
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        return "a whole number" + (f" of at least {low}" if low is not None else "")
    if kind == "string":
        if schema.get("format") == "date-time":
            return "an ISO 8601 date-time with an offset, e.g. 2026-12-01T19:00:00+01:00"
        if schema.get("format") == "date":
            return "a date (YYYY-MM-DD)"
        low, high = schema.get("minLength"), schema.get("maxLength")
        if high is not None:
            return f"a string of {low or 0} to {high} characters"
        return "a string"
    return "valid"


def parse_new_circle(body: dict[str, Any], *, default_capacity: int) -> NewCircle:
    """Validate a create request; raises ApiError (422) naming the first field at fault."""
    given = parse_body(CircleCreate, body)
    new = NewCircle(
        title=parse_title(given.title),
        starts_at=parse_starts_at(given.starts_at),
        duration_minutes=given.duration_minutes,
        timezone=parse_timezone(given.timezone),
        capacity=default_capacity if given.capacity is None else given.capacity,
    )
    check_wall_time("starts_at", given.starts_at, new.starts_at, new.timezone)
    return new


def parse_title(value: object) -> str:
    if not isinstance(value, str):
        raise invalid_field("title", "'title' must be a string.")
    title = value.strip()
    if not 1 <= len(title) <= MAX_TITLE:
        raise invalid_field("title", f"'title' must be 1 to {MAX_TITLE} characters.")
    if has_control_characters(title):
        raise invalid_field("title", "'title' must not contain control characters.")
    return title


# Format characters that writing needs: the zero-width non-joiner and joiner (Persian, Indic
# scripts, emoji sequences) and the emoji tag characters (subdivision flags). Other format
# characters (bidirectional overrides, invisible separators) can disguise a text: refused.
ALLOWED_FORMAT_CHARACTERS = frozenset({"\u200c", "\u200d"}) | frozenset(
    chr(code) for code in range(0xE0020, 0xE0080)
)


def has_control_characters(text: str) -> bool:
    return any(
        unicodedata.category(ch) == "Cc"
        or (unicodedata.category(ch) == "Cf" and ch not in ALLOWED_FORMAT_CHARACTERS)
        for ch in text
    )


def check_wall_time(field: str, raw: object, instant: datetime, timezone: str) -> None:
    """Refuse a time an admin probably did not mean in ``timezone``.

    - an offset that is not the zone's at that date (19:00+01:00 for Berlin in July is
      20:00 there: every week would meet an hour late); UTC (Z) is always taken as given;
    - the second of two instants with the same wall time (the night clocks go back):
      calendars (RFC 5545) read a local time as the first, so it could not be shown right.
    """
    zone = ZoneInfo(timezone)
    local = instant.astimezone(zone)
    given = datetime.fromisoformat(raw).utcoffset() if isinstance(raw, str) else None
    if given is not None and given != timedelta(0) and given != local.utcoffset():
        raise invalid_field(
            field,
            f"'{field}' has the offset {_offset(given)}, but {timezone} is at "
            f"{_offset(local.utcoffset())} on that date: give that offset, or UTC (Z).",
        )
    first = local.replace(tzinfo=None).replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC) != instant:
        raise invalid_field(
            field,
            f"'{field}' is the second {local:%H:%M} of a night the clocks go back in "
            f"{timezone}; calendars read that time as the first. Choose another time.",
        )


def _offset(value: timedelta | None) -> str:
    minutes = int((value or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_starts_at(value: object) -> datetime:
    if not isinstance(value, str):
        raise invalid_field("starts_at", "'starts_at' must be an ISO 8601 string.")
    try:
        starts_at = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_field("starts_at", "'starts_at' is not an ISO 8601 date-time.") from None
    if starts_at.tzinfo is None or starts_at.utcoffset() is None:
        # A time without an offset means a different instant on every server.
        raise invalid_field("starts_at", "'starts_at' needs an offset, e.g. +01:00 or Z.")
    # Far years overflow on conversion (0001-01-01T00:00+01:00) and make no circle.
    if not FIRST_YEAR <= starts_at.year <= LAST_YEAR:
        raise invalid_field(
            "starts_at", f"'starts_at' must be in the years {FIRST_YEAR} to {LAST_YEAR}."
        )
    return starts_at.astimezone(UTC)


def parse_timezone(value: object) -> str:
    if not isinstance(value, str) or value not in known_timezones():
        raise invalid_field("timezone", "'timezone' must be an IANA name, e.g. Europe/Berlin.")
    return value


def public_base(request: web.Request) -> str:
    """The base of every link handed out: HEARTH_PUBLIC_URL (required in production).

    Never a ``Host`` header a stranger chose: without HEARTH_PUBLIC_URL (a development
    server), the request's origin is used only when it names this machine itself
    (``localhost``, a loopback address), and otherwise the address the server listens on.
    """
    settings = request.app[SETTINGS]
    if settings.public_url:
        return settings.public_url.rstrip("/")
    name = request.url.host or ""
    if name == "localhost" or _is_loopback(name):
        return f"http://{request.host}"
    listen = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{listen}:{settings.port}"


def links_are_configured(request: web.Request) -> bool:
    """Whether links come from HEARTH_PUBLIC_URL, so that a response holding them may be
    cached (one built from a request must never be served to another)."""
    return bool(request.app[SETTINGS].public_url)


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def render_circle(scheduled: ScheduledCircle, base: str) -> Circle:
    circle = scheduled.circle
    # Stored circles always have one (their series' capacity); None is for pure tests.
    assert circle.capacity is not None
    return Circle(
        id=circle.id,
        title=circle.title,
        starts_at=circle.starts_at.isoformat(),
        ends_at=circle.ends_at.isoformat(),
        duration_minutes=circle.duration_minutes,
        timezone=circle.timezone,
        status=circle.status.value,
        capacity=circle.capacity,
        join_url=f"{base}/c/{scheduled.join_token}",
        host_url=None if scheduled.host_token is None else f"{base}/c/{scheduled.host_token}",
    )


def json_answer(body: BaseModel, status: int = 200, **dump: Any) -> web.Response:
    """A response body, checked against its model (server/api_models.py) on the way out;
    admin answers are never cached."""
    return no_store(web.json_response(body.model_dump(**dump), status=status))


def no_store(response: web.Response) -> web.Response:
    """Admin responses carry link secrets and names: keep them out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


async def create_circle(request: web.Request) -> web.Response:
    await require_admin(request)
    new = parse_new_circle(
        await read_json_object(request), default_capacity=request.app[SETTINGS].default_capacity
    )
    scheduled = await SqlCircleStore(request.app[DATABASE]).create_circle(
        title=new.title,
        starts_at=new.starts_at,
        duration_minutes=new.duration_minutes,
        timezone=new.timezone,
        capacity=new.capacity,
        now=datetime.now(UTC),
    )
    response = json_answer(render_circle(scheduled, public_base(request)), status=201)
    response.headers["Location"] = f"{API_BASE}/circles/{scheduled.circle.id}"
    return response


async def list_circles(request: web.Request) -> web.Response:
    await require_admin(request)
    base = public_base(request)
    circles = await SqlCircleStore(request.app[DATABASE]).list_circles()
    return json_answer(CircleList(circles=[render_circle(c, base) for c in circles]))


async def get_circle(request: web.Request) -> web.Response:
    await require_admin(request)
    scheduled = await SqlCircleStore(request.app[DATABASE]).get_circle(
        request.match_info["circle_id"]
    )
    if scheduled is None:
        raise ApiError(404, NOT_FOUND, "No circle has this id.")
    return json_answer(render_circle(scheduled, public_base(request)))


async def get_openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_api_routes(app: web.Application) -> None:
    """Register /api/v1. Needs app[SETTINGS], and app[DATABASE] by the time requests come."""
    app.router.add_post(f"{API_BASE}/circles", create_circle)
    app.router.add_get(f"{API_BASE}/circles", list_circles)
    app.router.add_get(f"{API_BASE}/circles/{{circle_id}}", get_circle)
    app.router.add_get(f"{API_BASE}/openapi.json", get_openapi)
    # Unknown routes under /api/ get their JSON 404/405 from api_error_middleware.
