"""The circle's decisions, called directly with a clock value instead of sleeping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms import errors, machine
from rooms.audio_policy import audible_seats
from rooms.errors import RoomError
from rooms.machine import CircleChanged, SeatJoined, SeatLeft, SeatUpdated
from rooms.model import Circle, CircleState, CircleStatus, Role
from rooms.schedule import GRACE_AFTER_END, HOST_EARLY

START = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def circle(status: CircleStatus = CircleStatus.SCHEDULED) -> Circle:
    return Circle(
        id="c1",
        title="Tuesday circle",
        starts_at=START,
        duration_minutes=90,
        timezone="Europe/Berlin",
        status=status,
    )


def seated(*people: tuple[str, Role, bool]) -> CircleState:
    state = CircleState(circle())
    for seat_id, role, muted in people:
        state = machine.join(
            state, seat_id=seat_id, display_name=seat_id.title(), role=role, muted=muted, now=START
        ).state
    return state


HOST = ("ana", Role.HOST, False)
SAM = ("sam", Role.PARTICIPANT, False)
KIM = ("kim", Role.PARTICIPANT, True)


def test_host_arrival_opens_a_scheduled_circle() -> None:
    decision = machine.join(
        CircleState(circle()),
        seat_id="ana",
        display_name="Ana",
        role=Role.HOST,
        muted=True,
        now=START - timedelta(minutes=5),
    )
    assert decision.state.circle.status is CircleStatus.OPEN
    assert decision.state.circle.opened_at == START - timedelta(minutes=5)
    assert [type(e) for e in decision.events] == [CircleChanged, SeatJoined]


@pytest.mark.parametrize(
    ("status", "role", "now", "allowed"),
    [
        (CircleStatus.SCHEDULED, Role.PARTICIPANT, START, False),  # nobody opened it yet
        (CircleStatus.OPEN, Role.PARTICIPANT, START, True),
        (
            CircleStatus.OPEN,
            Role.PARTICIPANT,
            START + timedelta(minutes=90) + GRACE_AFTER_END,
            False,
        ),
        (CircleStatus.OPEN, Role.PARTICIPANT, START + timedelta(minutes=100), True),  # grace
        (CircleStatus.ENDED, Role.PARTICIPANT, START, False),
        (CircleStatus.ENDED, Role.HOST, START, False),
        (CircleStatus.SCHEDULED, Role.HOST, START - HOST_EARLY, True),
        (CircleStatus.SCHEDULED, Role.HOST, START - HOST_EARLY - timedelta(seconds=1), False),
        (CircleStatus.SCHEDULED, Role.HOST, START + timedelta(minutes=90) + GRACE_AFTER_END, False),
    ],
)
def test_who_may_enter_when(status: CircleStatus, role: Role, now: datetime, allowed: bool) -> None:
    state = CircleState(circle(status))
    if allowed:
        decision = machine.join(
            state, seat_id="x", display_name="X", role=role, muted=True, now=now
        )
        assert "x" in decision.state.seats
    else:
        with pytest.raises(RoomError) as refused:
            machine.join(state, seat_id="x", display_name="X", role=role, muted=True, now=now)
        assert refused.value.code == errors.CIRCLE_NOT_OPEN


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("  Sam  ", "Sam"), ("Mary   Ann", "Mary Ann"), ("Zoë", "Zoë"), ("x" * 40, "x" * 40)],
)
def test_display_names_are_tidied(raw: str, shown: str) -> None:
    assert machine.clean_display_name(raw) == shown


@pytest.mark.parametrize("raw", ["", "   ", "x" * 41, "Sam\x00", "Sam\u202eevil", "a\nb\tc\x07"])
def test_unusable_display_names_are_refused(raw: str) -> None:
    with pytest.raises(RoomError) as refused:
        machine.clean_display_name(raw)
    assert refused.value.code == errors.INVALID_DISPLAY_NAME


def test_joining_twice_with_the_same_seat_is_refused() -> None:
    state = seated(HOST)
    with pytest.raises(RoomError) as refused:
        machine.join(
            state, seat_id="ana", display_name="Ana", role=Role.HOST, muted=True, now=START
        )
    assert refused.value.code == errors.ALREADY_JOINED


def test_only_unmuted_people_are_audible() -> None:
    state = seated(HOST, SAM, KIM)
    assert audible_seats(state) == {"ana", "sam"}
    state = machine.set_own_mute(state, seat_id="sam", muted=True).state
    assert audible_seats(state) == {"ana"}
    state = machine.set_own_mute(state, seat_id="kim", muted=False).state
    assert audible_seats(state) == {"ana", "kim"}


def test_host_mutes_a_participant_and_the_event_names_the_host() -> None:
    decision = machine.mute_other(seated(HOST, SAM), actor_id="ana", target_id="sam")
    assert decision.state.seats["sam"].muted
    assert decision.events == (SeatUpdated(decision.state.seats["sam"], by="ana"),)
    assert "sam" not in audible_seats(decision.state)


def test_a_participant_cannot_mute_someone_else() -> None:
    state = seated(HOST, SAM)
    with pytest.raises(RoomError) as refused:
        machine.mute_other(state, actor_id="sam", target_id="ana")
    assert refused.value.code == errors.FORBIDDEN
    assert not state.seats["ana"].muted
    # Compared with a fresh copy: a refusal that changed the state in place would show here.
    assert state == seated(HOST, SAM)


def test_muting_someone_absent_is_refused() -> None:
    with pytest.raises(RoomError) as refused:
        machine.mute_other(seated(HOST), actor_id="ana", target_id="ghost")
    assert refused.value.code == errors.UNKNOWN_PARTICIPANT


def test_repeated_mute_changes_nothing_and_says_nothing() -> None:
    state = seated(HOST, KIM)
    decision = machine.mute_other(state, actor_id="ana", target_id="kim")
    assert decision.state == state and decision.events == ()


def test_muted_person_may_unmute_themselves() -> None:
    state = machine.mute_other(seated(HOST, SAM), actor_id="ana", target_id="sam").state
    decision = machine.set_own_mute(state, seat_id="sam", muted=False)
    assert not decision.state.seats["sam"].muted


def test_leaving_frees_the_seat_and_says_so() -> None:
    decision = machine.leave(seated(HOST, SAM), seat_id="sam")
    assert list(decision.state.seats) == ["ana"]
    assert decision.events == (SeatLeft("sam"),)


def test_seats_keep_join_order() -> None:
    assert list(seated(HOST, SAM, KIM).seats) == ["ana", "sam", "kim"]


# --- series rules: capacity and extension (issue 3) ---------------------------------------


def _open_circle(**changes: object) -> CircleState:
    circle = replace(
        Circle(
            id="c1",
            title="Tuesday circle",
            starts_at=START,
            duration_minutes=90,
            timezone="Europe/Berlin",
            status=CircleStatus.OPEN,
            opened_at=START,
        ),
        **changes,  # type: ignore[arg-type]
    )
    return CircleState(circle)


def test_a_full_circle_refuses_participants_but_not_hosts() -> None:
    state = _open_circle(capacity=1)
    state = machine.join(
        state, seat_id="p1", display_name="Sam", role=Role.PARTICIPANT, muted=True, now=START
    ).state

    with pytest.raises(RoomError) as full:
        machine.join(
            state, seat_id="p2", display_name="Kim", role=Role.PARTICIPANT, muted=True, now=START
        )
    assert full.value.code == errors.CIRCLE_FULL
    host = machine.join(
        state, seat_id="h1", display_name="Ana", role=Role.HOST, muted=True, now=START
    )
    assert list(host.state.seats) == ["p1", "h1"]


def test_a_host_extension_keeps_the_circle_open_past_end_and_grace() -> None:
    state = machine.join(
        _open_circle(),
        seat_id="h1",
        display_name="Ana",
        role=Role.HOST,
        muted=True,
        now=START,
    ).state
    late = START + timedelta(minutes=90) + GRACE_AFTER_END

    with pytest.raises(RoomError):
        machine.join(
            state, seat_id="p1", display_name="Sam", role=Role.PARTICIPANT, muted=True, now=late
        )
    with_guest = machine.join(
        state, seat_id="p9", display_name="Kim", role=Role.PARTICIPANT, muted=True, now=START
    ).state
    with pytest.raises(RoomError) as refused:
        machine.extend(with_guest, actor_id="p9", minutes=10, now=START)
    assert refused.value.code == "forbidden"

    extended = machine.extend(state, actor_id="h1", minutes=20, now=START + timedelta(minutes=80))
    assert extended.state.circle.extended_minutes == 20
    assert machine.join(
        extended.state,
        seat_id="p1",
        display_name="Sam",
        role=Role.PARTICIPANT,
        muted=True,
        now=late,
    ).state.seat("p1")
    capped = machine.extend(extended.state, actor_id="h1", minutes=200, now=START)
    assert capped.state.circle.extended_minutes == 120
