"""The admin API's bodies, typed once: pydantic models for what comes in and what goes out.

The OpenAPI document (server/openapi.py) takes its schemas from these models (pydantic's JSON
Schema, draft 2020-12, which OpenAPI 3.1 uses as it is), and request bodies are validated by
the same models (``server.validation.parse_body``), so the document and the checks cannot
drift apart. Rules a JSON schema cannot say (a zone that exists, a rule that meets, an offset
that is the zone's) stay in Python beside the parsing (server/api.py, server/series_api.py)
and are named in the descriptions.

Instants go out as the strings the handlers render (ISO 8601 in UTC, ``+00:00``), hence
``str`` with ``format: date-time`` rather than ``datetime`` (which pydantic would write
with ``Z``): the wire format stays what clients already read.

Why pydantic (v2) and not msgspec or aiohttp-pydantic: pydantic is already a dependency (the
typed settings, server/config.py), its JSON Schema output is 2020-12 as OpenAPI 3.1 wants,
and its strict mode refuses ``true`` or ``5.0`` for a whole number, as the API always has.
aiohttp-pydantic would want every handler rewritten as a class-based view and answers bad
input with its own error body, where this API's error shape and codes are a contract.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from rooms.machine import MAX_SHARE_SECONDS, MIN_SHARE_SECONDS
from rooms.recurrence import FIRST_YEAR, LAST_YEAR, RecurrenceError, check_year
from server.config import MAX_CAPACITY
from server.errors import ERROR_CODES

MAX_TITLE = 200
MAX_DURATION_MINUTES = 24 * 60
MAX_DESCRIPTION = 2000
MAX_WINDOW_MINUTES = 240
MAX_HOST_NAME = 100
MAX_RULE = 500
MAX_PREVIEW = 20
MAX_LISTED = 5000
DEFAULT_RANGE_DAYS = 28
MAX_RANGE_DAYS = 400
NEXT_STARTS_SHOWN = 5
MAX_CRISIS_TEXT = 4000
MAX_PASSCODE = 100

_ISO_WITH_OFFSET = "ISO 8601 date-time with an offset (`Z` or `+01:00`); returned in UTC."
_DEFAULT_CAPACITY = (
    "Most people seated at once (hosts always get in). Default: the server's "
    "HEARTH_DEFAULT_CAPACITY (30)."
)

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Date = Annotated[str, Field(json_schema_extra={"format": "date"})]
Uri = Annotated[str, Field(json_schema_extra={"format": "uri"})]
WholeMinutes = Annotated[int, Field(ge=1, le=MAX_DURATION_MINUTES)]
Capacity = Annotated[int, Field(ge=1, le=MAX_CAPACITY, description=_DEFAULT_CAPACITY)]
Timezone = Annotated[
    str,
    Field(description="IANA time zone name, e.g. `Europe/Berlin`.", examples=["Europe/Berlin"]),
]
Title = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TITLE,
        description="Shown to participants. Trimmed; no control characters.",
    ),
]
StartsAt = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, description=_ISO_WITH_OFFSET)
]
Rule = Annotated[
    str | None,
    Field(
        max_length=MAX_RULE,
        description=(
            "RFC 5545 RRULE value (no `RRULE:` prefix, no DTSTART), DAILY to YEARLY, e.g. "
            "`FREQ=WEEKLY;BYDAY=TU` or `FREQ=MONTHLY;BYDAY=1SU`; may carry COUNT or UNTIL. "
            "Null: a one-off circle."
        ),
        examples=["FREQ=WEEKLY;BYDAY=TU"],
    ),
]
EndsOn = Annotated[
    str | None,
    Field(
        json_schema_extra={"format": "date"},
        description="Last local date with an occurrence (inclusive).",
    ),
]


class Body(BaseModel):
    """A request body: strict JSON types (``true`` is not a number), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Answer(BaseModel):
    """A response body: exactly these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- errors --------------------------------------------------------------------------------


class ErrorDetail(Answer):
    code: Literal[ERROR_CODES] = Field(description="Stable: clients switch on it.")  # type: ignore[valid-type]
    message: str = Field(description="For people; may be reworded.")
    field: str | None = Field(description="The request field at fault, when there is one.")


class Error(Answer):
    error: ErrorDetail


# --- one-off circles -------------------------------------------------------------------------


class CircleCreate(Body):
    title: Title
    starts_at: StartsAt
    duration_minutes: WholeMinutes
    timezone: Timezone
    capacity: Capacity = Field(default=None)  # type: ignore[assignment]


class Circle(Answer):
    id: str
    title: str
    starts_at: DateTime
    ends_at: DateTime
    duration_minutes: WholeMinutes
    timezone: str
    status: Literal["scheduled", "open", "ended"]
    join_url: Uri = Field(description="Give this to participants. Whoever holds it may join.")
    host_url: Uri | None = Field(
        description=(
            "Give this to hosts only: it grants the host role. The series' first host "
            "link, in the answer that created the circle only (host links are stored "
            "hashed): null when listed or fetched later."
        )
    )
    capacity: Annotated[int, Field(ge=1, le=MAX_CAPACITY)]


class CircleList(Answer):
    circles: list[Circle]


# --- series ----------------------------------------------------------------------------------

_FIRST_START = (
    "The first occurrence. "
    + _ISO_WITH_OFFSET
    + " Its wall-clock time in `timezone` is the time every occurrence keeps."
)
_LOBBY = "How long before the start a host may open the circle."
_GRACE = "How long after the end people may still come in."
_PUBLIC = "Listed, with its join link, in the public calendar and Meeting Guide feeds."
_NAMES = "Admins see attendees' display names (otherwise counts only)."
WindowMinutes = Annotated[int, Field(ge=0, le=MAX_WINDOW_MINUTES)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]


class SeriesCreate(Body):
    title: Title
    description: Description = Field(default=None)  # type: ignore[assignment]
    starts_at: StartsAt = Field(description=_FIRST_START)
    timezone: Timezone
    duration_minutes: WholeMinutes
    rrule: Rule = None
    ends_on: EndsOn = None
    capacity: Capacity = Field(default=None)  # type: ignore[assignment]
    lobby_minutes: WindowMinutes = Field(default=None, description=_LOBBY)  # type: ignore[assignment]
    grace_minutes: WindowMinutes = Field(default=None, description=_GRACE)  # type: ignore[assignment]
    public: bool = Field(default=None, description=_PUBLIC)  # type: ignore[assignment]
    attendance_names_visible: bool = Field(default=None, description=_NAMES)  # type: ignore[assignment]


class SeriesUpdate(Body):
    """Any fields of SeriesCreate; the rest stay as they are."""

    title: Title = Field(default=None)  # type: ignore[assignment]
    description: Description = Field(default=None)  # type: ignore[assignment]
    starts_at: StartsAt = Field(default=None, description=_FIRST_START)  # type: ignore[assignment]
    timezone: Timezone = Field(default=None)  # type: ignore[assignment]
    duration_minutes: WholeMinutes = Field(default=None)  # type: ignore[assignment]
    rrule: Rule = None
    ends_on: EndsOn = None
    capacity: Capacity = Field(default=None)  # type: ignore[assignment]
    lobby_minutes: WindowMinutes = Field(default=None, description=_LOBBY)  # type: ignore[assignment]
    grace_minutes: WindowMinutes = Field(default=None, description=_GRACE)  # type: ignore[assignment]
    public: bool = Field(default=None, description=_PUBLIC)  # type: ignore[assignment]
    attendance_names_visible: bool = Field(default=None, description=_NAMES)  # type: ignore[assignment]


class HostLink(Answer):
    id: str
    name: str
    url: Uri | None = Field(
        description=(
            "Give this to this host only: it grants the host role. Present only in the "
            "answer that made or rotated the link (links are stored hashed); null after."
        )
    )
    created_at: DateTime


class HostLinkCreate(Body):
    name: Annotated[str, Field(min_length=1, max_length=MAX_HOST_NAME)]


class Series(Answer):
    id: str
    title: str
    description: str
    starts_at: StartsAt = Field(description=_FIRST_START)
    timezone: Timezone
    duration_minutes: WholeMinutes
    rrule: Rule
    ends_on: EndsOn
    capacity: Capacity
    lobby_minutes: WindowMinutes = Field(description=_LOBBY)
    grace_minutes: WindowMinutes = Field(description=_GRACE)
    public: bool = Field(description=_PUBLIC)
    attendance_names_visible: bool = Field(description=_NAMES)
    join_url: Uri = Field(description="One link for every occurrence. Whoever holds it may join.")
    host_links: list[HostLink]
    next_starts: list[DateTime] = Field(
        max_length=NEXT_STARTS_SHOWN,
        description="The next starts the rule gives (without moves or cancellations).",
    )
    created_at: DateTime
    updated_at: DateTime


class NotKept(Answer):
    original_start: DateTime
    change: Literal["cancelled", "moved"]
    reason: str


class SeriesUpdated(Series):
    not_kept: list[NotKept] = Field(
        description="Moves and cancellations this change could not keep."
    )


class SeriesList(Answer):
    series: list[Series]


class Attendee(Answer):
    display_name: str
    joined_at: DateTime
    left_at: DateTime | None


class Occurrence(Answer):
    id: str
    series_id: str
    title: str
    timezone: str
    starts_at: DateTime
    ends_at: DateTime
    original_start: DateTime = Field(
        description="Where the rule put it (differs from starts_at when moved)."
    )
    moved: bool
    status: Literal["scheduled", "open", "live", "closed", "cancelled"] = Field(
        description=(
            "scheduled; open (the lobby: a host may open it); live (start to end); "
            "closed (after end + grace + any extension); cancelled."
        )
    )
    extended_minutes: Annotated[int, Field(ge=0)]
    present: Annotated[int, Field(ge=0, description="Seated right now.")]
    attended: Annotated[
        int, Field(ge=0, description="Seats taken in it (kept as long as attendance is).")
    ]
    attendees: list[Attendee] | None = Field(
        description="Only when the series opted in to names; otherwise null."
    )


class OccurrenceList(Answer):
    occurrences: list[Occurrence] = Field(max_length=MAX_LISTED)
    truncated: bool = Field(
        description=(
            f"True when more occurrences fall in the range than the {MAX_LISTED} listed (the "
            "soonest): ask again from the last one's start for the rest."
        )
    )


def parse_instant(name: str, value: Any) -> datetime:
    """A query's instant (ISO 8601 with an offset, in the years a schedule may reach), in UTC;
    a value error (pydantic's, with the API's stable message) otherwise."""

    def refused(message: str) -> PydanticCustomError:
        return PydanticCustomError("invalid_field", "{message}", {"message": message})

    if not isinstance(value, str):
        raise refused(f"'{name}' is not an ISO 8601 date-time.")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise refused(f"'{name}' is not an ISO 8601 date-time.") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise refused(f"'{name}' needs an offset, e.g. +01:00 or Z.")
    try:
        instant = instant.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC
        raise refused(f"'{name}' must be in the years {FIRST_YEAR} to {LAST_YEAR}.") from None
    try:
        check_year(name, instant)
    except RecurrenceError as error:
        raise refused(error.message) from None
    return instant


class OccurrenceRange(BaseModel):
    """The query of the occurrence lists (``?from=...&to=...``). Each value is checked here;
    what needs the clock (the defaults, `to` after `from`, the longest span) is checked
    beside the parsing (server/series_api.py ``parse_range``). Other parameters are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    from_: datetime | None = Field(
        default=None,
        alias="from",
        description="Start of the range (ISO 8601 with offset); default now.",
    )
    to: datetime | None = Field(
        default=None,
        description=(
            f"End of the range (exclusive); default `from` + {DEFAULT_RANGE_DAYS} days, "
            f"at most {MAX_RANGE_DAYS} days."
        ),
    )

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _instant(cls, value: Any, info: ValidationInfo) -> datetime:
        return parse_instant("from" if info.field_name == "from_" else "to", value)


