"""When one meeting can be entered: the one model of an occurrence's time window.

    opens_at -- lobby -- starts_at -- meeting -- ends_at -- grace (+ extension) -- closes_at

A host may open the circle from ``opens_at``; people may come in until ``closes_at``: the end
plus a grace period (conversations rarely stop on the minute) plus whatever a host extended.
Both a live circle (rooms.model.Circle, rooms/schedule.py) and a scheduled occurrence of a
series (rooms/lifecycle.py) are placed in time by this one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class TimeWindow:
    starts_at: datetime
    duration_minutes: int
    lobby_minutes: int
    grace_minutes: int
    extended_minutes: int = 0

    @property
    def opens_at(self) -> datetime:
        return self.starts_at - timedelta(minutes=self.lobby_minutes)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    @property
    def closes_at(self) -> datetime:
        return self.ends_at + timedelta(minutes=self.grace_minutes + self.extended_minutes)

    def contains(self, now: datetime) -> bool:
        """From the lobby opening (inclusive) to the close (exclusive)."""
        return self.opens_at <= now < self.closes_at

    def overlaps(self, other: TimeWindow) -> bool:
        return self.opens_at < other.closes_at and other.opens_at < self.closes_at
