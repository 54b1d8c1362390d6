"""The live state, moderation settings and audit log in SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rooms import machine
from rooms.model import CircleSettings, CircleState, NoHostPolicy, Role, SpeakingMode
from server.storage.database import Database
from server.storage.repository import SqlCircleStore

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


async def test_live_state_and_audit_are_saved_together_and_come_back(database: Database) -> None:
    store = SqlCircleStore(database)
    scheduled = await store.create_circle(
        title="C", starts_at=NOW, duration_minutes=60, timezone="UTC", now=NOW
    )
    settings = CircleSettings(
        speaking_mode=SpeakingMode.HAND_RAISE,
        passcode="olive",
        no_host_policy=NoHostPolicy.HOLD,
        crisis_text="Call 112.",
    )
    # Settings are stored on the series (a one-off circle's only occurrence reads them).
    series_id = await store.series_of(scheduled.circle.id)
    assert series_id is not None
    await store.set_moderation_settings(series_id, settings)
    match = await store.find_by_link(scheduled.host_token)
    assert match is not None and match.settings == settings
    assert await store.load_state(match) is None

    state = CircleState.starting(match.circle, match.settings)
    for seat_id, role in (("ana", Role.HOST), ("sam", Role.PARTICIPANT)):
        state = machine.join(
            state,
            seat_id=seat_id,
            display_name=seat_id,
            role=role,
            muted=False,
            now=NOW,
            passcode_ok=True,
        ).state
        await store.save_state(state, now=NOW)
    decision = machine.set_role(state, actor_id="ana", target_id="sam", role=Role.COHOST)
    await store.save_state(decision.state, now=NOW, audit=decision.audit)
    decision = machine.set_lock(decision.state, actor_id="ana", locked=True)
    await store.save_state(decision.state, now=NOW + timedelta(days=40), audit=decision.audit)

    loaded = await store.load_state(match)
    assert loaded is not None
    assert loaded.seats["sam"].role is Role.COHOST and loaded.locked
    assert loaded.speaking_mode is SpeakingMode.HAND_RAISE
    assert [s.role for s in await store.present_seats(match.circle.id)] == ["host", "cohost"]
    log = await store.audit_log(match.circle.id)
    assert [(r.action, r.actor_label, r.target_label) for r in log] == [
        ("set_role", "ana", "sam"),
        ("lock", "ana", None),
    ]
    # Purged like attendance: records older than the retention period go.
    assert await store.purge_audit(NOW + timedelta(days=30)) == 1
    assert [r.action for r in await store.audit_log(match.circle.id)] == ["lock"]