class OccurrenceChange(Body):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    cancelled: bool = Field(default=None, description="true cancels, false restores.")  # type: ignore[assignment]
    starts_at: DateTime = Field(default=None, description="Move it here.")  # type: ignore[assignment]


class RecurrencePreviewRequest(Body):
    starts_at: StartsAt = Field(description=_FIRST_START)
    timezone: Timezone
    duration_minutes: WholeMinutes = 60
    rrule: Rule = None
    ends_on: EndsOn = None
    count: Annotated[int, Field(ge=1, le=MAX_PREVIEW)] = 5


class RecurrencePreview(Answer):
    starts: list[DateTime]


# --- moderation ------------------------------------------------------------------------------


class ModerationSettings(Body):
    """Both ways: what a GET gives can be PUT back (``passcode_set`` is ignored)."""

    speaking_mode: Literal["open", "hand_raise"] = Field(
        description="How the circle starts; hosts can switch it live."
    )
    lobby: bool = Field(description="Arrivals wait until a host admits them.")
    passcode: Annotated[str, Field(min_length=1, max_length=MAX_PASSCODE)] | None = Field(
        default=None,
        json_schema_extra={"writeOnly": True},
        description="Write-only: a string sets the passcode, null removes it, leaving "
        "it out keeps the one set. Stored only as a slow salted hash; never returned.",
    )
    passcode_set: bool = Field(
        default=None,  # type: ignore[assignment]
        json_schema_extra={"readOnly": True},
        description="Whether the circle has a passcode (ignored in a PUT).",
    )
    wait_for_host: bool = Field(description="Arrivals wait while no host or co-host is present.")
    no_host_policy: Literal["continue", "hold"] = Field(
        description="With no host or co-host present: carry on, or mute everyone and "
        "hold new arrivals in the lobby."
    )
    allow_rename: bool
    share_seconds: Annotated[int, Field(ge=MIN_SHARE_SECONDS, le=MAX_SHARE_SECONDS)] | None
    crisis_text: str = Field(
        max_length=MAX_CRISIS_TEXT,
        description="Shown in the circle's crisis-resources panel (how to reach help now: "
        "emergency numbers, crisis lines). Empty or blank: the deployment's default "
        "(HEARTH_CRISIS_TEXT) is shown instead.",
    )


