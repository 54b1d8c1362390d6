"""The circle's vocabulary: what a circle is and who sits in it.

All values are immutable; a decision returns a new value instead of changing one.
Datetimes are timezone-aware (UTC); the circle's own IANA zone is kept for display and,
for recurrence. A circle is one occurrence of a series (rooms/lifecycle.py): its id is the
occurrence's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Role(StrEnum):
    HOST = "host"
    PARTICIPANT = "participant"


class CircleStatus(StrEnum):
    # Created by an admin, nobody has opened it yet.
    SCHEDULED = "scheduled"
    # A host has opened it; participants may come in.
    OPEN = "open"
    # Over: nobody joins any more.
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle as an admin defined it, plus where it is in its life."""

    id: str
    title: str
    starts_at: datetime
    duration_minutes: int
    timezone: str
    status: CircleStatus = CircleStatus.SCHEDULED
    opened_at: datetime | None = None
    ended_at: datetime | None = None
    # How long before the start a host may open it, and how long after the end (plus what
    # a host extended) people may still come in.
    lobby_minutes: int = 30
    grace_minutes: int = 15
    extended_minutes: int = 0
    # Most people seated at once; None means no limit. Hosts are always let in.
    capacity: int | None = None

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


@dataclass(frozen=True, slots=True)
class Seat:
    """One person present in a circle, known only by the name they chose."""

    id: str
    display_name: str
    role: Role
    joined_at: datetime
    muted: bool = True

    def with_muted(self, muted: bool) -> Seat:
        return replace(self, muted=muted)


@dataclass(frozen=True, slots=True)
class CircleState:
    """The live state of one circle: its definition and the seats taken right now.

    ``seats`` keeps join order (dicts are ordered), which is the order the list shows.
    """

    circle: Circle
    seats: dict[str, Seat] = field(default_factory=dict)

    def seat(self, seat_id: str) -> Seat | None:
        return self.seats.get(seat_id)

    def with_seat(self, seat: Seat) -> CircleState:
        seats = dict(self.seats)
        seats[seat.id] = seat
        return replace(self, seats=seats)

    def without_seat(self, seat_id: str) -> CircleState:
        seats = {k: v for k, v in self.seats.items() if k != seat_id}
        return replace(self, seats=seats)

    def with_circle(self, circle: Circle) -> CircleState:
        return replace(self, circle=circle)
