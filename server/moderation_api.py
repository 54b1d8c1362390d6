"""Admin API for moderation: a circle's moderation settings and its audit log.

Kept apart from server/api.py (scheduling), which another change reshapes into series.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from aiohttp import web

from rooms.lifecycle import SERIES_ID_PREFIX
from rooms.model import CircleSettings, NoHostPolicy, SpeakingMode
from server.api import json_answer, parse_body, read_json_object
from server.api_models import AuditEntry, AuditLog, ModerationSettings
from server.appkeys import DATABASE
from server.auth import require_admin
from server.errors import NOT_FOUND, ApiError
from server.live_settings import apply_live
from server.openapi import API_BASE
from server.storage.repository import AuditRecord, SqlCircleStore
from server.storage.series import SeriesStore
from signaling.passcodes import hash_passcode


def render_settings(settings: CircleSettings) -> ModerationSettings:
    # The passcode is never returned, not even hashed: only whether there is one.
    return ModerationSettings(
        speaking_mode=settings.speaking_mode.value,
        lobby=settings.lobby,
        passcode_set=bool(settings.passcode),
        wait_for_host=settings.wait_for_host,
        no_host_policy=settings.no_host_policy.value,
        allow_rename=settings.allow_rename,
        share_seconds=settings.share_seconds,
        crisis_text=settings.crisis_text,
    )


def _settings_answer(settings: CircleSettings) -> web.Response:
    return json_answer(render_settings(settings), exclude={"passcode"})


KEEP = object()


def parse_settings(body: dict[str, Any]) -> tuple[CircleSettings, object]:
    """A complete settings object (every field but the passcode is required, so nothing is
    half-applied), and the passcode: a clear one to hash, None to remove it, or KEEP.
    ``passcode_set`` is accepted and ignored, so what a GET returned can be PUT back."""
    given = parse_body(ModerationSettings, body)
    settings = CircleSettings(
        speaking_mode=SpeakingMode(given.speaking_mode),
        lobby=given.lobby,
        passcode=None,
        wait_for_host=given.wait_for_host,
        no_host_policy=NoHostPolicy(given.no_host_policy),
        allow_rename=given.allow_rename,
        share_seconds=given.share_seconds,
        crisis_text=given.crisis_text,
    )
    return settings, given.passcode if "passcode" in given.model_fields_set else KEEP


def render_audit(record: AuditRecord) -> AuditEntry:
    return AuditEntry.model_validate(
        {
            "at": record.at.isoformat(),
            "action": record.action,
            "actor": {
                "id": record.actor_id,
                "label": record.actor_label,
                "role": record.actor_role,
            },
            "target": None
            if record.target_id is None
            else {"id": record.target_id, "label": record.target_label},
            "detail": record.detail,
        }
    )


async def _circle(request: web.Request) -> tuple[SqlCircleStore, str, str]:
    """The store, the circle's id and its series' id (settings are kept per series);
    404 for a circle that does not exist. One lookup serves both."""
    await require_admin(request)
    store = SqlCircleStore(request.app[DATABASE])
    circle_id = request.match_info["circle_id"]
    series_id = await store.series_of(circle_id) or await _unopened_series(request, circle_id)
    if series_id is None:
        raise ApiError(404, NOT_FOUND, "No circle has this id.")
    return store, circle_id, series_id


async def _unopened_series(request: web.Request, occurrence_id: str) -> str | None:
    """The series of an occurrence nobody has opened yet (its id is the series id and its
    start, rooms.lifecycle.occurrence_id), so its settings can be set before it opens."""
    series_id = occurrence_id.rpartition("-")[0]
    if not series_id or len(series_id) > SERIES_ID_PREFIX:
        return None
    found = await SeriesStore(request.app[DATABASE]).find_occurrence(series_id, occurrence_id)
    return None if found is None else series_id


async def _series(request: web.Request) -> tuple[SqlCircleStore, str]:
    await require_admin(request)
    series_id = request.match_info["series_id"]
    if await SeriesStore(request.app[DATABASE]).get(series_id) is None:
        raise ApiError(404, NOT_FOUND, "No series has this id.")
    return SqlCircleStore(request.app[DATABASE]), series_id


async def get_moderation(request: web.Request) -> web.Response:
    store, _, series_id = await _circle(request)
    return _settings_answer(await store.moderation_settings(series_id))


async def put_moderation(request: web.Request) -> web.Response:
    store, _, series_id = await _circle(request)
    return await _replace_settings(request, store, series_id)


async def get_series_moderation(request: web.Request) -> web.Response:
    store, series_id = await _series(request)
    return _settings_answer(await store.moderation_settings(series_id))


async def put_series_moderation(request: web.Request) -> web.Response:
    store, series_id = await _series(request)
    return await _replace_settings(request, store, series_id)


async def _replace_settings(
    request: web.Request, store: SqlCircleStore, series_id: str
) -> web.Response:
    settings, passcode = parse_settings(await read_json_object(request))
    if passcode is KEEP:
        stored = (await store.moderation_settings(series_id)).passcode
    elif isinstance(passcode, str):
        # scrypt takes tens of milliseconds: off the loop that carries the audio.
        stored = await asyncio.to_thread(hash_passcode, passcode)
    else:
        stored = None
    settings = replace(settings, passcode=stored)
    await store.set_moderation_settings(series_id, settings)
    # Stored first, so a circle that loads meanwhile reads them; then the live ones apply them.
    await apply_live(request.app, store, series_id, settings)
    return _settings_answer(settings)


async def get_audit(request: web.Request) -> web.Response:
    store, circle_id, _ = await _circle(request)
    records = await store.audit_log(circle_id)
    return json_answer(AuditLog(entries=[render_audit(r) for r in records]))


def add_moderation_routes(app: web.Application) -> None:
    app.router.add_get(f"{API_BASE}/circles/{{circle_id}}/moderation", get_moderation)
    app.router.add_put(f"{API_BASE}/circles/{{circle_id}}/moderation", put_moderation)
    app.router.add_get(f"{API_BASE}/circles/{{circle_id}}/audit", get_audit)
    app.router.add_get(f"{API_BASE}/series/{{series_id}}/moderation", get_series_moderation)
    app.router.add_put(f"{API_BASE}/series/{{series_id}}/moderation", put_series_moderation)
