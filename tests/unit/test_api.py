"""The admin HTTP API: scheduling circles, refusing bad requests, and its OpenAPI document.

Every JSON response is checked against the schema the document declares for it, so the
document stays true to the code.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from server.app import create_app
from server.appkeys import DATABASE
from server.config import Settings
from server.openapi import openapi_document
from server.storage.repository import AdminTokenStore

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VALID = {
    "title": "Tuesday circle",
    "starts_at": "2026-11-27T20:00:00+01:00",
    "duration_minutes": 90,
    "timezone": "Europe/Berlin",
}

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

# --- the document as a schema source ------------------------------------------------------

DOCUMENT = openapi_document()
DOCUMENT_URI = "urn:hearth:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(
    DOCUMENT_URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def documented_schema(path: str, method: str, status: int) -> dict[str, Any]:
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} -> {status} is not documented"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    ref = schema.get("$ref")
    return {"$ref": f"{DOCUMENT_URI}{ref}"} if ref else schema


async def call(
    client: Client,
    method: str,
    path: str,
    *,
    documented_as: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Make a request; check the JSON answer against the document; return status and body."""
    response = await client.request(method, path, **kwargs)
    assert response.content_type == "application/json"
    body = await response.json()
    schema = documented_schema(documented_as or path, method.lower(), response.status)
    Draft202012Validator(
        schema, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).validate(body)
    return response.status, body


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def make_client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> AsyncIterator[MakeClient]:
    async def make(**settings: Any) -> Client:
        base = Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
        app = create_app(base.with_overrides(**settings))
        return await aiohttp_client(app)

    yield make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()


async def create(client: Client, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    """POST /api/v1/circles as the admin: ``body`` as JSON (VALID by default), or raw ``data``."""
    kwargs.setdefault("headers", AUTH)
    if "data" not in kwargs:
        kwargs["json"] = VALID if body is None else body
    return await call(client, "POST", "/api/v1/circles", **kwargs)


async def listed(client: Client) -> list[dict[str, Any]]:
    status, body = await call(client, "GET", "/api/v1/circles", headers=AUTH)
    assert status == 200
    circles: list[dict[str, Any]] = body["circles"]
    return circles


# --- scheduling -----------------------------------------------------------------------------


async def test_created_circle_is_returned_in_utc_and_can_be_read_back(client: Client) -> None:
    status, created = await create(client)

    assert status == 201
    assert created["title"] == "Tuesday circle"
    assert created["starts_at"] == "2026-11-27T19:00:00+00:00"
    assert created["ends_at"] == "2026-11-27T20:30:00+00:00"
    assert created["status"] == "scheduled"
    assert created["timezone"] == "Europe/Berlin"
    assert created["capacity"] == 30  # HEARTH_DEFAULT_CAPACITY
    assert created["host_url"] is not None

    path = f"/api/v1/circles/{created['id']}"
    status, fetched = await call(
        client, "GET", path, headers=AUTH, documented_as="/api/v1/circles/{circle_id}"
    )
    # The host link is shown once, when made: it is stored hashed.
    assert (status, fetched) == (200, {**created, "host_url": None})
    assert await listed(client) == [{**created, "host_url": None}]


async def test_circles_are_listed_soonest_first(client: Client) -> None:
    await create(client, {**VALID, "title": "Later", "starts_at": "2026-12-01T10:00:00Z"})
    await create(client, {**VALID, "title": "Sooner", "starts_at": "2026-11-30T10:00:00Z"})

    assert [c["title"] for c in await listed(client)] == ["Sooner", "Later"]


async def test_links_carry_distinct_unguessable_tokens(client: Client) -> None:
    _, first = await create(client)
    _, second = await create(client)
    base = str(client.make_url("/c/"))

    tokens = []
    for circle in (first, second):
        for link in (circle["join_url"], circle["host_url"]):
            assert link.startswith(base)
            tokens.append(link.removeprefix(base))
    assert len(set(tokens)) == 4
    for token in tokens:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128


async def test_links_use_the_public_url_when_configured(make_client: MakeClient) -> None:
    client = await make_client(public_url="https://circles.example.org")

    _, created = await create(client)

    assert created["join_url"].startswith("https://circles.example.org/c/")
    assert created["host_url"].startswith("https://circles.example.org/c/")


async def test_unknown_circle_is_a_json_404(client: Client) -> None:
    status, body = await call(
        client,
        "GET",
        "/api/v1/circles/nope",
        headers=AUTH,
        documented_as="/api/v1/circles/{circle_id}",
    )

    assert status == 404
    assert body["error"]["code"] == "not_found"


# --- who may ------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("POST", "/api/v1/circles", "/api/v1/circles"),
    ("GET", "/api/v1/circles", "/api/v1/circles"),
    ("GET", "/api/v1/circles/abc", "/api/v1/circles/{circle_id}"),
]
BAD_CREDENTIALS = {
    "none": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "empty bearer": {"Authorization": "Bearer "},
    "other scheme": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "bare token": {"Authorization": ADMIN_TOKEN},
}