class AuditActor(Answer):
    id: str
    label: str
    role: Literal["host", "cohost", "participant", "admin"] = Field(
        description="`admin`: settings an admin changed through this API."
    )


class AuditTarget(Answer):
    id: str
    label: str | None


class AuditEntry(Answer):
    at: DateTime
    action: str = Field(description="e.g. mute, remove, admit, lock")
    actor: AuditActor
    target: AuditTarget | None
    detail: str


class AuditLog(Answer):
    entries: list[AuditEntry]


# --- the Meeting Guide feed ----------------------------------------------------------------

HhMm = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class MeetingGuideMeeting(Answer):
    name: Annotated[str, Field(max_length=255)]
    slug: Annotated[str, Field(max_length=64, pattern=r"^[a-z0-9-]+$")]
    day: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        description="The weekdays it meets on, 0 = Sunday."
    )
    time: HhMm
    end_time: HhMm
    timezone: str
    conference_url: Uri = Field(description="The join link: it launches straight into the circle.")
    conference_url_notes: str
    notes: str = Field(default=None, description="The description, when there is one.")  # type: ignore[assignment]
    updated: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")]


class MeetingGuideFeed(RootModel[list[MeetingGuideMeeting]]):
    """The code4recovery Meeting Guide format: weekly meetings only. A series is listed
    when it meets every week (WEEKLY, or DAILY, with INTERVAL 1) and is running: begun
    (or beginning within 7 days) and with a meeting still to come."""


