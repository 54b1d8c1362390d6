"""The admin API, written down as an OpenAPI 3.1 document (served at /api/v1/openapi.json).

Tests validate this document and check real responses against its schemas, so it cannot
drift from server/api.py unnoticed.
"""

from __future__ import annotations

import copy
from typing import Any

from rooms.machine import MAX_SHARE_SECONDS, MIN_SHARE_SECONDS
from server.errors import ERROR_CODES

API_BASE = "/api/v1"

_ISO_WITH_OFFSET = "ISO 8601 date-time with an offset (`Z` or `+01:00`); returned in UTC."

CIRCLE_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "starts_at", "duration_minutes", "timezone"],
    "properties": {
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Shown to participants. Trimmed; no control characters.",
        },
        "starts_at": {"type": "string", "format": "date-time", "description": _ISO_WITH_OFFSET},
        "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
        "timezone": {
            "type": "string",
            "description": "IANA time zone name, e.g. `Europe/Berlin`.",
            "examples": ["Europe/Berlin"],
        },
        "capacity": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "description": (
                "Most people seated at once (hosts always get in). Default: the server's "
                "HEARTH_DEFAULT_CAPACITY (30)."
            ),
        },
    },
}

CIRCLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "title",
        "starts_at",
        "ends_at",
        "duration_minutes",
        "timezone",
        "status",
        "join_url",
        "host_url",
        "capacity",
    ],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"},
        "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
        "timezone": {"type": "string"},
        "status": {"type": "string", "enum": ["scheduled", "open", "ended"]},
        "join_url": {
            "type": "string",
            "format": "uri",
            "description": "Give this to participants. Whoever holds it may join.",
        },
        "capacity": {"type": "integer", "minimum": 1, "maximum": 1000},
        "host_url": {
            "type": ["string", "null"],
            "format": "uri",
            "description": (
                "Give this to hosts only: it grants the host role. The series' first host "
                "link, in the answer that created the circle only (host links are stored "
                "hashed): null when listed or fetched later."
            ),
        },
    },
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string", "description": "For people; may be reworded."},
                "field": {
                    "type": ["string", "null"],
                    "description": "The request field at fault, when there is one.",
                },
            },
        }
    },
}


MODERATION_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "speaking_mode",
        "lobby",
        "wait_for_host",
        "no_host_policy",
        "allow_rename",
        "share_seconds",
        "crisis_text",
    ],
    "properties": {
        "speaking_mode": {
            "type": "string",
            "enum": ["open", "hand_raise"],
            "description": "How the circle starts; hosts can switch it live.",
        },
        "lobby": {"type": "boolean", "description": "Arrivals wait until a host admits them."},
        "passcode": {
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": 100,
            "writeOnly": True,
            "description": "Write-only: a string sets the passcode, null removes it, leaving "
            "it out keeps the one set. Stored only as a slow salted hash; never returned.",
        },
        "passcode_set": {
            "type": "boolean",
            "readOnly": True,
            "description": "Whether the circle has a passcode (ignored in a PUT).",
        },
        "wait_for_host": {
            "type": "boolean",
            "description": "Arrivals wait while no host or co-host is present.",
        },
        "no_host_policy": {
            "type": "string",
            "enum": ["continue", "hold"],
            "description": "With no host or co-host present: carry on, or mute everyone and "
            "hold new arrivals in the lobby.",
        },
        "allow_rename": {"type": "boolean"},
        "share_seconds": {
            "type": ["integer", "null"],
            "minimum": MIN_SHARE_SECONDS,
            "maximum": MAX_SHARE_SECONDS,
        },
        "crisis_text": {
            "type": "string",
            "maxLength": 4000,
            "description": "Shown in the circle's crisis-resources panel.",
        },
    },
}

AUDIT_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "action", "actor", "target", "detail"],
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "action": {"type": "string", "description": "e.g. mute, remove, admit, lock"},
        "actor": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "label", "role"],
            "properties": {
                "id": {"type": "string"},
                "label": {"type": "string"},
                "role": {"type": "string", "enum": ["host", "cohost", "participant"]},
            },
        },
        "target": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["id", "label"],
            "properties": {"id": {"type": "string"}, "label": {"type": ["string", "null"]}},
        },
        "detail": {"type": "string"},
    },
}


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


