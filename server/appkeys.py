"""Typed keys for what the application holds (aiohttp's web.AppKey)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from server.config import Settings

if TYPE_CHECKING:
    from server.doors import Door
    from server.nodes import NodeRegistry
    from server.storage.database import Database
    from server.workers import WorkerSupervisor
    from signaling.admission import Admission
    from signaling.hub import CircleHub

SETTINGS = web.AppKey("settings", Settings)
DATABASE: web.AppKey[Database] = web.AppKey("database")
HUB: web.AppKey[CircleHub] = web.AppKey("hub")
# What time it is, for every decision the HTTP side makes (tests inject their own).
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# Whether this process takes new arrivals (loop lag, drain): see signaling/admission.py.
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
# Only in the front process of ``hearth serve --workers N``: starts, watches, drains them.
SUPERVISOR: web.AppKey[WorkerSupervisor] = web.AppKey("supervisor")
# Only with several nodes (HEARTH_REDIS_URL): this node in Redis (at the front of
# ``--workers N``, a door's view of the registry that is not itself a node).
NODES: web.AppKey[NodeRegistry] = web.AppKey("nodes")
# Where sockets are routed to the process running their circle (server/doors.py): in the
# front of ``--workers N`` and in every node.
DOOR: web.AppKey[Door] = web.AppKey("door")
