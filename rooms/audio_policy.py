"""Whose voice may be heard: the one question the audio path asks the room.

The audio path drops every packet of a seat that is not in this set where it enters the
server, whatever that person's browser sends.
"""

from __future__ import annotations

from rooms.model import CircleState


def audible_seats(state: CircleState) -> frozenset[str]:
    return frozenset(seat.id for seat in state.seats.values() if not seat.muted)
