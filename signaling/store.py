"""What signaling needs from storage, and nothing more.

server/ implements this with SQLAlchemy; signaling/ never imports the implementation, so
the live circle can be tested against an in-memory store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rooms.model import Circle, CircleState, Role


@dataclass(frozen=True, slots=True)
class LinkMatch:
    """The circle a link opens, and the role the link grants."""

    circle: Circle
    role: Role


class CircleStore(Protocol):
    async def find_by_link(self, token: str) -> LinkMatch | None:
        """The circle whose join or host link carries ``token``, or None."""
        ...

    async def save_state(self, state: CircleState, *, now: datetime) -> None:
        """Persist the live state in one transaction.

        Writes the circle's status (and opened_at/ended_at) and every seat in ``state``
        (display name, role, muted, joined_at). Seats of this circle that are stored as
        present but are not in ``state`` any more are marked as left at ``now``.
        """
        ...
