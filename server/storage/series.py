"""Series, their occurrences, host link rosters and attendance, in SQL.

A series row says when it meets; occurrences come from its rule, and only those that something
happened to (moved, cancelled, ran) have a row in ``circles``. Every method is one
transaction. Decisions (expansion, phases) are rooms/'s; this module only loads and stores.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.lifecycle import (
    Occurrence,
    Override,
    Windows,
    clashing_neighbour,
    current_or_next,
    occurrences_between,
    original_start_of,
)
from rooms.model import Circle, CircleStatus
from rooms.recurrence import SeriesSchedule, is_start
from server.storage.database import Database
from server.storage.models import CircleRow, HostLinkRow, SeatRow, SeriesRow

LINK_TOKEN_BYTES = 24
# Looking for "the occurrence now" starts this far back: the longest circle (24 h) plus its
# grace and the longest extension fit in it.
LOOK_BACK = timedelta(days=2)
LOOK_AHEAD = timedelta(days=400)


def new_series_id() -> str:
    # 16 hex characters: an occurrence id (series id, "-", seconds) then fits 32.
    return secrets.token_hex(8)


def new_row_id() -> str:
    return secrets.token_hex(16)


def new_link_token() -> str:
    return secrets.token_urlsafe(LINK_TOKEN_BYTES)


def hash_link_token(token: str) -> str:
    """SHA-256 hex of a link token: what is stored and looked up for a host link.

    Tokens are 192 random bits, so a plain hash cannot be reversed by guessing; a slow,
    salted hash would only make every join slower (and a salt would forbid the index).
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SeriesFields:
    """What an admin sets on a series (validated by the API before it gets here)."""

    title: str
    description: str
    first_start: datetime
    timezone: str
    duration_minutes: int
    rrule: str | None
    ends_on: date | None
    capacity: int | None
    lobby_minutes: int
    grace_minutes: int
    public: bool
    attendance_names_visible: bool

    @property
    def schedule(self) -> SeriesSchedule:
        return SeriesSchedule(
            self.first_start, self.timezone, self.duration_minutes, self.rrule, self.ends_on
        )

    @property
    def windows(self) -> Windows:
        return Windows(self.lobby_minutes, self.grace_minutes)


@dataclass(frozen=True, slots=True)
class DroppedChange:
    """A move or cancellation an edit of the series could not keep."""

    original_start: datetime
    change: Literal["cancelled", "moved"]
    reason: str


def changes_of(*, cancelled: bool, moved: bool) -> list[Literal["cancelled", "moved"]]:
    changes: list[Literal["cancelled", "moved"]] = []
    if cancelled:
        changes.append("cancelled")
    if moved:
        changes.append("moved")
    return changes


@dataclass(frozen=True, slots=True)
class SeriesUpdate:
    series: Series
    dropped: tuple[DroppedChange, ...]