_CIRCLE_ID = {"name": "circle_id", "in": "path", "required": True, "schema": {"type": "string"}}

_UNAUTHORIZED = _error("No bearer token, or not an admin token (`unauthorized`).")

_DATE_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_SERIES_ID = _path_param("series_id", "A series id.")
_OCCURRENCE_ID = _path_param("occurrence_id", "An occurrence id (from the occurrence list).")
_LINK_ID = _path_param("link_id", "A host link id.")
_RANGE = [
    {
        "name": "from",
        "in": "query",
        "required": False,
        "description": "Start of the range (ISO 8601 with offset); default now.",
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "to",
        "in": "query",
        "required": False,
        "description": "End of the range (exclusive); default `from` + 28 days, at most 400 days.",
        "schema": {"type": "string", "format": "date-time"},
    },
]

_SERIES_PROPERTIES: dict[str, Any] = {
    "title": CIRCLE_CREATE_SCHEMA["properties"]["title"],
    "description": {"type": "string", "maxLength": 2000},
    "starts_at": {
        "type": "string",
        "format": "date-time",
        "description": "The first occurrence. "
        + _ISO_WITH_OFFSET
        + " Its wall-clock time in `timezone` is the time every occurrence keeps.",
    },
    "timezone": CIRCLE_CREATE_SCHEMA["properties"]["timezone"],
    "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
    "rrule": {
        "type": ["string", "null"],
        "maxLength": 500,
        "description": (
            "RFC 5545 RRULE value (no `RRULE:` prefix, no DTSTART), DAILY to YEARLY, e.g. "
            "`FREQ=WEEKLY;BYDAY=TU` or `FREQ=MONTHLY;BYDAY=1SU`; may carry COUNT or UNTIL. "
            "Null: a one-off circle."
        ),
        "examples": ["FREQ=WEEKLY;BYDAY=TU"],
    },
    "ends_on": {
        "type": ["string", "null"],
        "format": "date",
        "description": "Last local date with an occurrence (inclusive).",
    },
    "capacity": {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "description": (
            "Most people seated at once (hosts always get in). Default: the server's "
            "HEARTH_DEFAULT_CAPACITY (30)."
        ),
    },
    "lobby_minutes": {
        "type": "integer",
        "minimum": 0,
        "maximum": 240,
        "description": "How long before the start a host may open the circle.",
    },
    "grace_minutes": {
        "type": "integer",
        "minimum": 0,
        "maximum": 240,
        "description": "How long after the end people may still come in.",
    },
    "public": {
        "type": "boolean",
        "description": "Listed, with its join link, in the public calendar and Meeting Guide feeds.",  # noqa: E501
    },
    "attendance_names_visible": {
        "type": "boolean",
        "description": "Admins see attendees' display names (otherwise counts only).",
    },
}

SERIES_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "starts_at", "timezone", "duration_minutes"],
    "properties": _SERIES_PROPERTIES,
}

SERIES_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Any fields of SeriesCreate; the rest stay as they are.",
    "properties": _SERIES_PROPERTIES,
}

HOST_LINK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "url", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "url": {
            "type": ["string", "null"],
            "format": "uri",
            "description": (
                "Give this to this host only: it grants the host role. Present only in the "
                "answer that made or rotated the link (links are stored hashed); null after."
            ),
        },
        "created_at": _DATE_TIME,
    },
}

SERIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        *_SERIES_PROPERTIES,
        "id",
        "join_url",
        "host_links",
        "next_starts",
        "created_at",
        "updated_at",
    ],
    "properties": {
        **_SERIES_PROPERTIES,
        "title": {"type": "string"},
        "description": {"type": "string"},
        "id": {"type": "string"},
        "join_url": {
            "type": "string",
            "format": "uri",
            "description": "One link for every occurrence. Whoever holds it may join.",
        },
        "host_links": {"type": "array", "items": {"$ref": "#/components/schemas/HostLink"}},
        "next_starts": {
            "type": "array",
            "items": _DATE_TIME,
            "maxItems": 5,
            "description": "The next starts the rule gives (without moves or cancellations).",
        },
        "created_at": _DATE_TIME,
        "updated_at": _DATE_TIME,
    },
}

