"""Admin API for several nodes: the registry as it stands, and draining a node.

``GET /api/v1/nodes`` lists the live nodes with their load (empty with one node).
``POST /api/v1/nodes/{node_id}/drain`` makes that node stop taking circles and move its
live circles to the others (``migrate_away``), as SIGTERM does, but the process stays up
(as a door) until it is stopped. Any node answers both: a drain for another node is handed
to it over its internal endpoint, with the cluster secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from server.api import no_store
from server.appkeys import DOOR, HUB, NODES, SETTINGS
from server.auth import require_admin
from server.errors import NODES_UNAVAILABLE, NOT_FOUND, ApiError
from server.openapi import API_BASE
from signaling.admission import CLOSE_SERVICE_RESTART

log = logging.getLogger(__name__)

INTERNAL_DRAIN_PATH = "/internal/drain"
MAX_NODE_ID = 100
_DRAINS: web.AppKey[set[asyncio.Task[int]]] = web.AppKey("drains", set)


async def migrate_away(app: web.Application) -> int:
    """Move every live circle of this node to another, while people talk.

    The node stops taking circles (its record says draining, at once), then for each circle:
    its sockets are closed with 1012, what it decided is stored, and its lease given back.
    The pages reconnect with their seat tokens (through any door); the first one back makes
    the least-loaded other node load the circle from the database. Returns how many moved.
    """
    registry, hub = app[NODES], app[HUB]
    registry.draining = True
    with contextlib.suppress(Exception):
        await registry.beat()  # placement sees it draining now, not at the next heartbeat
    circles = [live.id for live in hub.live_circles()]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        *(hub.evict(circle_id, CLOSE_SERVICE_RESTART, flush=True) for circle_id in circles)
    )
    log.info("drain: %d circles handed over in %.2f s", len(circles), loop.time() - started)
    return len(circles)


def _start_drain(app: web.Application) -> None:
    task = asyncio.get_running_loop().create_task(migrate_away(app))
    drains = app[_DRAINS]
    drains.add(task)
    task.add_done_callback(drains.discard)


async def list_nodes(request: web.Request) -> web.Response:
    await require_admin(request)
    registry = request.app.get(NODES)
    nodes: list[dict[str, Any]] = []
    if registry is not None:
        try:
            nodes = [asdict(n) for n in await registry.nodes()]
        except (RedisError, OSError):
            raise ApiError(503, NODES_UNAVAILABLE, "The node registry cannot be reached.") from None
        for node in nodes:
            node["id"] = node.pop("node_id")
    return no_store(web.json_response({"nodes": nodes}))


async def drain_node(request: web.Request) -> web.Response:
    await require_admin(request)
    node_id = request.match_info["node_id"]
    registry = request.app.get(NODES)
    if registry is None or len(node_id) > MAX_NODE_ID:
        raise ApiError(404, NOT_FOUND, "No node has this id.")
    if node_id == registry.node_id and registry.registers:
        _start_drain(request.app)
        return no_store(web.json_response({"id": node_id, "draining": True}, status=202))
    try:
        node = await registry.node(node_id)
    except (RedisError, OSError):
        raise ApiError(503, NODES_UNAVAILABLE, "The node registry cannot be reached.") from None
    if node is None:
        raise ApiError(404, NOT_FOUND, "No node has this id.")
    if await request.app[DOOR].post(node.url, INTERNAL_DRAIN_PATH) != 202:
        raise ApiError(503, NODES_UNAVAILABLE, "That node did not answer; try again.")
    return no_store(web.json_response({"id": node_id, "draining": True}, status=202))


async def internal_drain(request: web.Request) -> web.Response:
    """Another node's admin API asks this one to drain (cluster secret required)."""
    door = request.app.get(DOOR)
    if door is None or not door.is_bridged(request):
        return web.json_response({}, status=403)
    if HUB not in request.app:
        return web.json_response({}, status=404)  # a front over workers runs no circle
    _start_drain(request.app)
    return web.json_response({"draining": True}, status=202)


def add_internal_drain(app: web.Application) -> None:
    """Where another door hands this node a drain (a node, or a worker that is one)."""
    app[_DRAINS] = set()
    app.router.add_post(INTERNAL_DRAIN_PATH, internal_drain)


def add_node_routes(app: web.Application) -> None:
    app[_DRAINS] = set()
    app.router.add_get(f"{API_BASE}/nodes", list_nodes)
    app.router.add_post(f"{API_BASE}/nodes/{{node_id}}/drain", drain_node)
    if app[SETTINGS].redis_url and app[SETTINGS].workers == 1:
        app.router.add_post(INTERNAL_DRAIN_PATH, internal_drain)
