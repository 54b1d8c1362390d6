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
    """The circle a link opens, the role the link grants, and the circle's settings."""

    circle: Circle
    role: Role
    settings: CircleSettings = field(default_factory=CircleSettings)


class CircleStore(Protocol):
    async def find_by_link(self, token: str) -> LinkMatch | None:
        """The circle whose join or host link carries ``token``, or None."""
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