SERIES_UPDATED_SCHEMA: dict[str, Any] = {
    **SERIES_SCHEMA,
    "required": [*SERIES_SCHEMA["required"], "not_kept"],
    "properties": {
        **SERIES_SCHEMA["properties"],
        "not_kept": {
            "type": "array",
            "description": "Moves and cancellations this change could not keep.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["original_start", "change", "reason"],
                "properties": {
                    "original_start": _DATE_TIME,
                    "change": {"type": "string", "enum": ["cancelled", "moved"]},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}

OCCURRENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "series_id",
        "title",
        "timezone",
        "starts_at",
        "ends_at",
        "original_start",
        "moved",
        "status",
        "extended_minutes",
        "present",
        "attended",
        "attendees",
    ],
    "properties": {
        "id": {"type": "string"},
        "series_id": {"type": "string"},
        "title": {"type": "string"},
        "timezone": {"type": "string"},
        "starts_at": _DATE_TIME,
        "ends_at": _DATE_TIME,
        "original_start": {
            **_DATE_TIME,
            "description": "Where the rule put it (differs from starts_at when moved).",
        },
        "moved": {"type": "boolean"},
        "status": {
            "type": "string",
            "enum": ["scheduled", "open", "live", "closed", "cancelled"],
            "description": (
                "scheduled; open (the lobby: a host may open it); live (start to end); "
                "closed (after end + grace + any extension); cancelled."
            ),
        },
        "extended_minutes": {"type": "integer", "minimum": 0},
        "present": {"type": "integer", "minimum": 0, "description": "Seated right now."},
        "attended": {
            "type": "integer",
            "minimum": 0,
            "description": "Seats taken in it (kept as long as attendance is).",
        },
        "attendees": {
            "type": ["array", "null"],
            "description": "Only when the series opted in to names; otherwise null.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["display_name", "joined_at", "left_at"],
                "properties": {
                    "display_name": {"type": "string"},
                    "joined_at": _DATE_TIME,
                    "left_at": _NULLABLE_DATE_TIME,
                },
            },
        },
    },
}

OCCURRENCE_CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "cancelled": {"type": "boolean", "description": "true cancels, false restores."},
        "starts_at": {"type": "string", "format": "date-time", "description": "Move it here."},
    },
}

PREVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["starts_at", "timezone"],
    "properties": {
        "starts_at": _SERIES_PROPERTIES["starts_at"],
        "timezone": _SERIES_PROPERTIES["timezone"],
        "duration_minutes": _SERIES_PROPERTIES["duration_minutes"],
        "rrule": _SERIES_PROPERTIES["rrule"],
        "ends_on": _SERIES_PROPERTIES["ends_on"],
        "count": {"type": "integer", "minimum": 1, "maximum": 20},
    },
}


def _body(schema_name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


_BAD_BODY = {
    "400": _error("The body is not a JSON object (`invalid_json`)."),
    "413": _error("The body is too large (`payload_too_large`)."),
    "422": _error("A field is missing, unknown or invalid (`invalid_field`, naming it)."),
}
_NO_SERIES = _error("No series has this id (`not_found`).")
_NO_CONTENT = {"description": "Done; no body."}


def _calendar(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"text/calendar": {"schema": {"type": "string"}}},
    }


