"""The circle's state machine: commands in, new state and events out.

Each command is a pure function of the current state, the actor and ``now``. It either
raises RoomError (and nothing changes) or returns a Decision: the next state and the events
that the I/O edge must carry out (tell clients, gate audio, close a connection).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime

from rooms import errors
from rooms.errors import RoomError
from rooms.lifecycle import MAX_EXTENSION_MINUTES
from rooms.model import CircleState, Role, Seat
from rooms.schedule import FULL_MESSAGE, NOT_OPEN_MESSAGE, admit, is_over

MAX_DISPLAY_NAME = 40


@dataclass(frozen=True, slots=True)
class SeatJoined:
    seat: Seat


@dataclass(frozen=True, slots=True)
class SeatLeft:
    seat_id: str


@dataclass(frozen=True, slots=True)
class SeatUpdated:
    seat: Seat
    # Who caused the change, when it was not the person themselves (e.g. a host's mute).
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CircleChanged:
    """The circle's status changed (opened, ended)."""


@dataclass(frozen=True, slots=True)
class CircleExtended:
    """A host kept the circle open longer; everyone is told the new closing time."""


Event = SeatJoined | SeatLeft | SeatUpdated | CircleChanged | CircleExtended


@dataclass(frozen=True, slots=True)
class Decision:
    state: CircleState
    events: tuple[Event, ...] = field(default_factory=tuple)


def clean_display_name(raw: str) -> str:
    """The name as shown, or RoomError if there is nothing sensible to show.

    Whitespace runs fold to one space; control and format characters (including bidi
    overrides that could disguise a name) are refused rather than silently dropped.
    """
    name = " ".join(raw.split())
    if not name:
        raise RoomError(errors.INVALID_DISPLAY_NAME, "Please choose a name to be shown.")
    if len(name) > MAX_DISPLAY_NAME:
        raise RoomError(
            errors.INVALID_DISPLAY_NAME,
            f"A name can be at most {MAX_DISPLAY_NAME} characters.",
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in name):
        raise RoomError(errors.INVALID_DISPLAY_NAME, "The name contains characters not allowed.")
    return name


def join(
    state: CircleState,
    *,
    seat_id: str,
    display_name: str,
    role: Role,
    muted: bool,
    now: datetime,
) -> Decision:
    if seat_id in state.seats:
        raise RoomError(errors.ALREADY_JOINED, "You are already in this circle.")
    name = clean_display_name(display_name)
    circle = admit(state.circle, role, now)
    capacity = circle.capacity
    if role is Role.PARTICIPANT and capacity is not None and len(state.seats) >= capacity:
        raise RoomError(errors.CIRCLE_FULL, FULL_MESSAGE)
    seat = Seat(id=seat_id, display_name=name, role=role, joined_at=now, muted=muted)
    events: list[Event] = []
    next_state = state
    if circle != state.circle:
        next_state = next_state.with_circle(circle)
        events.append(CircleChanged())
    next_state = next_state.with_seat(seat)
    events.append(SeatJoined(seat))
    return Decision(next_state, tuple(events))


def leave(state: CircleState, *, seat_id: str) -> Decision:
    if seat_id not in state.seats:
        raise RoomError(errors.UNKNOWN_PARTICIPANT, "That person is not in this circle.")
    return Decision(state.without_seat(seat_id), (SeatLeft(seat_id),))


def set_own_mute(state: CircleState, *, seat_id: str, muted: bool) -> Decision:
    seat = _present(state, seat_id)
    if seat.muted == muted:
        return Decision(state)
    updated = seat.with_muted(muted)
    return Decision(state.with_seat(updated), (SeatUpdated(updated),))


def mute_other(state: CircleState, *, actor_id: str, target_id: str) -> Decision:
    """A host mutes someone. Unmuting another person is never done remotely."""
    actor = _present(state, actor_id)
    if actor.role is not Role.HOST:
        raise RoomError(errors.FORBIDDEN, "Only a host can mute someone else.")
    target = _present(state, target_id)
    if target.muted:
        return Decision(state)
    updated = target.with_muted(True)
    return Decision(state.with_seat(updated), (SeatUpdated(updated, by=actor_id),))


def extend(state: CircleState, *, actor_id: str, minutes: int, now: datetime) -> Decision:
    """A host keeps the circle open longer than its end plus grace (capped in total)."""
    actor = _present(state, actor_id)
    if actor.role is not Role.HOST:
        raise RoomError(errors.FORBIDDEN, "Only a host can extend the circle.")
    circle = state.circle
    if is_over(circle, now):
        raise RoomError(errors.CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
    total = min(circle.extended_minutes + minutes, MAX_EXTENSION_MINUTES)
    if total == circle.extended_minutes:
        return Decision(state)
    extended = replace(circle, extended_minutes=total)
    return Decision(state.with_circle(extended), (CircleExtended(),))


def _present(state: CircleState, seat_id: str) -> Seat:
    seat = state.seat(seat_id)
    if seat is None:
        raise RoomError(errors.UNKNOWN_PARTICIPANT, "That person is not in this circle.")
    return seat
