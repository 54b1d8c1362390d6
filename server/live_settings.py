"""A series' new moderation settings reach its live circles at once.

``PUT .../moderation`` stores the settings, then hands them to every occurrence of the series
that may be live (stored and not ended). Each goes through the circle's own command path
(rooms.machine.apply_settings decides, the state is saved, then published), so everyone
affected is told as when a host changes something. A circle that is not live takes the stored
settings when it loads.

With ``--workers N`` the front serves the API and the circles live in the workers: the front
tells the worker that holds each circle (``POST /internal/settings`` on 127.0.0.1), which reads
the settings from storage itself, so the internal endpoint never takes settings (or a
passcode) from its caller.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from aiohttp import web

from rooms.model import CircleSettings
from server.appkeys import DATABASE, DOOR, HUB, ROUTER
from server.storage.repository import SqlCircleStore
from server.workers import pick_worker

log = logging.getLogger(__name__)

INTERNAL_PATH = "/internal/settings"
MAX_CIRCLE_IDS = 1000


async def apply_live(
    app: web.Application, store: SqlCircleStore, series_id: str, settings: CircleSettings
) -> None:
    circle_ids = await store.unended_circles_of(series_id)
    if not circle_ids:
        return
    router = app.get(ROUTER)
    door = app.get(DOOR)
    if door is not None:
        # Several nodes: each circle's owner applies them; the others' here (if live).
        here = []
        for circle_id in circle_ids:
            body = {"series_id": series_id, "circle_ids": [circle_id]}
            if await door.tell_owner(circle_id, INTERNAL_PATH, body) is None:
                here.append(circle_id)
        await _apply_here(app, here, settings)
        return
    if router is None:
        await _apply_here(app, circle_ids, settings)
        return
    by_worker: dict[int, list[str]] = defaultdict(list)
    for circle_id in circle_ids:
        by_worker[pick_worker(circle_id, router.worker_count)].append(circle_id)
    for index, ids in by_worker.items():
        await router.tell_worker(index, INTERNAL_PATH, {"series_id": series_id, "circle_ids": ids})


async def _apply_here(app: web.Application, circle_ids: list[str], settings: CircleSettings) -> int:
    hub = app[HUB]
    applied = 0
    for circle_id in circle_ids:
        try:
            applied += await hub.apply_settings(circle_id, settings)
        except Exception:
            # Stored already: the circle takes them when it next loads.
            log.exception("a live circle did not take its new settings")
    return applied


async def internal_apply(request: web.Request) -> web.Response:
    """A worker's (or an owner node's) side: apply the series' stored settings to the
    circles it holds."""
    door = request.app.get(DOOR)
    if door is not None and not door.is_bridged(request):
        return web.json_response({"applied": 0}, status=403)
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    series_id = body.get("series_id") if isinstance(body, dict) else None
    circle_ids = body.get("circle_ids") if isinstance(body, dict) else None
    if (
        not isinstance(series_id, str)
        or not isinstance(circle_ids, list)
        or len(circle_ids) > MAX_CIRCLE_IDS
        or not all(isinstance(c, str) for c in circle_ids)
    ):
        return web.json_response({"applied": 0}, status=400)
    settings = await SqlCircleStore(request.app[DATABASE]).moderation_settings(series_id)
    applied = await _apply_here(request.app, circle_ids, settings)
    return web.json_response({"applied": applied})