@pytest.mark.parametrize(("method", "path", "documented_as"), ADMIN_ROUTES)
@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
async def test_admin_routes_refuse_without_a_valid_bearer_token(
    client: Client,
    method: str,
    path: str,
    documented_as: str,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.request(method, path, headers=headers, json=VALID)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    status, body = await call(
        client, method, path, headers=headers, json=VALID, documented_as=documented_as
    )

    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert "not-the-token" not in caplog.text
    assert await listed(client) == []


async def test_tokens_issued_by_the_server_work_until_revoked(client: Client) -> None:
    tokens = AdminTokenStore(client.app[DATABASE])
    issued = await tokens.create()
    headers = {"Authorization": f"Bearer {issued.token}"}

    assert (await create(client, headers=headers))[0] == 201
    await tokens.revoke(issued.id)
    assert (await create(client, headers=headers))[0] == 401


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"{", b"", b"not json", b"\xff\xfe", b"[]", b'"a string"', b"null"]
)
async def test_a_body_that_is_not_a_json_object_is_a_400(client: Client, raw: bytes) -> None:
    status, body = await create(
        client, data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )

    assert status == 400
    assert body["error"] == {
        "code": "invalid_json",
        "message": body["error"]["message"],
        "field": None,
    }
    assert await listed(client) == []


INVALID_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "naive starts_at": ({**VALID, "starts_at": "2026-11-27T20:00:00"}, "starts_at"),
    "garbled starts_at": ({**VALID, "starts_at": "next tuesday"}, "starts_at"),
    "numeric starts_at": ({**VALID, "starts_at": 1700000000}, "starts_at"),
    "unknown timezone": ({**VALID, "timezone": "Mars/Olympus_Mons"}, "timezone"),
    "timezone path": ({**VALID, "timezone": "../../etc/passwd"}, "timezone"),
    "duration 0": ({**VALID, "duration_minutes": 0}, "duration_minutes"),
    "duration too long": ({**VALID, "duration_minutes": 1441}, "duration_minutes"),
    "duration string": ({**VALID, "duration_minutes": "5"}, "duration_minutes"),
    "duration true": ({**VALID, "duration_minutes": True}, "duration_minutes"),
    "duration float": ({**VALID, "duration_minutes": 5.0}, "duration_minutes"),
    "empty title": ({**VALID, "title": ""}, "title"),
    "blank title": ({**VALID, "title": "   "}, "title"),
    "long title": ({**VALID, "title": "x" * 201}, "title"),
    "title with control": ({**VALID, "title": "a\u202eb"}, "title"),
    "title not string": ({**VALID, "title": ["a"]}, "title"),
    "extra field": ({**VALID, "host_name": "Ana"}, "host_name"),
    "capacity 0": ({**VALID, "capacity": 0}, "capacity"),
    "capacity null": ({**VALID, "capacity": None}, "capacity"),
    "capacity too big": ({**VALID, "capacity": 1001}, "capacity"),
    "year 1": ({**VALID, "starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at"),
    "year 9999": ({**VALID, "starts_at": "9999-12-31T23:00:00-05:00"}, "starts_at"),
    "offset not the zone's": ({**VALID, "starts_at": "2026-07-01T19:00:00+01:00"}, "starts_at"),
    **{f"missing {name}": ({k: v for k, v in VALID.items() if k != name}, name) for name in VALID},
}