SERIES_PATHS: dict[str, Any] = {
    f"{API_BASE}/series": {
        "post": {
            "operationId": "createSeries",
            "summary": "Schedule a series (a one-off circle when `rrule` is null)",
            "requestBody": _body("SeriesCreate"),
            "responses": {
                "201": _json("Series", "Scheduled; the links are in the body."),
                "401": _UNAUTHORIZED,
                **_BAD_BODY,
            },
        },
        "get": {
            "operationId": "listSeries",
            "summary": "Every series, by first start",
            "responses": {"200": _json("SeriesList", "Every series."), "401": _UNAUTHORIZED},
        },
    },
    f"{API_BASE}/series/{{series_id}}": {
        "parameters": [_SERIES_ID],
        "get": {
            "operationId": "getSeries",
            "summary": "One series",
            "responses": {
                "200": _json("Series", "The series."),
                "401": _UNAUTHORIZED,
                "404": _NO_SERIES,
            },
        },
        "patch": {
            "operationId": "updateSeries",
            "summary": "Change a series",
            "description": (
                "When the schedule changes, the moves and cancellations of occurrences that "
                "have not begun are kept where they still fit: the original start is still a "
                "meeting of the new schedule and a move overlaps no other meeting. The others "
                "are dropped and listed in `not_kept`; nothing cancelled comes back unlisted."
            ),
            "requestBody": _body("SeriesUpdate"),
            "responses": {
                "200": _json("SeriesUpdated", "The series as it is now, and what was not kept."),
                "401": _UNAUTHORIZED,
                "404": _NO_SERIES,
                **_BAD_BODY,
            },
        },
        "delete": {
            "operationId": "deleteSeries",
            "summary": "Delete a series, its occurrences and their attendance",
            "responses": {"204": _NO_CONTENT, "401": _UNAUTHORIZED, "404": _NO_SERIES},
        },
    },
    f"{API_BASE}/series/{{series_id}}/join-link/rotate": {
        "parameters": [_SERIES_ID],
        "post": {
            "operationId": "rotateJoinLink",
            "summary": "Give the series a new join link; the old one stops working",
            "responses": {
                "200": _json("Series", "The series with its new join link."),
                "401": _UNAUTHORIZED,
                "404": _NO_SERIES,
            },
        },
    },
    f"{API_BASE}/series/{{series_id}}/occurrences": {
        "parameters": [_SERIES_ID],
        "get": {
            "operationId": "listSeriesOccurrences",
            "summary": "Occurrences of a series starting in a date range",
            "parameters": _RANGE,
            "responses": {
                "200": _json("OccurrenceList", "Soonest first, cancelled ones included."),
                "401": _UNAUTHORIZED,
                "404": _NO_SERIES,
                "422": _error("`from` or `to` is not a date-time, or the range is wrong."),
            },
        },
    },
    f"{API_BASE}/series/{{series_id}}/occurrences/{{occurrence_id}}": {
        "parameters": [_SERIES_ID, _OCCURRENCE_ID],
        "patch": {
            "operationId": "changeOccurrence",
            "summary": "Cancel, restore or move one occurrence",
            "requestBody": _body("OccurrenceChange"),
            "responses": {
                "200": _json("Occurrence", "The occurrence as it is now."),
                "401": _UNAUTHORIZED,
                "404": _error("No such series, or it has no such occurrence (`not_found`)."),
                **_BAD_BODY,
            },
        },
    },
    f"{API_BASE}/series/{{series_id}}/host-links": {
        "parameters": [_SERIES_ID],
        "post": {
            "operationId": "addHostLink",
            "summary": "Add a named host link to the series' roster",
            "requestBody": _body("HostLinkCreate"),
            "responses": {
                "201": _json("HostLink", "The new link."),
                "401": _UNAUTHORIZED,
                "404": _NO_SERIES,
                **_BAD_BODY,
            },
        },
    },
    f"{API_BASE}/series/{{series_id}}/host-links/{{link_id}}": {
        "parameters": [_SERIES_ID, _LINK_ID],
        "delete": {
            "operationId": "revokeHostLink",
            "summary": "Revoke one host link; the others keep working",
            "responses": {
                "204": _NO_CONTENT,
                "401": _UNAUTHORIZED,
                "404": _error("No such series or host link (`not_found`)."),
            },
        },
    },
    f"{API_BASE}/series/{{series_id}}/host-links/{{link_id}}/rotate": {
        "parameters": [_SERIES_ID, _LINK_ID],
        "post": {
            "operationId": "rotateHostLink",
            "summary": "Give one host a new link; their old one stops working",
            "responses": {
                "200": _json("HostLink", "The link with its new URL."),
                "401": _UNAUTHORIZED,
                "404": _error("No such series or host link (`not_found`)."),
            },
        },
    },
    f"{API_BASE}/occurrences": {
        "get": {
            "operationId": "listOccurrences",
            "summary": "Occurrences of every series starting in a date range (the week view)",
            "parameters": _RANGE,
            "responses": {
                "200": _json("OccurrenceList", "Soonest first, cancelled ones included."),
                "401": _UNAUTHORIZED,
                "422": _error("`from` or `to` is not a date-time, or the range is wrong."),
            },
        },
    },
    f"{API_BASE}/recurrence/preview": {
        "post": {
            "operationId": "previewRecurrence",
            "summary": "The first starts a schedule would give (nothing is stored)",
            "requestBody": _body("RecurrencePreviewRequest"),
            "responses": {
                "200": _json("RecurrencePreview", "The starts, in UTC."),
                "401": _UNAUTHORIZED,
                **_BAD_BODY,
            },
        },
    },
    f"{API_BASE}/feeds/calendar.ics": {
        "get": {
            "operationId": "publicCalendar",
            "summary": "iCalendar feed of every public series",
            "security": [],
            "responses": {"200": _calendar("RFC 5545, one VEVENT (with RRULE) per series.")},
        },
    },
    f"{API_BASE}/feeds/series/{{series_id}}.ics": {
        "parameters": [_SERIES_ID],
        "get": {
            "operationId": "seriesCalendar",
            "summary": "iCalendar feed of one public series",
            "security": [],
            "responses": {
                "200": _calendar("RFC 5545."),
                "404": _error("No public series has this id (`not_found`)."),
            },
        },
    },
    f"{API_BASE}/feeds/meeting-guide.json": {
        "get": {
            "operationId": "meetingGuideFeed",
            "summary": "Meeting Guide feed (code4recovery format) of the public weekly series",
            "security": [],
            "responses": {"200": _json("MeetingGuideFeed", "One entry per running weekly series.")},
        },
    },
}

