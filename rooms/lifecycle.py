"""An occurrence's life: scheduled -> open -> live -> closed (or cancelled).

- scheduled: before the lobby opens;
- open: the lobby is open (``lobby_minutes`` before the start): a host may open the circle;
- live: from the start to the end;
- closed: from the end plus the grace period (plus whatever a host extended) on.

The phase is a function of the occurrence and ``now``; nothing here reads a clock. Which
occurrence a series link opens is decided here too (``current_or_next``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from rooms.recurrence import SeriesSchedule, starts_between
from rooms.window import TimeWindow

DEFAULT_LOBBY_MINUTES = 30
DEFAULT_GRACE_MINUTES = 15
MAX_EXTENSION_MINUTES = 120


class Phase(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    LIVE = "live"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One meeting of a series.

    ``original_start`` is where the rule put it (its identity, RFC 5545's RECURRENCE-ID);
    ``starts_at`` is where it is now (different when it was moved).
    """

    series_id: str
    original_start: datetime
    starts_at: datetime
    duration_minutes: int
    cancelled: bool = False
    extended_minutes: int = 0
    # The id of its stored row, when that predates occurrence ids (circles made before series).
    stored_id: str | None = None

    @property
    def id(self) -> str:
        return self.stored_id or occurrence_id(self.series_id, self.original_start)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    def window(self, windows: Windows) -> TimeWindow:
        return TimeWindow(
            self.starts_at,
            self.duration_minutes,
            windows.lobby_minutes,
            windows.grace_minutes,
            self.extended_minutes,
        )

    @property
    def moved(self) -> bool:
        return self.starts_at != self.original_start


@dataclass(frozen=True, slots=True)
class Override:
    """What an admin changed about one occurrence (or what it accumulated while running)."""

    starts_at: datetime
    duration_minutes: int
    cancelled: bool
    extended_minutes: int = 0
    stored_id: str | None = None


@dataclass(frozen=True, slots=True)
class Windows:
    """A series' lobby and grace minutes: with an occurrence, they make its TimeWindow."""

    lobby_minutes: int = DEFAULT_LOBBY_MINUTES
    grace_minutes: int = DEFAULT_GRACE_MINUTES


# Occurrence ids must fit 32 characters: up to 20 of the series id, "-", up to 11 digits.
SERIES_ID_PREFIX = 20


def occurrence_id(series_id: str, original_start: datetime) -> str:
    """Stable id of an occurrence: its series and its original start (seconds since 1970)."""
    return f"{series_id[:SERIES_ID_PREFIX]}-{int(original_start.timestamp())}"


def original_start_of(series_id: str, value: str) -> datetime | None:
    """The original start an occurrence id of this series names, or None."""
    prefix, sep, seconds = value.rpartition("-")
    if sep != "-" or prefix != series_id[:SERIES_ID_PREFIX]:
        return None
    if not seconds.isdigit() or len(seconds) > 11:
        return None
    return datetime.fromtimestamp(int(seconds), UTC)


def opens_at(occurrence: Occurrence, windows: Windows) -> datetime:
    return occurrence.window(windows).opens_at


def closes_at(occurrence: Occurrence, windows: Windows) -> datetime:
    return occurrence.window(windows).closes_at


def phase(occurrence: Occurrence, windows: Windows, now: datetime) -> Phase:
    if occurrence.cancelled:
        return Phase.CANCELLED
    if now >= closes_at(occurrence, windows):
        return Phase.CLOSED
    if now >= occurrence.starts_at:
        return Phase.LIVE
    if now >= opens_at(occurrence, windows):
        return Phase.OPEN
    return Phase.SCHEDULED


def occurrences_between(
    series_id: str,
    schedule: SeriesSchedule,
    overrides: Mapping[datetime, Override],
    after: datetime,
    before: datetime,
) -> list[Occurrence]:
    """Occurrences whose (current) start lies in [after, before), sorted by start.

    ``overrides`` maps original starts to what changed. A moved occurrence appears where it
    now is: in the range if it was moved into it, not if it was moved out.
    """
    found: dict[datetime, Occurrence] = {}
    for start in starts_between(schedule, after, before):
        found[start] = Occurrence(series_id, start, start, schedule.duration_minutes)
    for original, override in overrides.items():
        found[original] = Occurrence(
            series_id,
            original,
            override.starts_at,
            override.duration_minutes,
            override.cancelled,
            override.extended_minutes,
            override.stored_id,
        )
    return sorted(
        (o for o in found.values() if after <= o.starts_at < before),
        key=lambda o: (o.starts_at, o.original_start),
    )


def current_or_next(
    occurrences: Iterable[Occurrence], windows: Windows, now: datetime
) -> tuple[Occurrence | None, Occurrence | None]:
    """(the occurrence whose window contains ``now``, the next one to start after now).

    The window runs from the lobby opening to the close. When two windows touch, the one
    that started earlier wins until it closes. Cancelled occurrences are neither.
    """
    current: Occurrence | None = None
    upcoming: Occurrence | None = None
    for occurrence in sorted(occurrences, key=lambda o: o.starts_at):
        if occurrence.cancelled:
            continue
        if current is None and occurrence.window(windows).contains(now):
            current = occurrence
        elif occurrence.starts_at > now and upcoming is None and occurrence is not current:
            upcoming = occurrence
    return current, upcoming


def clashing_neighbour(
    moved: Occurrence, others: Iterable[Occurrence], windows: Windows
) -> Occurrence | None:
    """Another (not cancelled) occurrence whose window would overlap ``moved``'s, if any.

    Windows run from the lobby opening to the close. Two that overlap would make the series
    link ambiguous (which circle does it open?) and put one group's lobby inside another's
    meeting, so a move may not create one.
    """
    for other in sorted(others, key=lambda o: o.starts_at):
        if other.cancelled or other.original_start == moved.original_start:
            continue
        if moved.window(windows).overlaps(other.window(windows)):
            return other
    return None


def extend(occurrence: Occurrence, minutes: int) -> Occurrence:
    """A host keeps the circle open longer; the total is capped."""
    total = min(occurrence.extended_minutes + minutes, MAX_EXTENSION_MINUTES)
    return replace(occurrence, extended_minutes=total)
