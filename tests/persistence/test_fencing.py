"""Fencing tokens: a node that lost its claim on a circle cannot write its state any more."""

from __future__ import annotations

import pytest

from rooms.model import CircleState
from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from signaling.store import LeaseLost, StateWrite
from tests.persistence.test_circle_store import NOW, opened, schedule, seat


async def test_a_write_with_an_older_fencing_token_is_refused_and_changes_nothing(
    database: Database,
) -> None:
    store = SqlCircleStore(database)
    circle = (await schedule(store, "Fenced")).circle
    first = await store.claim_fence(circle.id)  # node A loads the circle
    state = CircleState(opened(circle, NOW)).with_seat(seat("s-ana"))
    await store.save_batch([StateWrite(state, NOW)], fence=first)

    second = await store.claim_fence(circle.id)  # node B took it over (A paused)
    assert second == first + 1
    stale = state.with_seat(seat("s-stale"))
    with pytest.raises(LeaseLost):
        await store.save_batch([StateWrite(stale, NOW)], fence=first)

    present = await store.present_seats(circle.id)
    assert {s.id for s in present} == {"s-ana"}
    # The new owner writes on.
    newer = state.with_seat(seat("s-sam"))
    await store.save_batch([StateWrite(newer, NOW)], fence=second)
    assert {s.id for s in await store.present_seats(circle.id)} == {"s-ana", "s-sam"}


async def test_a_starting_node_closes_the_seats_of_circles_no_node_runs_only(
    database: Database,
) -> None:
    store = SqlCircleStore(database)
    live = (await schedule(store, "Live elsewhere")).circle
    orphan = (await schedule(store, "Its node died")).circle
    for circle, seat_id in ((live, "s-live"), (orphan, "s-orphan")):
        await store.save_batch(
            [StateWrite(CircleState(opened(circle, NOW)).with_seat(seat(seat_id)), NOW)]
        )
    assert await store.close_stale_seats(NOW, live={live.id}) == 1
    assert [s.id for s in await store.present_seats(live.id)] == ["s-live"]
    assert await store.present_seats(orphan.id) == []
