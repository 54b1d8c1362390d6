"""Settings per series before any occurrence opened, and settings applied to a live circle,
kept in SQL (SQLite and PostgreSQL). Time is injected; nothing sleeps."""

from __future__ import annotations

from datetime import timedelta

from rooms.lifecycle import occurrence_id
from rooms.model import CircleSettings, Role, SpeakingMode
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub
from tests.persistence.test_series_store import FIRST, Clock, make_series

PROTECTED = CircleSettings(lobby=True, passcode="4711", speaking_mode=SpeakingMode.HAND_RAISE)


async def test_a_new_series_takes_settings_before_its_first_occurrence_opens(
    database: Database,
) -> None:
    series = await make_series(database)
    clock = Clock(FIRST - timedelta(days=2))
    store = SqlCircleStore(database, clock)
    first = occurrence_id(series.id, FIRST)
    # Nobody opened anything: no stored occurrence yet.
    assert await store.series_of(first) is None
    await store.set_moderation_settings(series.id, PROTECTED)
    assert await store.unended_circles_of(series.id) == []

    # The first meeting opens already protected: the occurrence takes them as it loads.
    clock.now = FIRST - timedelta(minutes=5)
    hub = CircleHub(store, SharedMixAudioPath, clock)
    try:
        live, role, _ = await hub.open_link(series.host_links[0].token)
        assert role is Role.HOST
        assert live.state.settings == PROTECTED
        assert live.state.lobby_enabled and live.state.speaking_mode is SpeakingMode.HAND_RAISE
    finally:
        await hub.close()


async def test_settings_applied_to_a_live_circle_are_stored_with_its_state(
    database: Database,
) -> None:
    series = await make_series(database)
    clock = Clock(FIRST)
    store = SqlCircleStore(database, clock)
    hub = CircleHub(store, SharedMixAudioPath, clock)
    try:
        live, _, _ = await hub.open_link(series.host_links[0].token)
        assert await store.unended_circles_of(series.id) == [live.id]
        await store.set_moderation_settings(series.id, PROTECTED)
        assert await hub.apply_settings(live.id, PROTECTED)
        assert not await hub.apply_settings("not-live-here", PROTECTED)
        assert live.state.lobby_enabled
    finally:
        await hub.close()

    # Another process loading the circle finds what was applied, and the audit says who.
    again = CircleHub(SqlCircleStore(database, clock), SharedMixAudioPath, clock)
    try:
        reloaded, _, _ = await again.open_link(series.join_token)
        assert reloaded.state.settings == PROTECTED
        assert reloaded.state.lobby_enabled
        assert reloaded.state.speaking_mode is SpeakingMode.HAND_RAISE
    finally:
        await again.close()
    log = await store.audit_log(live.id)
    assert [(r.action, r.actor_role, r.detail) for r in log] == [
        ("set_settings", "admin", "speaking_mode,lobby,passcode")
    ]
