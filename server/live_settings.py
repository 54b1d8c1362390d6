"""A series' new moderation settings reach its live circles at once.

``PUT .../moderation`` stores the settings, then hands them to every occurrence of the series
that may be live (stored and not ended). Each goes through the circle's own command path
(rooms.machine.apply_settings decides, the state is saved, then published), so everyone
affected is told as when a host changes something. A circle that is not live takes the stored
settings when it loads.

Where circles run in other processes (workers behind the front, other nodes), the door tells
the process running each circle (``POST /internal/settings``, one call per process, with the
cluster secret when there is one), which reads the settings from storage itself, so the
internal endpoint never takes settings (or a passcode) from its caller.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from rooms.model import CircleSettings
from server.appkeys import DATABASE, DOOR, HUB
from server.storage.repository import SqlCircleStore

log = logging.getLogger(__name__)

INTERNAL_PATH = "/internal/settings"
MAX_CIRCLE_IDS = 1000


async def apply_live(
    app: web.Application, store: SqlCircleStore, series_id: str, settings: CircleSettings
) -> None:
    circle_ids = await store.unended_circles_of(series_id)
    if not circle_ids:
        return
    door = app.get(DOOR)
    if door is not None:
        # Each circle's process applies them; those running nowhere else, here (if live).
        circle_ids = await door.tell_running(
            circle_ids, INTERNAL_PATH, lambda ids: {"series_id": series_id, "circle_ids": ids}
        )
    if HUB in app:
        await _apply_here(app, circle_ids, settings)


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
