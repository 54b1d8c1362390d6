"""SqlCircleStore: what signaling reads and writes, and what survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from rooms.model import Circle, CircleState, CircleStatus, Role, Seat
from server.storage.database import Database
from server.storage.models import SeatRow
from server.storage.repository import CircleNotFound, ScheduledCircle, SqlCircleStore

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
STARTS = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)


async def schedule(
    store: SqlCircleStore, title: str = "Tuesday circle", **kw: object
) -> ScheduledCircle:
    fields: dict[str, object] = {
        "title": title,
        "starts_at": STARTS,
        "duration_minutes": 90,
        "timezone": "Europe/Berlin",
        "now": NOW,
    }
    fields.update(kw)
    return await store.create_circle(**fields)  # type: ignore[arg-type]


def seat(seat_id: str, role: Role = Role.PARTICIPANT, *, muted: bool = True, at: int = 0) -> Seat:
    return Seat(
        id=seat_id,
        display_name=f"Person {seat_id}",
        role=role,
        joined_at=NOW + timedelta(minutes=at),
        muted=muted,
    )


def opened(circle: Circle, at: datetime) -> Circle:
    return Circle(
        id=circle.id,
        title=circle.title,
        starts_at=circle.starts_at,
        duration_minutes=circle.duration_minutes,
        timezone=circle.timezone,
        status=CircleStatus.OPEN,
        opened_at=at,
        capacity=circle.capacity,
    )


async def test_join_and_host_links_find_the_circle_with_their_roles(database: Database) -> None:
    store = SqlCircleStore(database)
    scheduled = await schedule(store)
    await schedule(store, "Another circle")

    as_participant = await store.find_by_link(scheduled.join_token)
    as_host = await store.find_by_link(scheduled.host_token)

    assert as_participant is not None and as_host is not None
    assert as_participant.role is Role.PARTICIPANT
    assert as_host.role is Role.HOST
    assert as_participant.circle == as_host.circle == scheduled.circle
    assert scheduled.circle.status is CircleStatus.SCHEDULED
    assert scheduled.join_token != scheduled.host_token


@pytest.mark.parametrize("token", ["", "unknown", "x" * 200])
async def test_unknown_link_finds_nothing(database: Database, token: str) -> None:
    store = SqlCircleStore(database)
    await schedule(store)

    assert await store.find_by_link(token) is None


async def test_times_come_back_aware_in_utc_whatever_offset_went_in(database: Database) -> None:
    store = SqlCircleStore(database)
    berlin_evening = datetime(2026, 11, 27, 20, 0, tzinfo=timezone(timedelta(hours=1)))
    scheduled = await schedule(store, starts_at=berlin_evening)

    stored = await store.get_circle(scheduled.circle.id)

    assert stored is not None
    assert stored.circle.starts_at == STARTS
    assert stored.circle.starts_at.tzinfo is UTC
    assert stored.created_at == NOW


async def test_circles_are_listed_soonest_first(database: Database) -> None:
    store = SqlCircleStore(database)
    later = await schedule(store, "Later", starts_at=STARTS + timedelta(days=1))
    sooner = await schedule(store, "Sooner", starts_at=STARTS)

    listed = await store.list_circles()

    assert [c.circle.id for c in listed] == [sooner.circle.id, later.circle.id]
    assert await store.get_circle("missing") is None


async def test_saved_state_round_trips_status_seats_and_mutes(database: Database) -> None:
    store = SqlCircleStore(database)
    scheduled = await schedule(store)
    host, ana, sam = seat("h1", Role.HOST, muted=False), seat("p1", at=1), seat("p2", at=2)
    state = CircleState(opened(scheduled.circle, NOW)).with_seat(host).with_seat(ana)
    await store.save_state(state, now=NOW)

    # Ana unmutes, Sam arrives, the host leaves.
    later = NOW + timedelta(minutes=5)
    state = state.with_seat(ana.with_muted(False)).with_seat(sam).without_seat("h1")
    await store.save_state(state, now=later)

    match = await store.find_by_link(scheduled.join_token)
    assert match is not None
    assert match.circle.status is CircleStatus.OPEN
    assert match.circle.opened_at == NOW

    present = await store.present_seats(scheduled.circle.id)
    assert [(s.id, s.role, s.muted, s.display_name) for s in present] == [
        ("p1", "participant", False, "Person p1"),
        ("p2", "participant", True, "Person p2"),
    ]
    assert present[0].joined_at == ana.joined_at

    everyone = {s.id: s for s in await store.all_seats(scheduled.circle.id)}
    assert everyone["h1"].left_at == later
    assert everyone["h1"].role == "host"


async def test_a_seat_that_comes_back_is_present_again(database: Database) -> None:
    store = SqlCircleStore(database)
    scheduled = await schedule(store)
    state = CircleState(opened(scheduled.circle, NOW)).with_seat(seat("p1"))
    await store.save_state(state, now=NOW)
    await store.save_state(state.without_seat("p1"), now=NOW + timedelta(minutes=1))

    await store.save_state(state, now=NOW + timedelta(minutes=2))

    assert [s.id for s in await store.present_seats(scheduled.circle.id)] == ["p1"]


async def test_saving_one_circle_leaves_other_circles_seats_alone(database: Database) -> None:
    store = SqlCircleStore(database)
    first, second = await schedule(store, "First"), await schedule(store, "Second")
    # The same seat id in two circles is two different seats.
    await store.save_state(CircleState(opened(first.circle, NOW)).with_seat(seat("p1")), now=NOW)
    await store.save_state(CircleState(opened(second.circle, NOW)).with_seat(seat("p1")), now=NOW)

    await store.save_state(CircleState(opened(first.circle, NOW)), now=NOW)

    assert await store.present_seats(first.circle.id) == []
    assert [s.id for s in await store.present_seats(second.circle.id)] == ["p1"]


async def test_saving_an_unknown_circle_fails_and_writes_nothing(database: Database) -> None:
    store = SqlCircleStore(database)
    ghost = Circle(id="ghost", title="x", starts_at=STARTS, duration_minutes=5, timezone="UTC")

    with pytest.raises(CircleNotFound):
        await store.save_state(CircleState(ghost).with_seat(seat("p1")), now=NOW)

    assert await store.all_seats("ghost") == []


async def test_close_stale_seats_marks_everyone_present_as_left(database: Database) -> None:
    store = SqlCircleStore(database)
    first, second = await schedule(store, "First"), await schedule(store, "Second")
    await store.save_state(
        CircleState(opened(first.circle, NOW)).with_seat(seat("h1", Role.HOST)), now=NOW
    )
    await store.save_state(
        CircleState(opened(second.circle, NOW)).with_seat(seat("p1")).with_seat(seat("p2")),
        now=NOW,
    )
    restart = NOW + timedelta(minutes=10)

    assert await store.close_stale_seats(restart) == 3

    for circle_id in (first.circle.id, second.circle.id):
        assert await store.present_seats(circle_id) == []
        assert {s.left_at for s in await store.all_seats(circle_id)} == {restart}
    assert await store.close_stale_seats(restart) == 0


async def test_data_survives_closing_and_reopening_the_database(database_url: str) -> None:
    first_run = Database(database_url)
    await first_run.connect()
    store = SqlCircleStore(first_run)
    scheduled = await schedule(store)
    open_state = CircleState(opened(scheduled.circle, NOW)).with_seat(seat("h1", Role.HOST))
    await store.save_state(open_state, now=NOW)
    await first_run.close()

    second_run = Database(database_url)
    await second_run.connect()
    try:
        store = SqlCircleStore(second_run)
        match = await store.find_by_link(scheduled.host_token)
        assert match is not None
        assert match.circle == open_state.circle
        assert [s.id for s in await store.present_seats(scheduled.circle.id)] == ["h1"]
    finally:
        await second_run.close()


async def test_the_database_refuses_a_seat_without_its_circle(database: Database) -> None:
    # SQLite only enforces foreign keys when asked, per connection; Database asks.
    async with database.sessions() as session:
        session.add(
            SeatRow(
                circle_id="ghost",
                id="p1",
                display_name="Sam",
                role="participant",
                muted=True,
                joined_at=NOW,
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_a_batch_of_decisions_is_stored_in_one_transaction_with_each_ones_times(
    database: Database,
) -> None:
    from rooms.machine import AuditEntry
    from signaling.store import StateWrite

    store = SqlCircleStore(database)
    scheduled = await schedule(store)
    open_state = CircleState(opened(scheduled.circle, NOW))
    host, sam, kim = seat("h1", Role.HOST), seat("p1"), seat("p2")
    first = open_state.with_seat(host).with_seat(sam).with_seat(kim)
    mute = AuditEntry("mute", "h1", "Host", "host", "p1", "Sam")
    remove = AuditEntry("remove", "h1", "Host", "host", "p2", "Kim")
    t1, t2, t3 = (NOW + timedelta(minutes=m) for m in (1, 2, 3))
    before = database.transactions
    await store.save_batch(
        [
            StateWrite(first, NOW),
            StateWrite(first.with_seat(sam.with_muted(True)), t1, (mute,)),
            StateWrite(first.without_seat("p2"), t2, (remove,)),
            StateWrite(first.without_seat("p2"), t3),
        ]
    )
    assert database.transactions == before + 1
    records = await store.audit_log(scheduled.circle.id)
    assert [(r.action, r.at) for r in records] == [("mute", t1), ("remove", t2)]
    seats = {s.id: s for s in await store.all_seats(scheduled.circle.id)}
    # Kim left when the batch first saw her gone, not when it was written.
    assert seats["p2"].left_at == t2
    assert seats["h1"].left_at is None and seats["p1"].left_at is None


async def test_concurrent_batches_of_many_circles_never_fail(database: Database) -> None:
    import asyncio

    from signaling.store import StateWrite

    store = SqlCircleStore(database)
    circles = [await schedule(store, f"Circle {i}") for i in range(6)]

    async def churn(scheduled: ScheduledCircle) -> None:
        state = CircleState(opened(scheduled.circle, NOW))
        for n in range(15):
            state = state.with_seat(seat(f"s{n}", at=n))
            await store.save_batch([StateWrite(state, NOW + timedelta(seconds=n))])

    # One writer on SQLite, retries on PostgreSQL: no "database is locked", nothing lost.
    await asyncio.gather(*(churn(c) for c in circles))
    for scheduled in circles:
        assert len(await store.present_seats(scheduled.circle.id)) == 15
