"""The admin API as an OpenAPI 3.1 document (served at /api/v1/openapi.json).

The schemas are generated from the pydantic models in server/api_models.py, the same models
that validate request bodies; what is written here is only the routes: which model each one
takes and answers with, and what each status means. Tests validate the document and check
real responses against it (tests/unit/test_api.py, tests/contract).
"""

from __future__ import annotations

import copy
from typing import Any

from server.api_models import component_schemas

API_BASE = "/api/v1"


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
        "patch": {
            "operationId": "renameHostLink",
            "summary": "Rename one host link; its URL stays the same (and is not shown)",
            "requestBody": _body("HostLinkCreate"),
            "responses": {
                "200": _json("HostLink", "The link under its new name; `url` is null."),
                "401": _UNAUTHORIZED,
                "404": _error("No such series or host link (`not_found`)."),
                **_BAD_BODY,
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
        "schemas": component_schemas(),
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
