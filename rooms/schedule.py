"""When a circle can be entered by its link (the window itself is rooms/window.py).

A host may open a circle from when its lobby opens (``lobby_minutes`` before its start);
once open, anyone with the join link may come in until the end plus a grace period
(conversations rarely stop on the minute) plus whatever a host extended.
Past that the circle is over, whatever its stored status says.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from rooms.errors import CIRCLE_NOT_OPEN, RoomError
from rooms.model import Circle, CircleStatus, Role

# The defaults of Circle.lobby_minutes and Circle.grace_minutes.
HOST_EARLY = timedelta(minutes=30)
GRACE_AFTER_END = timedelta(minutes=15)

NOT_OPEN_MESSAGE = "This circle is not open right now."
FULL_MESSAGE = "This circle is full right now."


def closes_at(circle: Circle) -> datetime:
    return circle.window.closes_at


def lobby_opens_at(circle: Circle) -> datetime:
    return circle.window.opens_at


def is_over(circle: Circle, now: datetime) -> bool:
    return circle.status is CircleStatus.ENDED or now >= closes_at(circle)


def arrive(circle: Circle, role: Role, now: datetime) -> Circle:
    """Decide whether someone holding a link of ``role`` may enter now.

    (Not rooms.machine.admit, which is a host letting someone in from the lobby.)

    Returns the circle as it is after their arrival: a host's arrival opens a scheduled
    circle. Refusals all carry the same code and message, so that a link that does not exist
    cannot be told apart from one whose circle is closed.
    """
    if is_over(circle, now):
        raise RoomError(CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
    if role is Role.HOST:
        if now < lobby_opens_at(circle):
            raise RoomError(CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
        if circle.status is CircleStatus.SCHEDULED:
            return replace(circle, status=CircleStatus.OPEN, opened_at=now)
        return circle
    if circle.status is not CircleStatus.OPEN:
        raise RoomError(CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
    return circle
