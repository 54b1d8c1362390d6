"""The admin API, written down as an OpenAPI 3.1 document (served at /api/v1/openapi.json).

Tests validate this document and check real responses against its schemas, so it cannot
drift from server/api.py unnoticed.
"""

from __future__ import annotations

import copy
from typing import Any

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
        "host_url": {
            "type": "string",
            "format": "uri",
            "description": "Give this to hosts only: it grants the host role.",
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
        "passcode",
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
        "passcode": {"type": ["string", "null"], "minLength": 1, "maxLength": 100},
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
        "share_seconds": {"type": ["integer", "null"], "minimum": 10, "maximum": 3600},
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
        f"{API_BASE}/circles/{{circle_id}}/moderation": {
            "get": {
                "operationId": "getModerationSettings",
                "summary": "A circle's moderation settings",
                "parameters": [_CIRCLE_ID],
                "responses": {
                    "200": _json("ModerationSettings", "The settings (defaults if never set)."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No circle has this id (`not_found`)."),
                },
            },
            "put": {
                "operationId": "putModerationSettings",
                "summary": "Replace a circle's moderation settings",
                "description": "Applies when the circle is next loaded; the live state "
                "(mode, lobby, lock) of a running circle is the hosts'.",
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
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The document, as a fresh copy (so no caller can change the one served)."""
    return copy.deepcopy(_DOCUMENT)
