"""A series link opens the occurrence of the moment, on SQLite and PostgreSQL.

Time is injected: the store's clock is a variable the test moves, nothing sleeps.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rooms.errors import CIRCLE_NOT_OPEN, RoomError
from rooms.lifecycle import Phase, extend, phase
from rooms.model import CircleState, CircleStatus, Role, Seat
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from server.storage.series import Series, SeriesFields, SeriesStore
from signaling.audio import AudioPath
from signaling.hub import CircleHub

BERLIN = ZoneInfo("Europe/Berlin")
# Tuesdays 19:00 Berlin, from 2026-12-01 (18:00 UTC in winter).
FIRST = datetime(2026, 12, 1, 19, 0, tzinfo=BERLIN).astimezone(UTC)
WEEK = timedelta(weeks=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def weekly(**changes: object) -> SeriesFields:
    fields = SeriesFields(
        title="Tuesday circle",
        description="Peer support",
        first_start=FIRST,
        timezone="Europe/Berlin",
        duration_minutes=90,
        rrule="FREQ=WEEKLY;BYDAY=TU",
        ends_on=None,
        capacity=2,
        lobby_minutes=30,
        grace_minutes=15,
        public=False,
        attendance_names_visible=False,
    )
    return replace(fields, **changes)  # type: ignore[arg-type]


async def make_series(database: Database, **changes: object) -> Series:
    return await SeriesStore(database).create(weekly(**changes), now=FIRST - 10 * WEEK)


async def test_a_series_link_opens_each_occurrence_in_its_window_and_says_when_the_next_is(
    database: Database,
) -> None:
    series = await make_series(database)
    clock = Clock(FIRST - timedelta(hours=2))
    store = SqlCircleStore(database, clock)

    before = await store.find_by_link(series.join_token)
    assert before is not None and before.circle is None
    assert before.next_starts_at == FIRST

    clock.now = FIRST - timedelta(minutes=30)  # the lobby opens
    lobby = await store.find_by_link(series.host_links[0].token)
    assert lobby is not None and lobby.circle is not None
    assert lobby.role is Role.HOST
    assert lobby.circle.starts_at == FIRST
    assert lobby.next_starts_at == FIRST
    first_id = lobby.circle.id

    clock.now = FIRST + timedelta(minutes=90 + 14)  # in the grace period: same occurrence
    late = await store.find_by_link(series.join_token)
    assert late is not None and late.circle is not None and late.circle.id == first_id
    assert late.next_starts_at == FIRST + WEEK

    clock.now = FIRST + timedelta(minutes=90 + 15)  # closed
    after = await store.find_by_link(series.join_token)
    assert after is not None and after.circle is None
    assert after.next_starts_at == FIRST + WEEK

    clock.now = FIRST + WEEK - timedelta(minutes=5)
    second = await store.find_by_link(series.join_token)
    assert second is not None and second.circle is not None
    assert second.circle.id != first_id
    assert second.circle.starts_at == FIRST + WEEK
    assert second.circle.capacity == 2


async def test_phases_follow_the_clock_and_a_host_extension_keeps_it_open(
    database: Database,
) -> None:
    series = await make_series(database)
    found = await SeriesStore(database).occurrences(series.id, FIRST, FIRST + timedelta(days=1))
    assert found is not None
    occurrence = found[0].occurrence
    windows = series.windows
    table = [
        (FIRST - timedelta(minutes=31), Phase.SCHEDULED),
        (FIRST - timedelta(minutes=30), Phase.OPEN),
        (FIRST, Phase.LIVE),
        (FIRST + timedelta(minutes=104), Phase.LIVE),
        (FIRST + timedelta(minutes=105), Phase.CLOSED),
    ]
    assert [phase(occurrence, windows, at) for at, _ in table] == [p for _, p in table]

    extended = extend(occurrence, 20)
    assert phase(extended, windows, FIRST + timedelta(minutes=105)) is Phase.LIVE
    assert phase(extended, windows, FIRST + timedelta(minutes=125)) is Phase.CLOSED


async def test_a_valid_link_is_refused_with_the_next_start_and_an_unknown_one_without(
    database: Database,
) -> None:
    series = await make_series(database)
    clock = Clock(FIRST - timedelta(days=2))
    hub = CircleHub(SqlCircleStore(database, clock), _no_audio, clock)

    with pytest.raises(RoomError) as valid:
        await hub.open_link(series.join_token)
    with pytest.raises(RoomError) as unknown:
        await hub.open_link("not-a-link")

    assert valid.value.code == unknown.value.code == CIRCLE_NOT_OPEN
    assert valid.value.message == unknown.value.message
    assert valid.value.details == {"next_starts_at": FIRST.isoformat()}
    assert unknown.value.details == {}


def _no_audio() -> AudioPath:
    raise AssertionError("no circle should be loaded")


async def test_cancelled_occurrence_is_skipped_and_a_moved_one_opens_where_it_now_is(
    database: Database,
) -> None:
    series = await make_series(database)
    store = SeriesStore(database)
    now = FIRST - WEEK
    first = await store.find_occurrence(series.id, f"{series.id}-{int(FIRST.timestamp())}")
    second_start = FIRST + WEEK
    second = await store.find_occurrence(series.id, f"{series.id}-{int(second_start.timestamp())}")
    assert first is not None and second is not None
    await store.change_occurrence(first[0], first[1], cancelled=True, starts_at=None, now=now)
    moved_to = second_start + timedelta(days=1)
    await store.change_occurrence(second[0], second[1], cancelled=None, starts_at=moved_to, now=now)

    clock = Clock(FIRST - timedelta(minutes=10))
    links = SqlCircleStore(database, clock)
    cancelled = await links.find_by_link(series.join_token)
    assert cancelled is not None and cancelled.circle is None
    assert cancelled.next_starts_at == moved_to

    clock.now = second_start  # the original slot of the moved one: nothing there
    slot = await links.find_by_link(series.join_token)
    assert slot is not None and slot.circle is None

    clock.now = moved_to - timedelta(minutes=1)
    arrived = await links.find_by_link(series.join_token)
    assert arrived is not None and arrived.circle is not None
    assert arrived.circle.starts_at == moved_to

    third = await store.occurrences(series.id, FIRST + 2 * WEEK, FIRST + 2 * WEEK + timedelta(1))
    assert third is not None
    assert [(o.occurrence.starts_at, o.occurrence.cancelled) for o in third] == [
        (FIRST + 2 * WEEK, False)
    ]


async def test_revoked_and_rotated_links_stop_working_and_the_others_keep_working(
    database: Database,
) -> None:
    series = await make_series(database)
    store = SeriesStore(database)
    links = SqlCircleStore(database, Clock(FIRST))
    ana = await store.add_host_link(series.id, "Ana", now=FIRST)
    ben = await store.add_host_link(series.id, "Ben", now=FIRST)
    assert ana is not None and ben is not None

    assert await store.revoke_host_link(series.id, ana.id, now=FIRST)
    rotated = await store.rotate_host_link(series.id, ben.id, now=FIRST)
    assert rotated is not None and rotated.token != ben.token
    new_series = await store.rotate_join_link(series.id, now=FIRST)
    assert new_series is not None

    assert await links.find_by_link(ana.token) is None
    assert await links.find_by_link(ben.token) is None
    assert await links.find_by_link(series.join_token) is None
    for token, role in [
        (rotated.token, Role.HOST),
        (series.host_links[0].token, Role.HOST),
        (new_series.join_token, Role.PARTICIPANT),
    ]:
        match = await links.find_by_link(token)
        assert match is not None and match.role is role
    assert [link.name for link in new_series.host_links] == ["Host", "Ben"]


async def test_a_renamed_host_link_keeps_its_token_and_a_revoked_one_cannot_be_renamed(
    database: Database,
) -> None:
    series = await make_series(database)
    store = SeriesStore(database)
    links = SqlCircleStore(database, Clock(FIRST))
    ana = await store.add_host_link(series.id, "Ana", now=FIRST)
    assert ana is not None and ana.token is not None

    renamed = await store.rename_host_link(series.id, ana.id, "Ana (Tuesdays)")
    assert renamed is not None and (renamed.name, renamed.token) == ("Ana (Tuesdays)", None)
    match = await links.find_by_link(ana.token)
    assert match is not None and match.role is Role.HOST
    again = await store.get(series.id)
    assert again is not None
    assert [link.name for link in again.host_links] == ["Host", "Ana (Tuesdays)"]

    assert await store.rename_host_link("no-such-series", ana.id, "X") is None
    assert await store.revoke_host_link(series.id, ana.id, now=FIRST)
    assert await store.rename_host_link(series.id, ana.id, "Ana again") is None


async def test_attendance_shows_counts_names_only_on_opt_in_and_is_purged_after_its_time(
    database: Database,
) -> None:
    private = await make_series(database)
    named = await make_series(database, title="Named", attendance_names_visible=True)
    clock = Clock(FIRST)
    links = SqlCircleStore(database, clock)
    for series in (private, named):
        match = await links.find_by_link(series.join_token)
        assert match is not None and match.circle is not None
        circle = replace(match.circle, status=CircleStatus.OPEN, opened_at=FIRST)
        sam = Seat("s1", "Sam", Role.PARTICIPANT, joined_at=FIRST)
        kim = Seat("s2", "Kim", Role.PARTICIPANT, joined_at=FIRST)
        await links.save_state(CircleState(circle).with_seat(sam).with_seat(kim), now=FIRST)
        await links.save_state(CircleState(circle).with_seat(kim), now=FIRST + timedelta(hours=1))

    store = SeriesStore(database)
    found = await store.occurrences(None, FIRST, FIRST + timedelta(hours=1))
    assert found is not None
    by_title = {o.series.fields.title: o.attendance for o in found}
    assert (by_title["Tuesday circle"].present, by_title["Tuesday circle"].total) == (1, 2)
    assert by_title["Tuesday circle"].attendees is None
    named_attendees = by_title["Named"].attendees
    assert named_attendees is not None
    assert [(a.display_name, a.left_at) for a in named_attendees] == [
        ("Sam", FIRST + timedelta(hours=1)),
        ("Kim", None),
    ]

    assert await store.purge_attendance(before=FIRST + timedelta(minutes=59)) == 0
    assert await store.purge_attendance(before=FIRST + timedelta(days=30)) == 2
    after = await store.occurrences(None, FIRST, FIRST + timedelta(hours=1))
    assert after is not None
    assert [(o.attendance.present, o.attendance.total) for o in after] == [(1, 1), (1, 1)]


async def test_deleting_a_series_removes_its_occurrences_links_and_attendance(
    database: Database,
) -> None:
    series = await make_series(database)
    links = SqlCircleStore(database, Clock(FIRST))
    match = await links.find_by_link(series.join_token)
    assert match is not None and match.circle is not None
    await links.save_state(
        CircleState(match.circle).with_seat(Seat("s1", "Sam", Role.HOST, joined_at=FIRST)),
        now=FIRST,
    )

    assert await SeriesStore(database).delete(series.id)

    assert await links.find_by_link(series.join_token) is None
    assert await links.find_by_link(series.host_links[0].token) is None
    assert await links.get_circle(match.circle.id) is None
    assert await links.all_seats(match.circle.id) == []
