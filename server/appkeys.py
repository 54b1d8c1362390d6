"""Typed keys for what the application holds (aiohttp's web.AppKey)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from server.config import Settings

if TYPE_CHECKING:
    from server.doors import NodeRouter
    from server.nodes import NodeRegistry
    from server.storage.database import Database
    from server.workers import FrontRouter, WorkerSupervisor
    from signaling.admission import Admission
    from signaling.hub import CircleHub

SETTINGS = web.AppKey("settings", Settings)
DATABASE: web.AppKey[Database] = web.AppKey("database")
HUB: web.AppKey[CircleHub] = web.AppKey("hub")
# Only in the front process of ``hearth serve --workers N``: live circles run in the workers.
ROUTER: web.AppKey[FrontRouter] = web.AppKey("router")
# What time it is, for every decision the HTTP side makes (tests inject their own).
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# Whether this process takes new arrivals (loop lag, drain): see signaling/admission.py.
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
# Only in the front process of ``hearth serve --workers N``: starts, watches, drains them.
SUPERVISOR: web.AppKey[WorkerSupervisor] = web.AppKey("supervisor")
# Only with several nodes (HEARTH_REDIS_URL): this node in Redis, and its door.
NODES: web.AppKey[NodeRegistry] = web.AppKey("nodes")
DOOR: web.AppKey[NodeRouter] = web.AppKey("door")
