"""The admin API as an OpenAPI 3.1 document (served at /api/v1/openapi.json).

Generated: the schemas from the pydantic models in server/api_models.py (the same models
that validate request bodies and build the answers), the operations from the table below,
which names each route's models as classes (so a renamed or removed model fails at import,
not in a client). Tests validate the document, check that it lists every route the server
has, and check real responses against it (tests/unit/test_api.py, tests/contract).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel

from server import api_models as m

API_BASE = "/api/v1"

# What a response is: a model, a calendar (text/calendar), or nothing (204).
Content = type[BaseModel] | Literal["calendar", "none", "object"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below API_BASE
    operation_id: str
    summary: str
    responses: dict[int, tuple[Content, str]]
    body: type[BaseModel] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    query: type[BaseModel] | None = None  # its fields are the query parameters
    description: str | None = None
    public: bool = False  # no bearer token needed


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields (server/api_models.py) as OpenAPI query parameters: the name
    the client sends, the description and the value's schema from the model itself."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        # An absent parameter is the model's None; a query has no null to send.
        (value,) = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": field["description"],
                "schema": {k: v for k, v in value.items() if k not in ("title", "default")},
            }
        )
    return parameters


CIRCLE_ID = _path_param("circle_id", "A circle (occurrence) id.")
SERIES_ID = _path_param("series_id", "A series id.")
OCCURRENCE_ID = _path_param("occurrence_id", "An occurrence id (from the occurrence list).")
LINK_ID = _path_param("link_id", "A host link id.")

UNAUTHORIZED = {401: (m.Error, "No bearer token, or not an admin token (`unauthorized`).")}
BAD_BODY: dict[int, tuple[Content, str]] = {
    400: (m.Error, "The body is not a JSON object (`invalid_json`)."),
    413: (m.Error, "The body is too large (`payload_too_large`)."),
    422: (m.Error, "A field is missing, unknown or invalid (`invalid_field`, naming it)."),
}
BAD_RANGE = {422: (m.Error, "`from` or `to` is not a date-time, or the range is wrong.")}
NO_SERIES = {404: (m.Error, "No series has this id (`not_found`).")}
NO_CIRCLE = {404: (m.Error, "No circle has this id (`not_found`).")}
NO_LINK = {404: (m.Error, "No such series or host link (`not_found`).")}
DONE: dict[int, tuple[Content, str]] = {204: ("none", "Done; no body.")}

OPERATIONS: tuple[Operation, ...] = (
    # --- nodes
    Operation(
        "get",
        "/nodes",
        "listNodes",
        "The nodes serving circles, with their load",
        {
            200: (m.NodeList, "The nodes."),
            **UNAUTHORIZED,
            503: (m.Error, "The node registry cannot be reached (`nodes_unavailable`)."),
        },
        description=(
            "With several nodes (HEARTH_REDIS_URL), every node with a live heartbeat: id, URL, "
            "media address, participants, circles, CPU share, loop lag, whether it drains. "
            "Empty with one node. Any node gives the same list."
        ),
    ),
    Operation(
        "post",
        "/nodes/{node_id}/drain",
        "drainNode",
        "Move a node's live circles to the other nodes",
        {
            202: (m.NodeDrain, "The drain has begun."),
            **UNAUTHORIZED,
            404: (m.Error, "No live node has this id (`not_found`)."),
            503: (m.Error, "The registry or that node did not answer (`nodes_unavailable`)."),
        },
        parameters=(_path_param("node_id", "A node's id, as listed."),),
        description=(
            "The node stops taking circles and hands each live one over: its people are told "
            "to reconnect (close 1012) and get their seats back on another node. The process "
            "stays up until stopped. Any node takes the call."
        ),
    ),
    # --- one-off circles
    Operation(
        "post",
        "/circles",
        "createCircle",
        "Schedule a circle",
        {201: (m.Circle, "Scheduled; the links are in the body."), **UNAUTHORIZED, **BAD_BODY},
        body=m.CircleCreate,
    ),
    Operation(
        "get",
        "/circles",
        "listCircles",
        "List circles, soonest first",
        {200: (m.CircleList, "Every circle."), **UNAUTHORIZED},
    ),
    Operation(
        "get",
        "/circles/{circle_id}",
        "getCircle",
        "One circle",
        {200: (m.Circle, "The circle."), **UNAUTHORIZED, **NO_CIRCLE},
        parameters=(CIRCLE_ID,),
    ),
    # --- series
    Operation(
        "post",
        "/series",
        "createSeries",
        "Schedule a series (a one-off circle when `rrule` is null)",
        {201: (m.Series, "Scheduled; the links are in the body."), **UNAUTHORIZED, **BAD_BODY},
        body=m.SeriesCreate,
    ),
    Operation(
        "get",
        "/series",
        "listSeries",
        "Every series, by first start",
        {200: (m.SeriesList, "Every series."), **UNAUTHORIZED},
    ),
    Operation(
        "get",
        "/series/{series_id}",
        "getSeries",
        "One series",
        {200: (m.Series, "The series."), **UNAUTHORIZED, **NO_SERIES},
        parameters=(SERIES_ID,),
    ),
    Operation(
        "patch",
        "/series/{series_id}",
        "updateSeries",
        "Change a series",
        {
            200: (m.SeriesUpdated, "The series as it is now, and what was not kept."),
            **UNAUTHORIZED,
            **NO_SERIES,
            **BAD_BODY,
        },
        body=m.SeriesUpdate,
        parameters=(SERIES_ID,),
        description=(
            "When the schedule changes, the moves and cancellations of occurrences that "
            "have not begun are kept where they still fit: the original start is still a "
            "meeting of the new schedule and a move overlaps no other meeting. The others "
            "are dropped and listed in `not_kept`; nothing cancelled comes back unlisted."
        ),
    ),
    Operation(
        "delete",
        "/series/{series_id}",
        "deleteSeries",
        "Delete a series, its occurrences and their attendance",
        {**DONE, **UNAUTHORIZED, **NO_SERIES},
        parameters=(SERIES_ID,),
    ),
    Operation(
        "post",
        "/series/{series_id}/join-link/rotate",
        "rotateJoinLink",
        "Give the series a new join link; the old one stops working",
        {200: (m.Series, "The series with its new join link."), **UNAUTHORIZED, **NO_SERIES},
        parameters=(SERIES_ID,),
    ),
    Operation(
        "get",
        "/series/{series_id}/occurrences",
        "listSeriesOccurrences",
        "Occurrences of a series starting in a date range",
        {
            200: (m.OccurrenceList, "Soonest first, cancelled ones included."),
            **UNAUTHORIZED,
            **NO_SERIES,
            **BAD_RANGE,
        },
        parameters=(SERIES_ID,),
        query=m.OccurrenceRange,
    ),
    Operation(
        "patch",
        "/series/{series_id}/occurrences/{occurrence_id}",
        "changeOccurrence",
        "Cancel, restore or move one occurrence",
        {
            200: (m.Occurrence, "The occurrence as it is now."),
            **UNAUTHORIZED,
            404: (m.Error, "No such series, or it has no such occurrence (`not_found`)."),
            **BAD_BODY,
        },
        body=m.OccurrenceChange,
        parameters=(SERIES_ID, OCCURRENCE_ID),
    ),
    Operation(
        "post",
        "/series/{series_id}/host-links",
        "addHostLink",
        "Add a named host link to the series' roster",
        {201: (m.HostLink, "The new link."), **UNAUTHORIZED, **NO_SERIES, **BAD_BODY},
        body=m.HostLinkCreate,
        parameters=(SERIES_ID,),
    ),
    Operation(
        "delete",
        "/series/{series_id}/host-links/{link_id}",
        "revokeHostLink",
        "Revoke one host link; the others keep working",
        {**DONE, **UNAUTHORIZED, **NO_LINK},
        parameters=(SERIES_ID, LINK_ID),
    ),
    Operation(
        "patch",
        "/series/{series_id}/host-links/{link_id}",
        "renameHostLink",
        "Rename one host link; its URL stays the same (and is not shown)",
        {
            200: (m.HostLink, "The link under its new name; `url` is null."),
            **UNAUTHORIZED,
            **NO_LINK,
            **BAD_BODY,
        },
        body=m.HostLinkCreate,
        parameters=(SERIES_ID, LINK_ID),
    ),
    Operation(
        "post",
        "/series/{series_id}/host-links/{link_id}/rotate",
        "rotateHostLink",
        "Give one host a new link; their old one stops working",
        {200: (m.HostLink, "The link with its new URL."), **UNAUTHORIZED, **NO_LINK},
        parameters=(SERIES_ID, LINK_ID),
    ),
    Operation(
        "get",
        "/occurrences",
        "listOccurrences",
        "Occurrences of every series starting in a date range (the week view)",
        {
            200: (m.OccurrenceList, "Soonest first, cancelled ones included."),
            **UNAUTHORIZED,
            **BAD_RANGE,
        },
        query=m.OccurrenceRange,
    ),
    Operation(
        "post",
        "/recurrence/preview",
        "previewRecurrence",
        "The first starts a schedule would give (nothing is stored)",
        {200: (m.RecurrencePreview, "The starts, in UTC."), **UNAUTHORIZED, **BAD_BODY},
        body=m.RecurrencePreviewRequest,
    ),
    # --- public feeds
    Operation(
        "get",
        "/feeds/calendar.ics",
        "publicCalendar",
        "iCalendar feed of every public series",
        {200: ("calendar", "RFC 5545, one VEVENT (with RRULE) per series.")},
        public=True,
    ),
    Operation(
        "get",
        "/feeds/series/{series_id}.ics",
        "seriesCalendar",
        "iCalendar feed of one public series",
        {
            200: ("calendar", "RFC 5545."),
            404: (m.Error, "No public series has this id (`not_found`)."),
        },
        parameters=(SERIES_ID,),
        public=True,
    ),
    Operation(
        "get",
        "/feeds/meeting-guide.json",
        "meetingGuideFeed",
        "Meeting Guide feed (code4recovery format) of the public weekly series",
        {200: (m.MeetingGuideFeed, "One entry per running weekly series.")},
        public=True,
    ),
    # --- moderation
    Operation(
        "get",
        "/circles/{circle_id}/moderation",
        "getModerationSettings",
        "The moderation settings of a circle's series",
        {
            200: (m.ModerationSettings, "The settings (defaults if never set)."),
            **UNAUTHORIZED,
            **NO_CIRCLE,
        },
        parameters=(CIRCLE_ID,),
    ),
    Operation(
        "put",
        "/circles/{circle_id}/moderation",
        "putModerationSettings",
        "Replace the moderation settings of a circle's series",
        {200: (m.ModerationSettings, "Stored."), **UNAUTHORIZED, **NO_CIRCLE, **BAD_BODY},
        body=m.ModerationSettings,
        parameters=(CIRCLE_ID,),
        description=(
            "Settings belong to the circle's series: every occurrence runs by them. A live "
            "occurrence takes them at once, through its own command path: a changed speaking "
            "mode, share time or lobby is applied as if a host changed it (turning the lobby "
            "off lets the waiting in); a passcode is asked of newcomers; everyone present is "
            "told (`room_updated`). What the admin left unchanged keeps the hosts' live "
            "choice. An occurrence nobody has opened yet may be named by the id the "
            "occurrence listings give it."
        ),
    ),
    Operation(
        "get",
        "/series/{series_id}/moderation",
        "getSeriesModerationSettings",
        "The moderation settings of a series",
        {
            200: (m.ModerationSettings, "The settings (defaults if never set)."),
            **UNAUTHORIZED,
            **NO_SERIES,
        },
        parameters=(SERIES_ID,),
    ),
    Operation(
        "put",
        "/series/{series_id}/moderation",
        "putSeriesModerationSettings",
        "Replace the moderation settings of a series",
        {
            200: (m.ModerationSettings, "Stored and applied to live occurrences."),
            **UNAUTHORIZED,
            **NO_SERIES,
            **BAD_BODY,
        },
        body=m.ModerationSettings,
        parameters=(SERIES_ID,),
        description=(
            "As `PUT /circles/{circle_id}/moderation`, by series: usable before any "
            "occurrence has opened, so the first meeting is protected too."
        ),
    ),
    Operation(
        "get",
        "/circles/{circle_id}/audit",
        "getModerationAudit",
        "A circle's moderation actions, oldest first",
        {200: (m.AuditLog, "The actions."), **UNAUTHORIZED, **NO_CIRCLE},
        parameters=(CIRCLE_ID,),
        description=(
            "Who did what to whom, when. Kept for HEARTH_AUDIT_RETENTION_DAYS (default 30), "
            "then purged."
        ),
    ),
    Operation(
        "get",
        "/openapi.json",
        "getOpenApi",
        "This document",
        {200: ("object", "The OpenAPI document.")},
        public=True,
    ),
)


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _response(content: Content, description: str) -> dict[str, Any]:
    if content == "none":
        return {"description": description}
    if content == "calendar":
        return {
            "description": description,
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        }
    schema = {"type": "object"} if content == "object" else _ref(content)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        result["description"] = op.description
    if op.public:
        result["security"] = []
    parameters = [dict(p) for p in op.parameters]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if parameters:
        result["parameters"] = parameters
    if op.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    result["responses"] = {
        str(status): _response(content, text) for status, (content, text) in op.responses.items()
    }
    return result


@cache
def _document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(f"{API_BASE}{op.path}", {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hearth admin API",
            "version": "1",
            "description": (
                "Schedule audio-only support circles and hand out their links. Every error "
                "has the shape of the `Error` schema, with a stable `code`."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin token (HEARTH_ADMIN_TOKEN, or one the server issued).",
                }
            },
            "schemas": m.component_schemas(),
        },
    }


def openapi_document() -> dict[str, Any]:
    """The document, as a fresh copy (so no caller can change the one served)."""
    return copy.deepcopy(_document())