@pytest.mark.parametrize(("payload", "field"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
async def test_each_invalid_field_is_a_422_naming_it_and_nothing_is_stored(
    client: Client, payload: dict[str, Any], field: str
) -> None:
    status, body = await create(client, payload)

    assert status == 422
    assert body["error"]["code"] == "invalid_field"
    assert body["error"]["field"] == field
    assert await listed(client) == []


MESSAGES: dict[str, tuple[dict[str, Any], str]] = {
    "duration true": (
        {**VALID, "duration_minutes": True},
        "'duration_minutes' must be a whole number from 1 to 1440.",
    ),
    "capacity null": (
        {**VALID, "capacity": None},
        "'capacity' must be a whole number from 1 to 1000.",
    ),
    "title a list": ({**VALID, "title": ["a"]}, "'title' must be a string of 1 to 200 characters."),
    "missing timezone": (
        {k: v for k, v in VALID.items() if k != "timezone"},
        "'timezone' is required.",
    ),
    # An unknown field is named before a missing or wrong one, as it always was.
    "unknown and wrong": ({"host_name": "Ana", "title": 5}, "Unknown field 'host_name'."),
}


@pytest.mark.parametrize(("payload", "message"), MESSAGES.values(), ids=MESSAGES.keys())
async def test_a_refusal_says_what_the_field_must_be_in_the_schemas_words(
    client: Client, payload: dict[str, Any], message: str
) -> None:
    status, body = await create(client, payload)

    assert (status, body["error"]["message"]) == (422, message)
    assert await listed(client) == []


@pytest.mark.parametrize("raw", [b'{"\\ud800": 1}', b'{"title": "\\ud800x"}'])
async def test_a_lone_surrogate_in_a_field_name_or_value_is_a_422_not_a_500(
    client: Client, raw: bytes
) -> None:
    status, body = await create(
        client, data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )

    assert (status, body["error"]["code"]) == (422, "invalid_field")
    assert await listed(client) == []


async def test_unknown_api_routes_answer_in_json(client: Client) -> None:
    for method, path, status, code in [
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
        ("GET", "/api/v2/circles", 404, "not_found"),
        ("DELETE", "/api/v1/circles", 405, "method_not_allowed"),
    ]:
        response = await client.request(method, path, headers=AUTH)
        assert response.status == status
        body = await response.json()
        Draft202012Validator(
            documented_schema("/api/v1/circles", "post", 401), registry=REGISTRY
        ).validate(body)
        assert body["error"]["code"] == code


async def test_unexpected_failures_are_a_bare_500_and_are_logged(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(data_dir=tmp_path, admin_token=ADMIN_TOKEN))

    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    app.router.add_get("/api/v1/broken", broken)
    client = await aiohttp_client(app)

    response = await client.get("/api/v1/broken")

    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret detail" not in await response.text()
    assert "secret detail" in caplog.text


# --- the document -------------------------------------------------------------------------


async def test_openapi_document_is_valid_and_served_without_auth(client: Client) -> None:
    response = await client.get("/api/v1/openapi.json")

    assert response.status == 200
    served = await response.json()
    validate_openapi(served)
    assert served == DOCUMENT


async def test_openapi_document_describes_every_api_route(client: Client) -> None:
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }
    documented = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}

    assert registered == documented


async def test_an_oversized_body_is_a_json_413_and_nothing_is_stored(client: Client) -> None:
    huge = {**VALID, "title": "x" * (1024 * 1024)}

    status, body = await create(client, huge)

    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert await listed(client) == []
