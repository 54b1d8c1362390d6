"""What signaling needs from storage, and nothing more.

server/ implements this with SQLAlchemy; signaling/ never imports the implementation, so
the live circle can be tested against an in-memory store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rooms.machine import AuditEntry
from rooms.model import Circle, CircleSettings, CircleState, Role


@dataclass(frozen=True, slots=True)
class LinkMatch:
    """The circle a link opens now, the role the link grants, and the circle's settings.

    A series link outside every occurrence's window matches without a circle; then
    ``next_starts_at`` says when the next occurrence starts (if one is planned). Inside a
    window that has not started yet, it is that occurrence's start.
    """

    circle: Circle | None
    role: Role
    next_starts_at: datetime | None = None
    settings: CircleSettings = field(default_factory=CircleSettings)


class StorageUnavailable(Exception):
    """The database cannot be reached now (stopped, restarting, network cut).

    Raised by a store after its own retries of transient errors; the live circle keeps its
    decisions in memory and writes them when the database is back.
    """


class LeaseLost(Exception):
    """Several nodes: the circle was claimed by another node (its fencing token in the
    database is not this node's any more), so nothing of it may be written from here. The
    live circle stops and its people reconnect to the new owner."""


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One decided command waiting to be stored: the state it left, when, and its audit."""

    state: CircleState
    now: datetime
    audit: Sequence[AuditEntry] = ()


class CircleStore(Protocol):
    async def find_by_link(self, token: str) -> LinkMatch | None:
        """The current occurrence of the series whose join or host link is ``token``, or
        None when no series has such a link (unknown, rotated or revoked)."""
        ...

    async def load_state(self, match: LinkMatch) -> CircleState | None:
        """The live state last saved for this circle (with ``match``'s settings), or None."""
        ...

    async def save_state(
        self, state: CircleState, *, now: datetime, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Persist the live state, and the moderation actions that led to it, in one
        transaction.

        Writes the circle's status (and opened_at/ended_at), the whole live state (roles,
        floor, queue, mutes, lobby, lock, bans, timer) and every seat in ``state`` for
        attendance (display name, role, muted, joined_at). Seats of this circle that are
        stored as present but are not in ``state`` any more are marked as left at ``now``.
        """
        ...

    async def save_batch(self, writes: Sequence[StateWrite]) -> None:
        """Persist several decisions of one circle, in order, in one transaction (group
        commit): the last state is the one kept; every audit entry keeps its own time;
        a seat that left between two states is marked as left at the time of the first
        state without it. Raises StorageUnavailable when the database cannot be reached.
        """
        ...