_HH_MM = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
MEETING_GUIDE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": (
        "The code4recovery Meeting Guide format: weekly meetings only. A series is listed "
        "when it meets every week (WEEKLY, or DAILY, with INTERVAL 1) and is running: begun "
        "(or beginning within 7 days) and with a meeting still to come."
    ),
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "name",
            "slug",
            "day",
            "time",
            "end_time",
            "timezone",
            "conference_url",
            "conference_url_notes",
            "updated",
        ],
        "properties": {
            "name": {"type": "string", "maxLength": 255},
            "slug": {"type": "string", "maxLength": 64, "pattern": "^[a-z0-9-]+$"},
            "day": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 6},
                "description": "The weekdays it meets on, 0 = Sunday.",
            },
            "time": _HH_MM,
            "end_time": _HH_MM,
            "timezone": {"type": "string"},
            "conference_url": {
                "type": "string",
                "format": "uri",
                "description": "The join link: it launches straight into the circle.",
            },
            "conference_url_notes": {"type": "string"},
            "notes": {"type": "string", "description": "The description, when there is one."},
            "updated": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}$"},
        },
    },
}

SERIES_COMPONENTS: dict[str, Any] = {
    "SeriesCreate": SERIES_CREATE_SCHEMA,
    "SeriesUpdate": SERIES_UPDATE_SCHEMA,
    "Series": SERIES_SCHEMA,
    "SeriesUpdated": SERIES_UPDATED_SCHEMA,
    "SeriesList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["series"],
        "properties": {
            "series": {"type": "array", "items": {"$ref": "#/components/schemas/Series"}}
        },
    },
    "HostLink": HOST_LINK_SCHEMA,
    "HostLinkCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
    },
    "Occurrence": OCCURRENCE_SCHEMA,
    "OccurrenceList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["occurrences", "truncated"],
        "properties": {
            "occurrences": {
                "type": "array",
                "maxItems": 5000,
                "items": {"$ref": "#/components/schemas/Occurrence"},
            },
            "truncated": {
                "type": "boolean",
                "description": (
                    "True when more occurrences fall in the range than the 5000 listed (the "
                    "soonest): ask again from the last one's start for the rest."
                ),
            },
        },
    },
    "OccurrenceChange": OCCURRENCE_CHANGE_SCHEMA,
    "RecurrencePreviewRequest": PREVIEW_SCHEMA,
    "RecurrencePreview": {
        "type": "object",
        "additionalProperties": False,
        "required": ["starts"],
        "properties": {"starts": {"type": "array", "items": _DATE_TIME}},
    },
    "MeetingGuideFeed": MEETING_GUIDE_SCHEMA,
}


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Hearth admin API",
        "version": "1",
        "description": (
            "Schedule audio-only support circles and hand out their links. Every error has "
            "the shape of the `Error` schema, with a stable `code`."
        ),
    },
    "security": [{"bearerAuth": []}],
    "paths": {
        f"{API_BASE}/circles": {
            "post": {
                "operationId": "createCircle",
                "summary": "Schedule a circle",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CircleCreate"}
                        }
                    },
                },
                "responses": {
                    "201": _json("Circle", "Scheduled; the links are in the body."),
                    "400": _error("The body is not a JSON object (`invalid_json`)."),
                    "401": _UNAUTHORIZED,
                    "413": _error("The body is too large (`payload_too_large`)."),
                    "422": _error("A field is missing, unknown or invalid (`invalid_field`)."),
                },
            },
            "get": {
                "operationId": "listCircles",
                "summary": "List circles, soonest first",
                "responses": {
                    "200": _json("CircleList", "Every circle."),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        f"{API_BASE}/circles/{{circle_id}}": {
            "get": {
                "operationId": "getCircle",
                "summary": "One circle",
                "parameters": [
                    {
                        "name": "circle_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json("Circle", "The circle."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No circle has this id (`not_found`)."),
                },
            }
        },
        **SERIES_PATHS,
        f"{API_BASE}/circles/{{circle_id}}/moderation": {
            "get": {
                "operationId": "getModerationSettings",
                "summary": "The moderation settings of a circle's series",
                "parameters": [_CIRCLE_ID],
                "responses": {
                    "200": _json("ModerationSettings", "The settings (defaults if never set)."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No circle has this id (`not_found`)."),
                },
            },
            "put": {
                "operationId": "putModerationSettings",
                "summary": "Replace the moderation settings of a circle's series",
                "description": "Settings belong to the circle's series: every occurrence runs "
                "by them. A live occurrence takes them at once, through its own command path: "
                "a changed speaking mode, share time or lobby is applied as if a host changed "
                "it (turning the lobby off lets the waiting in); a passcode is asked of "
                "newcomers; everyone present is told (`room_updated`). What the admin left "
                "unchanged keeps the hosts' live choice. An occurrence nobody has opened yet "
                "may be named by the id the occurrence listings give it.",
                "parameters": [_CIRCLE_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ModerationSettings"}
                        }
                    },
                },
                "responses": {
                    "200": _json("ModerationSettings", "Stored."),
                    "400": _error("The body is not a JSON object (`invalid_json`)."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No circle has this id (`not_found`)."),
                    "422": _error("A field is missing, unknown or invalid (`invalid_field`)."),
                },
            },
        },
        f"{API_BASE}/series/{{series_id}}/moderation": {
            "get": {
                "operationId": "getSeriesModerationSettings",
                "summary": "The moderation settings of a series",
                "parameters": [_SERIES_ID],
                "responses": {
                    "200": _json("ModerationSettings", "The settings (defaults if never set)."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No series has this id (`not_found`)."),
                },
            },
            "put": {
                "operationId": "putSeriesModerationSettings",
                "summary": "Replace the moderation settings of a series",
                "description": "As `PUT /circles/{circle_id}/moderation`, by series: usable "
                "before any occurrence has opened, so the first meeting is protected too.",
                "parameters": [_SERIES_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ModerationSettings"}
                        }
                    },
                },
                "responses": {
                    "200": _json("ModerationSettings", "Stored and applied to live occurrences."),
                    "400": _error("The body is not a JSON object (`invalid_json`)."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No series has this id (`not_found`)."),
                    "422": _error("A field is missing, unknown or invalid (`invalid_field`)."),
                },
            },
        },
        f"{API_BASE}/circles/{{circle_id}}/audit": {
            "get": {
                "operationId": "getModerationAudit",
                "summary": "A circle's moderation actions, oldest first",
                "description": "Who did what to whom, when. Kept for HEARTH_AUDIT_RETENTION_DAYS "
                "(default 30), then purged.",
                "parameters": [_CIRCLE_ID],
                "responses": {
                    "200": _json("AuditLog", "The actions."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No circle has this id (`not_found`)."),
                },
            }
        },
        f"{API_BASE}/nodes": {
            "get": {
                "operationId": "listNodes",
                "summary": "The nodes serving circles, with their load",
                "description": "With several nodes (HEARTH_REDIS_URL), every node with a live "
                "heartbeat: id, URL, media address, participants, circles, CPU share, loop "
                "lag, whether it drains. Empty with one node. Any node gives the same list.",
                "responses": {
                    "200": _json("NodeList", "The nodes."),
                    "401": _UNAUTHORIZED,
                    "503": _error("The node registry cannot be reached (`nodes_unavailable`)."),
                },
            }
        },
        f"{API_BASE}/nodes/{{node_id}}/drain": {
            "post": {
                "operationId": "drainNode",
                "summary": "Move a node's live circles to the other nodes",
                "description": "The node stops taking circles and hands each live one over: "
                "its people are told to reconnect (close 1012) and get their seats back on "
                "another node. The process stays up until stopped. Any node takes the call.",
                "parameters": [_path_param("node_id", "A node's id, as listed.")],
                "responses": {
                    "202": _json("NodeDrain", "The drain has begun."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No live node has this id (`not_found`)."),
                    "503": _error(
                        "The registry or that node did not answer (`nodes_unavailable`)."
                    ),
                },
            }
        },
        f"{API_BASE}/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An admin token (HEARTH_ADMIN_TOKEN, or one the server issued).",
            }
        },
        "schemas": {
            "CircleCreate": CIRCLE_CREATE_SCHEMA,
            "Circle": CIRCLE_SCHEMA,
            "CircleList": {
                "type": "object",
                "additionalProperties": False,
                "required": ["circles"],
                "properties": {
                    "circles": {"type": "array", "items": {"$ref": "#/components/schemas/Circle"}}
                },
            },
            **SERIES_COMPONENTS,
            "Error": ERROR_SCHEMA,
            "ModerationSettings": MODERATION_SETTINGS_SCHEMA,
            "AuditLog": {
                "type": "object",
                "additionalProperties": False,
                "required": ["entries"],
                "properties": {
                    "entries": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/AuditEntry"},
                    }
                },
            },
            "AuditEntry": AUDIT_ENTRY_SCHEMA,
            "NodeList": {
                "type": "object",
                "additionalProperties": False,
                "required": ["nodes"],
                "properties": {
                    "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
                },
            },
            "Node": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "id",
                    "url",
                    "media_address",
                    "participants",
                    "circles",
                    "cpu",
                    "lag_ms",
                    "seen_at",
                    "draining",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "url": {"type": "string"},
                    "media_address": {"type": "string"},
                    "participants": {"type": "integer", "minimum": 0},
                    "circles": {"type": "integer", "minimum": 0},
                    "cpu": {"type": "number", "minimum": 0},
                    "lag_ms": {"type": "number", "minimum": 0},
                    "seen_at": {"type": "number", "description": "Unix time of its heartbeat."},
                    "draining": {"type": "boolean"},
                },
            },
            "NodeDrain": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "draining"],
                "properties": {"id": {"type": "string"}, "draining": {"type": "boolean"}},
            },
        },
    },
}


def _operation_parameters(paths: dict[str, Any]) -> dict[str, Any]:
    """Path-level parameters copied into each operation (tests list a path's keys as methods)."""
    result: dict[str, Any] = {}
    for path, item in paths.items():
        shared = item.get("parameters", [])
        result[path] = {
            method: {**op, "parameters": [*shared, *op.get("parameters", [])]} if shared else op
            for method, op in item.items()
            if method != "parameters"
        }
    return result


_DOCUMENT["paths"] = _operation_parameters(_DOCUMENT["paths"])


def openapi_document() -> dict[str, Any]:
    """The document, as a fresh copy (so no caller can change the one served)."""
    return copy.deepcopy(_DOCUMENT)
