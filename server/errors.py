"""What a client of the HTTP API sees when something goes wrong: one JSON shape.

    {"error": {"code": "invalid_field", "message": "...", "field": "starts_at"}}

``code`` is stable (clients switch on it); ``message`` is for people; ``field`` names the
request field at fault, or is null. Handlers refuse with ``ApiError``; the middleware turns
it, aiohttp's HTTP exceptions and anything unexpected into that shape, and never lets a
stack trace or an exception's text out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# Stable codes. In the OpenAPI document through server/api_models.py (ErrorDetail).
INVALID_JSON = "invalid_json"
INVALID_FIELD = "invalid_field"
UNAUTHORIZED = "unauthorized"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
BAD_REQUEST = "bad_request"
INTERNAL_ERROR = "internal_error"
# Several nodes: Redis (the node registry) or the node asked cannot be reached now.
NODES_UNAVAILABLE = "nodes_unavailable"

ERROR_CODES = (
    INVALID_JSON,
    INVALID_FIELD,
    UNAUTHORIZED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    BAD_REQUEST,
    INTERNAL_ERROR,
    NODES_UNAVAILABLE,
)

# aiohttp raises these itself (router, body limits); each gets a stable code.
_CODES_BY_STATUS = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
}


class ApiError(Exception):
    """A refusal a client may see: status, stable code, message, and the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def invalid_field(field: str, message: str) -> ApiError:
    return ApiError(422, INVALID_FIELD, message, field=field)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    response = web.json_response(body, status=status, headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _from_http_exception(error: web.HTTPException) -> web.Response:
    status = error.status
    code = _CODES_BY_STATUS.get(status, BAD_REQUEST if status < 500 else INTERNAL_ERROR)
    # Only the generic phrase ("Not Found"): an exception's text may hold request details.
    try:
        message = HTTPStatus(status).phrase
    except ValueError:
        message = code
    headers = {name: error.headers[name] for name in ("Allow",) if name in error.headers}
    return error_response(status, code, message, headers=headers)


@web.middleware
async def api_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors for everything under /api/; other paths pass through untouched."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(
            error.status, error.code, error.message, field=error.field, headers=error.headers
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects are answers, not errors
        return _from_http_exception(error)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, INTERNAL_ERROR, "Something went wrong on the server.")
