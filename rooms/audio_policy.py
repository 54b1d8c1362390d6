"""Whose voice may be heard: the one question the audio path asks the room.

The audio path drops every packet of a seat that is not in this set where it enters the
server, whatever that person's browser sends.
"""

from __future__ import annotations

from rooms.model import CircleState, Seat, SpeakingMode
from rooms.roles import is_moderator


def may_speak(state: CircleState, seat: Seat) -> bool:
    """Whether the room lets this person speak now (muted or not).

    In hand-raise mode that is the person with the floor and the moderators, who have to
    be able to guide the circle.
    """
    if state.speaking_mode is SpeakingMode.OPEN:
        return True
    return is_moderator(seat.role) or state.floor == seat.id


def audible_seats(state: CircleState) -> frozenset[str]:
    return frozenset(
        seat.id
        for seat in state.seats.values()
        if not seat.muted and seat.disconnected_at is None and may_speak(state, seat)
    )