# --- nodes (several nodes on Redis: docs/architecture.md, "Nodes") -----------------------


class Node(Answer):
    id: str
    url: str
    media_address: str
    participants: int = Field(ge=0)
    circles: int = Field(ge=0)
    cpu: float = Field(ge=0)
    lag_ms: float = Field(ge=0)
    seen_at: float = Field(description="Unix time of its heartbeat.")
    draining: bool


class NodeList(Answer):
    nodes: list[Node]


class NodeDrain(Answer):
    id: str
    draining: bool


# Every model the document names, in the order it lists them.
DOCUMENTED: tuple[type[BaseModel], ...] = (
    CircleCreate,
    Circle,
    CircleList,
    SeriesCreate,
    SeriesUpdate,
    Series,
    SeriesUpdated,
    SeriesList,
    HostLink,
    HostLinkCreate,
    Occurrence,
    OccurrenceList,
    OccurrenceChange,
    RecurrencePreviewRequest,
    RecurrencePreview,
    MeetingGuideFeed,
    Error,
    ModerationSettings,
    AuditLog,
    AuditEntry,
    Node,
    NodeList,
    NodeDrain,
)


def component_schemas() -> dict[str, Any]:
    """``components.schemas`` of the OpenAPI document, generated from the models."""
    from pydantic.json_schema import GenerateJsonSchema, models_json_schema

    class WithoutTitles(GenerateJsonSchema):
        # pydantic titles every property after its name; the document says nothing twice.
        def field_title_should_be_set(self, schema: Any) -> bool:
            return False

    _, document = models_json_schema(
        [(model, "validation") for model in DOCUMENTED],
        ref_template="#/components/schemas/{model}",
        schema_generator=WithoutTitles,
    )
    schemas: dict[str, Any] = document["$defs"]
    for schema in schemas.values():
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            # ``default=None`` marks an optional field whose absence means "as before" or
            # "the server's default": null is no value for it, so the document shows none.
            if "default" in prop and prop["default"] is None and not _allows_null(prop):
                del prop["default"]
    return schemas


def _allows_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        option.get("type") == "null" for option in schema.get("anyOf", [])
    )