@dataclass(frozen=True, slots=True)
class HostLink:
    """A named host link. ``token`` is known only just after it was made or rotated."""

    id: str
    name: str
    token: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Series:
    id: str
    fields: SeriesFields
    join_token: str
    host_links: tuple[HostLink, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def windows(self) -> Windows:
        return self.fields.windows


@dataclass(frozen=True, slots=True)
class Attendee:
    display_name: str
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attendance:
    present: int
    total: int
    # Names only when the series opted in; None otherwise.
    attendees: tuple[Attendee, ...] | None


@dataclass(frozen=True, slots=True)
class ScheduledOccurrence:
    series: Series
    occurrence: Occurrence
    attendance: Attendance


def _fields_from_row(row: SeriesRow) -> SeriesFields:
    return SeriesFields(
        title=row.title,
        description=row.description,
        first_start=row.first_start,
        timezone=row.timezone,
        duration_minutes=row.duration_minutes,
        rrule=row.rrule,
        ends_on=row.ends_on,
        capacity=row.capacity,
        lobby_minutes=row.lobby_minutes,
        grace_minutes=row.grace_minutes,
        public=row.public,
        attendance_names_visible=row.attendance_names_visible,
    )


def _apply_fields(row: SeriesRow, fields: SeriesFields) -> None:
    row.title = fields.title
    row.description = fields.description
    row.first_start = fields.first_start
    row.timezone = fields.timezone
    row.duration_minutes = fields.duration_minutes
    row.rrule = fields.rrule
    row.ends_on = fields.ends_on
    row.capacity = fields.capacity
    row.lobby_minutes = fields.lobby_minutes
    row.grace_minutes = fields.grace_minutes
    row.public = fields.public
    row.attendance_names_visible = fields.attendance_names_visible


def _series_from_rows(
    row: SeriesRow, links: Sequence[HostLinkRow], fresh: dict[str, str] | None = None
) -> Series:
    """``fresh`` maps the ids of host links made just now to their tokens (shown once)."""
    fresh = fresh or {}
    return Series(
        id=row.id,
        fields=_fields_from_row(row),
        join_token=row.join_token,
        host_links=tuple(
            HostLink(link.id, link.name, fresh.get(link.id), link.created_at)
            for link in sorted(links, key=lambda link: (link.created_at, link.id))
            if link.revoked_at is None
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def override_from_row(row: CircleRow) -> Override:
    return Override(
        starts_at=row.starts_at,
        duration_minutes=row.duration_minutes,
        cancelled=row.cancelled_at is not None,
        extended_minutes=row.extended_minutes,
        stored_id=row.id,
    )


def circle_for(series: Series, occurrence: Occurrence, row: CircleRow) -> Circle:
    """The live circle of one occurrence (what signaling sees)."""
    fields = series.fields
    return Circle(
        id=row.id,
        title=fields.title,
        starts_at=row.starts_at,
        duration_minutes=row.duration_minutes,
        timezone=fields.timezone,
        status=CircleStatus(row.status),
        opened_at=row.opened_at,
        ended_at=row.ended_at,
        lobby_minutes=fields.lobby_minutes,
        grace_minutes=fields.grace_minutes,
        extended_minutes=row.extended_minutes,
        capacity=fields.capacity,
    )


async def load_series(session: AsyncSession, series_id: str) -> Series | None:
    row = await session.get(SeriesRow, series_id)
    if row is None:
        return None
    links = await session.scalars(select(HostLinkRow).where(HostLinkRow.series_id == series_id))
    return _series_from_rows(row, list(links))


async def load_overrides(
    session: AsyncSession, series_id: str, since: datetime | None = None
) -> dict[datetime, CircleRow]:
    query = select(CircleRow).where(CircleRow.series_id == series_id)
    if since is not None:
        query = query.where(or_(CircleRow.starts_at >= since, CircleRow.original_start >= since))
    rows = await session.scalars(query)
    return {row.original_start: row for row in rows if row.original_start is not None}


def _occurrences(
    series: Series, rows: dict[datetime, CircleRow], after: datetime, before: datetime
) -> list[Occurrence]:
    overrides = {start: override_from_row(row) for start, row in rows.items()}
    return occurrences_between(series.id, series.fields.schedule, overrides, after, before)


NOT_A_MEETING = "Its original time is no meeting of the new schedule."
OVERLAPS = "Moved, it would overlap another meeting of the new schedule."


async def _refit_future(
    session: AsyncSession, series_id: str, fields: SeriesFields, now: datetime
) -> list[DroppedChange]:
    """Fit the stored occurrences that have not begun (and seat nobody) to a new schedule."""
    seated = select(SeatRow.circle_id).distinct()
    rows = list(
        await session.scalars(
            select(CircleRow).where(
                CircleRow.series_id == series_id,
                CircleRow.starts_at > now,
                CircleRow.id.not_in(seated),
            )
        )
    )
    schedule, windows = fields.schedule, fields.windows
    dropped: list[DroppedChange] = []
    kept: dict[datetime, CircleRow] = {}
    for row in sorted(rows, key=lambda r: r.starts_at):
        original = row.original_start
        moved = original is not None and row.starts_at != original
        cancelled = row.cancelled_at is not None
        if original is None or not is_start(schedule, original):
            dropped += [
                DroppedChange(original or row.starts_at, c, NOT_A_MEETING)
                for c in changes_of(cancelled=cancelled, moved=moved)
            ]
            await session.delete(row)
            continue
        row.duration_minutes = fields.duration_minutes
        kept[original] = row
    # A kept move must still not overlap its neighbours under the new schedule and windows.
    for original, row in list(kept.items()):
        if row.starts_at == original or row.cancelled_at is not None:
            continue
        moved_occurrence = Occurrence(series_id, original, row.starts_at, row.duration_minutes)
        span = timedelta(days=2)
        others = occurrences_between(
            series_id,
            schedule,
            {start: override_from_row(r) for start, r in kept.items() if r is not row},
            row.starts_at - span,
            row.starts_at + span,
        )
        if clashing_neighbour(moved_occurrence, others, windows) is not None:
            dropped.append(DroppedChange(original, "moved", OVERLAPS))
            row.starts_at = original
    dropped.sort(key=lambda d: (d.original_start, d.change))
    return dropped


async def materialise(
    sessions: async_sessionmaker[AsyncSession], occurrence: Occurrence, now: datetime
) -> CircleRow:
    """The row of an occurrence, created if it has none (two arrivals at once get one row)."""
    async with sessions() as session:
        existing = await _find_row(session, occurrence)
        if existing is not None:
            return existing
    row = CircleRow(
        id=occurrence.id,
        series_id=occurrence.series_id,
        original_start=occurrence.original_start,
        starts_at=occurrence.starts_at,
        duration_minutes=occurrence.duration_minutes,
        status=CircleStatus.SCHEDULED.value,
        opened_at=None,
        ended_at=None,
        cancelled_at=None,
        extended_minutes=0,
        created_at=now,
    )
    try:
        async with sessions.begin() as session:
            session.add(row)
        return row
    except IntegrityError:
        async with sessions() as session:
            found = await _find_row(session, occurrence)
        if found is None:
            raise
        return found


async def _find_row(session: AsyncSession, occurrence: Occurrence) -> CircleRow | None:
    return await session.scalar(
        select(CircleRow).where(
            CircleRow.series_id == occurrence.series_id,
            CircleRow.original_start == occurrence.original_start,
        )
    )


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a series link opens now: the current occurrence's circle, and the next start."""

    circle: Circle | None
    next_starts_at: datetime | None


async def resolve_series_link(
    sessions: async_sessionmaker[AsyncSession], series: Series, now: datetime
) -> LinkTarget:
    """The occurrence whose window contains ``now`` (given a row), and when the next starts.

    A one-off series always opens its single occurrence: admission then says whether it is
    open (that is how circles behaved before series).
    """
    # A series' past is not read: only rows from LOOK_BACK on (an indexed range), whatever
    # how many occurrences it has had. A one-off has one row, wherever it lies.
    since = None if series.fields.rrule is None else now - LOOK_BACK
    async with sessions() as session:
        rows = await load_overrides(session, series.id, since)
    if series.fields.rrule is None:
        since_ever = datetime.min.replace(tzinfo=now.tzinfo)
        occurrences = _occurrences(series, rows, since_ever, now + LOOK_AHEAD)
        live = [o for o in occurrences if not o.cancelled]
        if not live:
            return LinkTarget(None, None)
        only = live[0]
        # The rows just loaded usually hold it; only a first arrival creates one.
        row = rows.get(only.original_start) or await materialise(sessions, only, now)
        not_begun = only.starts_at if only.starts_at > now else None
        return LinkTarget(circle_for(series, only, row), not_begun)
    occurrences = _occurrences(series, rows, now - LOOK_BACK, now + LOOK_AHEAD)
    current, upcoming = current_or_next(occurrences, series.windows, now)
    if current is None:
        return LinkTarget(None, upcoming.starts_at if upcoming else None)
    row = rows.get(current.original_start) or await materialise(sessions, current, now)
    next_start: datetime | None = current.starts_at
    if current.starts_at <= now:
        next_start = upcoming.starts_at if upcoming else None
    return LinkTarget(circle_for(series, current, row), next_start)


class SeriesStore:
    """Series and their occurrences for the admin API, the feeds and the console."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._database.sessions

    # --- series --------------------------------------------------------------------------

    async def create(
        self, fields: SeriesFields, *, now: datetime, host_names: Sequence[str] = ("Host",)
    ) -> Series:
        row = SeriesRow(id=new_series_id(), join_token=new_link_token(), created_at=now)
        row.updated_at = now
        _apply_fields(row, fields)
        tokens = {new_row_id(): (name, new_link_token()) for name in host_names}
        links = [
            HostLinkRow(
                id=link_id,
                series_id=row.id,
                name=name,
                token_hash=hash_link_token(token),
                created_at=now,
            )
            for link_id, (name, token) in tokens.items()
        ]
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            session.add_all(links)
        return _series_from_rows(row, links, {i: token for i, (_, token) in tokens.items()})

    async def get(self, series_id: str) -> Series | None:
        async with self._sessions() as session:
            return await load_series(session, series_id)

    async def all_series(self, *, public_only: bool = False) -> list[Series]:
        async with self._sessions() as session:
            query = select(SeriesRow).order_by(SeriesRow.first_start, SeriesRow.id)
            if public_only:
                query = query.where(SeriesRow.public.is_(True))
            rows = list(await session.scalars(query))
            links = list(
                await session.scalars(
                    select(HostLinkRow).where(HostLinkRow.series_id.in_([r.id for r in rows]))
                )
            )
        return [_series_from_rows(r, [h for h in links if h.series_id == r.id]) for r in rows]

    async def update(
        self, series_id: str, fields: SeriesFields, *, now: datetime
    ) -> SeriesUpdate | None:
        """Change a series. When its schedule changes, the moves and cancellations of
        occurrences not yet begun are kept where they still fit (the original start is still
        a meeting of the new schedule, a move overlaps no neighbour); the others are dropped
        and returned, so the admin is told. Nothing cancelled comes back unless told so."""
        async with self._sessions.begin() as session:
            row = await session.get(SeriesRow, series_id)
            if row is None:
                return None
            before = _fields_from_row(row)
            _apply_fields(row, fields)
            row.updated_at = now
            dropped: list[DroppedChange] = []
            if before.schedule != fields.schedule or before.windows != fields.windows:
                dropped = await _refit_future(session, series_id, fields, now)
            await session.flush()
            series = await load_series(session, series_id)
            assert series is not None
            return SeriesUpdate(series, tuple(dropped))

    async def delete(self, series_id: str) -> bool:
        async with self._sessions.begin() as session:
            row = await session.get(SeriesRow, series_id)
            if row is None:
                return False
            # circles.series_id has no foreign key (see CircleRow); seats cascade from circles.
            await session.execute(delete(CircleRow).where(CircleRow.series_id == series_id))
            await session.delete(row)
        return True

    async def rotate_join_link(self, series_id: str, *, now: datetime) -> Series | None:
        async with self._sessions.begin() as session:
            row = await session.get(SeriesRow, series_id)
            if row is None:
                return None
            row.join_token = new_link_token()
            row.updated_at = now
            await session.flush()
            return await load_series(session, series_id)

    # --- host links ------------------------------------------------------------------------

    async def add_host_link(self, series_id: str, name: str, *, now: datetime) -> HostLink | None:
        async with self._sessions.begin() as session:
            if await session.get(SeriesRow, series_id) is None:
                return None
            token = new_link_token()
            link = HostLinkRow(
                id=new_row_id(),
                series_id=series_id,
                name=name,
                token_hash=hash_link_token(token),
                created_at=now,
            )
            session.add(link)
        return HostLink(link.id, link.name, token, link.created_at)

    async def revoke_host_link(self, series_id: str, link_id: str, *, now: datetime) -> bool:
        async with self._sessions.begin() as session:
            result: Any = await session.execute(
                update(HostLinkRow)
                .where(
                    HostLinkRow.id == link_id,
                    HostLinkRow.series_id == series_id,
                    HostLinkRow.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    async def rename_host_link(self, series_id: str, link_id: str, name: str) -> HostLink | None:
        """A host link under a new name (the roster is how admins tell hosts apart); its
        token is unchanged and, stored hashed, not shown."""
        async with self._sessions.begin() as session:
            link = await session.scalar(
                select(HostLinkRow).where(
                    HostLinkRow.id == link_id,
                    HostLinkRow.series_id == series_id,
                    HostLinkRow.revoked_at.is_(None),
                )
            )
            if link is None:
                return None
            link.name = name
        return HostLink(link.id, link.name, None, link.created_at)

    async def rotate_host_link(
        self, series_id: str, link_id: str, *, now: datetime
    ) -> HostLink | None:
        """A new token for the same named host; the old link stops working at once."""
        async with self._sessions.begin() as session:
            link = await session.scalar(
                select(HostLinkRow).where(
                    HostLinkRow.id == link_id,
                    HostLinkRow.series_id == series_id,
                    HostLinkRow.revoked_at.is_(None),
                )
            )
            if link is None:
                return None
            token = new_link_token()
            link.token_hash = hash_link_token(token)
        return HostLink(link.id, link.name, token, link.created_at)

    # --- occurrences -----------------------------------------------------------------------

    async def occurrences(
        self, series_id: str | None, after: datetime, before: datetime
    ) -> list[ScheduledOccurrence] | None:
        """Occurrences starting in [after, before): of one series (None if it does not
        exist), or of every series when ``series_id`` is None."""
        async with self._sessions() as session:
            if series_id is None:
                everything = [s.id for s in await self.all_series()]
            else:
                if await session.get(SeriesRow, series_id) is None:
                    return None
                everything = [series_id]
            found: list[ScheduledOccurrence] = []
            for sid in everything:
                series = await load_series(session, sid)
                assert series is not None
                rows = await load_overrides(session, sid)
                for occurrence in _occurrences(series, rows, after, before):
                    row = rows.get(occurrence.original_start)
                    found.append(await self._scheduled(session, series, occurrence, row))
        found.sort(key=lambda s: (s.occurrence.starts_at, s.series.id))
        return found

    async def _scheduled(
        self,
        session: AsyncSession,
        series: Series,
        occurrence: Occurrence,
        row: CircleRow | None,
    ) -> ScheduledOccurrence:
        if row is None:
            return ScheduledOccurrence(series, occurrence, Attendance(0, 0, None))
        seats = list(
            await session.scalars(
                select(SeatRow)
                .where(SeatRow.circle_id == row.id)
                .order_by(SeatRow.joined_at, SeatRow.id)
            )
        )
        attendees = (
            tuple(Attendee(s.display_name, s.joined_at, s.left_at) for s in seats)
            if series.fields.attendance_names_visible
            else None
        )
        attendance = Attendance(
            present=sum(1 for s in seats if s.left_at is None),
            total=len(seats),
            attendees=attendees,
        )
        return ScheduledOccurrence(series, occurrence, attendance)

    async def find_occurrence(
        self, series_id: str, occurrence_id: str
    ) -> tuple[Series, Occurrence, CircleRow | None] | None:
        async with self._sessions() as session:
            series = await load_series(session, series_id)
            if series is None:
                return None
            row = await session.scalar(
                select(CircleRow).where(
                    CircleRow.id == occurrence_id, CircleRow.series_id == series_id
                )
            )
            if row is None:
                original = original_start_of(series_id, occurrence_id)
                if original is None:
                    return None
                row = await session.scalar(
                    select(CircleRow).where(
                        CircleRow.series_id == series_id, CircleRow.original_start == original
                    )
                )
                if row is None and not is_start(series.fields.schedule, original):
                    return None
            else:
                original = row.original_start
            assert original is not None
            rows = {original: row} if row is not None else {}
            found = _occurrences(series, rows, original - LOOK_BACK, original + LOOK_AHEAD)
            if row is not None:
                # A moved occurrence may be far from its original start.
                found = [
                    Occurrence(
                        series_id,
                        original,
                        row.starts_at,
                        row.duration_minutes,
                        row.cancelled_at is not None,
                        row.extended_minutes,
                        row.id,
                    )
                ]
            matching = [o for o in found if o.original_start == original]
            if not matching:
                return None
            return series, matching[0], row

    async def change_occurrence(
        self,
        series: Series,
        occurrence: Occurrence,
        *,
        cancelled: bool | None,
        starts_at: datetime | None,
        now: datetime,
    ) -> ScheduledOccurrence:
        """Cancel, restore or move one occurrence; the others are untouched."""
        row = await materialise(self._sessions, occurrence, now)
        async with self._sessions.begin() as session:
            stored = await session.get(CircleRow, row.id)
            assert stored is not None
            if cancelled is not None:
                stored.cancelled_at = now if cancelled else None
            if starts_at is not None:
                stored.starts_at = starts_at
            await session.flush()
            changed = Occurrence(
                series.id,
                occurrence.original_start,
                stored.starts_at,
                stored.duration_minutes,
                stored.cancelled_at is not None,
                stored.extended_minutes,
                stored.id,
            )
            return await self._scheduled(session, series, changed, stored)

    # --- attendance ------------------------------------------------------------------------

    async def purge_attendance(self, *, before: datetime) -> int:
        """Delete the seats of people who left before ``before``; returns how many."""
        async with self._sessions.begin() as session:
            result: Any = await session.execute(
                delete(SeatRow).where(SeatRow.left_at.is_not(None), SeatRow.left_at < before)
            )
        return int(result.rowcount)

    async def overrides(self, series_id: str) -> dict[datetime, Override]:
        async with self._sessions() as session:
            rows = await load_overrides(session, series_id)
        return {start: override_from_row(row) for start, row in rows.items()}
