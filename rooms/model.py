"""The circle's vocabulary: what a circle is and who sits in it.

All values are immutable; a decision returns a new value instead of changing one.
Datetimes are timezone-aware (UTC); the circle's own IANA zone is kept for display and,
for recurrence. A circle is one occurrence of a series (rooms/lifecycle.py): its id is the
occurrence's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from rooms.window import TimeWindow


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    PARTICIPANT = "participant"


class SpeakingMode(StrEnum):
    # Anyone unmuted is heard.
    OPEN = "open"
    # Only moderators and the person with the floor are heard.
    HAND_RAISE = "hand_raise"


class NoHostPolicy(StrEnum):
    """What a circle does while neither a host nor a co-host is present."""

    CONTINUE = "continue"
    # Everyone is muted and new arrivals wait in the lobby until a host returns.
    HOLD = "hold"


class Presence(StrEnum):
    """Whether a seated person's connection is up (not signaling's Connection interface)."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


class WaitReason(StrEnum):
    LOBBY = "lobby"
    NO_HOST = "no_host"


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
    def window(self) -> TimeWindow:
        return TimeWindow(
            self.starts_at,
            self.duration_minutes,
            self.lobby_minutes,
            self.grace_minutes,
            self.extended_minutes,
        )

    @property
    def ends_at(self) -> datetime:
        return self.window.ends_at


@dataclass(frozen=True, slots=True)
class CircleSettings:
    """What the admin chose for a circle; the live state starts from these."""

    speaking_mode: SpeakingMode = SpeakingMode.OPEN
    lobby: bool = False
    # The salted scrypt hash (signaling/passcodes.py), never the passcode; None: no passcode.
    passcode: str | None = None
    wait_for_host: bool = False
    no_host_policy: NoHostPolicy = NoHostPolicy.CONTINUE
    allow_rename: bool = False
    share_seconds: int | None = None
    crisis_text: str = ""


@dataclass(frozen=True, slots=True)
class Seat:
    """One person present in a circle, known only by the name they chose.

    ``token_hash`` and ``device_hash`` are SHA-256 digests of the seat token (the secret
    that resumes this seat) and the browser's device key (for bans); neither is ever sent
    to anyone. ``label`` is the name as listed, numbered when the name is already taken.
    """

    id: str
    display_name: str
    role: Role
    joined_at: datetime
    muted: bool = True
    label: str = ""
    token_hash: str = ""
    device_hash: str = ""
    # Set while the connection is lost; the seat is kept until this plus RECONNECT_GRACE.
    disconnected_at: datetime | None = None
    unmute_requested: bool = False
    needs_support: bool = False

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.display_name)

    @property
    def connection(self) -> Presence:
        return Presence.CONNECTED if self.disconnected_at is None else Presence.RECONNECTING

    def with_muted(self, muted: bool) -> Seat:
        return replace(
            self, muted=muted, unmute_requested=False if not muted else self.unmute_requested
        )


@dataclass(frozen=True, slots=True)
class Waiting:
    """Someone in the lobby: not seated, not heard, hears nothing."""

    id: str
    display_name: str
    arrived_at: datetime
    reason: WaitReason
    muted: bool = True
    token_hash: str = ""
    device_hash: str = ""
    disconnected_at: datetime | None = None

    @property
    def connection(self) -> Presence:
        return Presence.CONNECTED if self.disconnected_at is None else Presence.RECONNECTING


@dataclass(frozen=True, slots=True)
class Ban:
    """A removed person: refused by device key or seat token, whatever name they give."""

    id: str
    display_name: str
    at: datetime
    device_hash: str = ""
    token_hash: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    """Who has the floor since when, and until when if the turn is time-boxed."""

    seat_id: str
    started_at: datetime
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CircleState:
    """The live state of one circle: its definition and the seats taken right now.

    ``seats`` keeps join order (dicts are ordered), which is the order the list shows.
    """

    circle: Circle
    seats: dict[str, Seat] = field(default_factory=dict)
    settings: CircleSettings = field(default_factory=CircleSettings)
    speaking_mode: SpeakingMode = SpeakingMode.OPEN
    hand_queue: tuple[str, ...] = ()
    turn: Turn | None = None
    share_seconds: int | None = None
    lobby_enabled: bool = False
    lobby: tuple[Waiting, ...] = ()
    locked: bool = False
    bans: tuple[Ban, ...] = ()
    # True while neither a host nor a co-host holds a seat.
    no_host: bool = False

    @classmethod
    def starting(cls, circle: Circle, settings: CircleSettings) -> CircleState:
        """A circle nobody has entered yet, with the live options the admin chose."""
        return cls(
            circle=circle,
            settings=settings,
            speaking_mode=settings.speaking_mode,
            share_seconds=settings.share_seconds,
            lobby_enabled=settings.lobby,
        )

    @property
    def floor(self) -> str | None:
        return None if self.turn is None else self.turn.seat_id

    def waiting(self, waiting_id: str) -> Waiting | None:
        return next((w for w in self.lobby if w.id == waiting_id), None)

    def seat(self, seat_id: str) -> Seat | None:
        return self.seats.get(seat_id)

    def with_seat(self, seat: Seat) -> CircleState:
        seats = dict(self.seats)
        seats[seat.id] = seat
        return replace(self, seats=seats)

    def without_seat(self, seat_id: str) -> CircleState:
        """The state without this seat, and without its hand or floor."""
        seats = {k: v for k, v in self.seats.items() if k != seat_id}
        turn = None if self.turn is not None and self.turn.seat_id == seat_id else self.turn
        queue = tuple(q for q in self.hand_queue if q != seat_id)
        return replace(self, seats=seats, turn=turn, hand_queue=queue)

    def with_circle(self, circle: Circle) -> CircleState:
        return replace(self, circle=circle)
