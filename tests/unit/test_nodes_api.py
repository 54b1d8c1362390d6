"""The admin API for nodes, in process, answers as documented (one node, and a node on the
machine's Redis and a throwaway PostgreSQL database)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis
from aiohttp import web

from server.app import create_app
from server.config import Settings
from tests.conftest import throwaway_postgres_database
from tests.nodes.conftest import REDIS_URL
from tests.unit.test_api import ADMIN_TOKEN, AUTH, Client, call, client, make_client

__all__ = ["client", "make_client"]  # fixtures used here

NODE_PATH = "/api/v1/nodes/{node_id}/drain"


async def test_one_node_lists_no_nodes_and_drains_none(client: Client) -> None:
    assert await call(client, "GET", "/api/v1/nodes", headers=AUTH) == (200, {"nodes": []})
    status, body = await call(
        client, "POST", "/api/v1/nodes/anything/drain", headers=AUTH, documented_as=NODE_PATH
    )
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await call(client, "GET", "/api/v1/nodes")
    assert status == 401


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    yield from throwaway_postgres_database()


@pytest.mark.postgres
async def test_a_node_lists_itself_with_its_load_and_refuses_an_unknown_one(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    tmp_path: Path,
    fresh_postgres_url: str,
) -> None:
    prefix = f"hearth-test-{secrets.token_hex(4)}:"
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        database_url=fresh_postgres_url,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        node_id="node-x",
        node_url="http://127.0.0.1:1",
    )
    client = await aiohttp_client(create_app(settings))
    status, body = await call(client, "GET", "/api/v1/nodes", headers=AUTH)
    assert status == 200
    assert [(n["id"], n["url"], n["participants"]) for n in body["nodes"]] == [
        ("node-x", "http://127.0.0.1:1", 0)
    ]
    status, body = await call(
        client, "POST", "/api/v1/nodes/node-y/drain", headers=AUTH, documented_as=NODE_PATH
    )
    assert status == 404
    # Its internal endpoints take nothing without the cluster secret.
    response = await client.post("/internal/drain")
    assert response.status == 403
    status, body = await call(
        client, "POST", "/api/v1/nodes/node-x/drain", headers=AUTH, documented_as=NODE_PATH
    )
    assert (status, body) == (202, {"id": "node-x", "draining": True})
    await client.close()
    with redis.Redis.from_url(REDIS_URL) as r:
        left = list(r.scan_iter(f"{prefix}*"))
        assert [k for k in left if b"node:" in k] == []  # a stopped node leaves the registry
        if left:
            r.delete(*left)
