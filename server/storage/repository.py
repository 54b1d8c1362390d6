"""Storage behind the interfaces the rest of Hearth uses.

``SqlCircleStore`` implements signaling.store.CircleStore (what a live circle needs) plus the
circle scheduling the admin API needs; ``AdminTokenStore`` keeps the admin API's tokens.
Every method is one transaction: it opens a session, commits, and closes it. Both take the
Database and read its session factory at each call. A live circle's writes go through
``Database.write`` (one writer on SQLite, transient errors retried) and come in batches: the
decisions taken while the previous write was in flight, stored in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms import snapshot
from rooms.lifecycle import DEFAULT_GRACE_MINUTES, DEFAULT_LOBBY_MINUTES, Occurrence
from rooms.machine import AuditEntry
from rooms.model import (
    Circle,
    CircleSettings,
    CircleState,
    CircleStatus,
    NoHostPolicy,
    Role,
    SpeakingMode,
)
from server.config import DEFAULT_CAPACITY
from server.storage.database import Database, Failure, classify
from server.storage.models import (
    AdminTokenRow,
    CircleModerationRow,
    CircleRow,
    HostLinkRow,
    LiveStateRow,
    ModerationAuditRow,
    SeatRow,
    SeriesRow,
)
from server.storage.series import (
    SeriesFields,
    SeriesStore,
    circle_for,
    hash_link_token,
    load_series,
    materialise,
    resolve_series_link,
)
from signaling.store import LeaseLost, LinkMatch, StateWrite, StorageUnavailable

ADMIN_TOKEN_BYTES = 32
# A join's reads are tried again once after this pause (a stale pooled connection, a lock),
# then the join is told storage_unavailable: fast, so the page can say so and retry.
READ_RETRY_PAUSE = 0.05


def new_id() -> str:
    return uuid.uuid4().hex


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: what is stored and looked up instead of the token itself.

    A plain hash (no salt, no stretching) suffices because tokens are long and random; it
    also makes the lookup an index probe on the hash, so no comparison leaks timing about
    the secret.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ScheduledCircle:
    """A circle as the admin API sees it: the domain value plus its link secrets.

    ``host_token`` is the series' first host link, None once every host link was revoked.
    """

    circle: Circle
    join_token: str
    host_token: str | None
    created_at: datetime


class CircleNotFound(LookupError):
    """save_state was given a circle that is not stored (a bug in the caller)."""


def _rows_changed(result: Result[Any]) -> int:
    # An UPDATE's result is a CursorResult; Session.execute is typed for the general case.
    return cast(CursorResult[Any], result).rowcount


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _reading(read: Callable[[], Awaitable[Any]]) -> Any:
    """A join's read: tried again once on trouble, then StorageUnavailable."""
    try:
        return await read()
    except Exception as error:
        if classify(error) is Failure.PERMANENT:
            raise
    await asyncio.sleep(READ_RETRY_PAUSE)
    try:
        return await read()
    except Exception as error:
        if classify(error) is Failure.PERMANENT:
            raise
        raise StorageUnavailable(str(error) or type(error).__name__) from error


async def _write_batch(
    session: AsyncSession, writes: Sequence[StateWrite], fence: int | None = None
) -> None:
    last = writes[-1]
    state, circle = last.state, last.state.circle
    if fence is not None:
        # Locked until this transaction ends: a claim by another node waits for this write
        # or, if it came first, makes it fail here.
        current = await session.scalar(
            select(CircleRow.fence).where(CircleRow.id == circle.id).with_for_update()
        )
        if current != fence:
            raise LeaseLost(f"circle {circle.id} is fenced at {current}, this node has {fence}")
    row = await session.get(CircleRow, circle.id)
    if row is None:
        raise CircleNotFound(circle.id)
    row.status = circle.status.value
    row.opened_at = circle.opened_at
    row.ended_at = circle.ended_at
    row.extended_minutes = circle.extended_minutes
    live = await session.get(LiveStateRow, circle.id)
    if live is None:
        live = LiveStateRow(circle_id=circle.id)
        session.add(live)
    live.state = json.dumps(snapshot.to_data(state), separators=(",", ":"))
    live.saved_at = last.now
    for write in writes:
        for entry in write.audit:
            session.add(
                ModerationAuditRow(
                    circle_id=circle.id,
                    at=write.now,
                    action=entry.action,
                    actor_id=entry.actor_id,
                    actor_label=entry.actor_label,
                    actor_role=entry.actor_role,
                    target_id=entry.target_id,
                    target_label=entry.target_label,
                    detail=entry.detail[:200],
                )
            )
    # Each seat as the batch last saw it, and when it left (the time of the first write
    # without it after its last appearance); None while it is still seated.
    last_seen: dict[str, Any] = {}
    left_at: dict[str, datetime | None] = {}
    for write in writes:
        for seat_id, seat in write.state.seats.items():
            last_seen[seat_id] = seat
            left_at[seat_id] = None
        for seat_id in last_seen:
            if seat_id not in write.state.seats and left_at[seat_id] is None:
                left_at[seat_id] = write.now
    # The seats that can change: those the batch saw, and those stored as present.
    stored = await session.scalars(
        select(SeatRow).where(
            SeatRow.circle_id == circle.id,
            or_(SeatRow.left_at.is_(None), SeatRow.id.in_(list(last_seen))),
        )
    )
    stored_by_id = {seat.id: seat for seat in stored}
    for seat_id, seat in last_seen.items():
        seat_row = stored_by_id.pop(seat_id, None)
        if seat_row is None:
            seat_row = SeatRow(circle_id=circle.id, id=seat_id)
            session.add(seat_row)
        seat_row.display_name = seat.display_name
        seat_row.role = seat.role.value
        seat_row.muted = seat.muted
        seat_row.joined_at = seat.joined_at
        seat_row.left_at = left_at[seat_id]
    first = writes[0].now
    for gone in stored_by_id.values():
        if gone.left_at is None:
            gone.left_at = first


def _settings_from_row(row: CircleModerationRow | None) -> CircleSettings:
    if row is None:
        return CircleSettings()
    return CircleSettings(
        speaking_mode=SpeakingMode(row.speaking_mode),
        lobby=row.lobby,
        passcode=row.passcode,
        wait_for_host=row.wait_for_host,
        no_host_policy=NoHostPolicy(row.no_host_policy),
        allow_rename=row.allow_rename,
        share_seconds=row.share_seconds,
        crisis_text=row.crisis_text,
    )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored moderation action, as the admin API shows it."""

    at: datetime
    action: str
    actor_id: str
    actor_label: str
    actor_role: str
    target_id: str | None
    target_label: str | None
    detail: str


class SqlCircleStore:
    """Circles (occurrences) and their seats in SQL. Implements signaling.store.CircleStore.

    ``clock`` tells which occurrence of a series a link opens now.
    """

    def __init__(self, database: Database, clock: Callable[[], datetime] = _utc_now) -> None:
        self._database = database
        self._clock = clock

    @property
    def _sessions(self) -> async_sessionmaker[AsyncSession]:
        # Read at each use, so a store may be built before Database.connect().
        return self._database.sessions

    # --- signaling.store.CircleStore -------------------------------------------------

    async def find_by_link(self, token: str) -> LinkMatch | None:
        """The occurrence a series link opens now (see resolve_series_link), with its role.

        A valid link outside any occurrence gives a match without a circle, carrying when
        the next occurrence starts.
        """
        if not token:
            return None
        match: LinkMatch | None = await _reading(lambda: self._find_by_link(token))
        return match

    async def _find_by_link(self, token: str) -> LinkMatch | None:
        async with self._sessions() as session:
            series_id = await session.scalar(
                select(SeriesRow.id).where(SeriesRow.join_token == token)
            )
            role = Role.PARTICIPANT
            if series_id is None:
                series_id = await session.scalar(
                    select(HostLinkRow.series_id).where(
                        HostLinkRow.token_hash == hash_link_token(token),
                        HostLinkRow.revoked_at.is_(None),
                    )
                )
                role = Role.HOST
            if series_id is None:
                return None
            series = await load_series(session, series_id)
            # Moderation settings belong to the series: every occurrence runs by them.
            settings = _settings_from_row(await session.get(CircleModerationRow, series_id))
        if series is None:
            return None
        target = await resolve_series_link(self._sessions, series, self._clock())
        return LinkMatch(
            circle=target.circle,
            role=role,
            next_starts_at=target.next_starts_at,
            settings=settings,
        )

    async def load_state(self, match: LinkMatch) -> CircleState | None:
        circle = match.circle
        if circle is None:
            return None

        async def load() -> LiveStateRow | None:
            async with self._sessions() as session:
                return await session.get(LiveStateRow, circle.id)

        row = await _reading(load)
        if row is None:
            return None
        return snapshot.from_data(json.loads(row.state), circle, match.settings)

    async def save_state(
        self, state: CircleState, *, now: datetime, audit: Sequence[AuditEntry] = ()
    ) -> None:
        await self.save_batch([StateWrite(state, now, tuple(audit))])

    async def save_batch(self, writes: Sequence[StateWrite], *, fence: int | None = None) -> None:
        """Several decisions of one circle in one transaction (see CircleStore.save_batch).

        With ``fence`` (several nodes), the circle's row is locked and its fencing token
        checked first, in the same transaction: LeaseLost when another node claimed it.
        """
        if not writes:
            return
        await self._database.write(lambda session: _write_batch(session, writes, fence))

    async def claim_fence(self, circle_id: str) -> int:
        """Take the next fencing token of a circle (several nodes: its new owner does this
        right after taking the lease). From then on writes with an older token fail."""

        async def claim(session: AsyncSession) -> int:
            fence = await session.scalar(
                update(CircleRow)
                .where(CircleRow.id == circle_id)
                .values(fence=CircleRow.fence + 1)
                .returning(CircleRow.fence)
            )
            if fence is None:
                raise CircleNotFound(circle_id)
            return int(fence)

        return await self._database.write(claim)

    # --- start-up ----------------------------------------------------------------------

    async def close_stale_seats(self, now: datetime, *, live: Collection[str] = ()) -> int:
        """Mark every seat still present as left at ``now``; returns how many.

        Called at start-up: peer connections do not survive a restart, so nobody is
        really seated until they reconnect and join again. With several nodes, the seats of
        the ``live`` circles (leased by a node now) are left alone.
        """
        kept = list(live)
        stale = update(SeatRow).where(SeatRow.left_at.is_(None))
        if kept:
            stale = stale.where(SeatRow.circle_id.not_in(kept))
        result = await self._database.write(
            lambda session: session.execute(stale.values(left_at=now)), bounded=False
        )
        return _rows_changed(result)

    async def purge_audit(self, before: datetime) -> int:
        """Delete moderation records older than ``before``; returns how many."""
        result = await self._database.write(
            lambda session: session.execute(
                delete(ModerationAuditRow).where(ModerationAuditRow.at < before)
            ),
            bounded=False,
        )
        return _rows_changed(result)

    async def audit_log(self, circle_id: str) -> list[AuditRecord]:
        """A circle's moderation actions, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ModerationAuditRow)
                .where(ModerationAuditRow.circle_id == circle_id)
                .order_by(ModerationAuditRow.at, ModerationAuditRow.id)
            )
            return [
                AuditRecord(
                    at=r.at,
                    action=r.action,
                    actor_id=r.actor_id,
                    actor_label=r.actor_label,
                    actor_role=r.actor_role,
                    target_id=r.target_id,
                    target_label=r.target_label,
                    detail=r.detail,
                )
                for r in rows
            ]

    async def series_of(self, circle_id: str) -> str | None:
        """The series a stored circle (occurrence) belongs to; None if no such circle."""
        async with self._sessions() as session:
            row = await session.get(CircleRow, circle_id)
            return None if row is None else row.series_id

    async def moderation_settings(self, series_id: str) -> CircleSettings:
        """A series' moderation settings: every occurrence of it runs by them."""
        async with self._sessions() as session:
            return _settings_from_row(await session.get(CircleModerationRow, series_id))

    async def set_moderation_settings(self, series_id: str, settings: CircleSettings) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(CircleModerationRow, series_id)
            if row is None:
                row = CircleModerationRow(series_id=series_id)
                session.add(row)
            row.speaking_mode = settings.speaking_mode.value
            row.lobby = settings.lobby
            row.passcode = settings.passcode
            row.wait_for_host = settings.wait_for_host
            row.no_host_policy = settings.no_host_policy.value
            row.allow_rename = settings.allow_rename
            row.share_seconds = settings.share_seconds
            row.crisis_text = settings.crisis_text

    async def unended_circles_of(self, series_id: str) -> list[str]:
        """Ids of a series' stored occurrences not ended: those that may be live now."""
        async with self._sessions() as session:
            ids = await session.scalars(
                select(CircleRow.id).where(
                    CircleRow.series_id == series_id,
                    CircleRow.status != CircleStatus.ENDED.value,
                )
            )
            return list(ids)

    async def ensure_bootstrap_token(self, *, now: datetime | None = None) -> str | None:
        """Start-up's one call for the first admin token; see AdminTokenStore."""
        return await AdminTokenStore(self._database).ensure_bootstrap_token(now=now)

    # --- scheduling (admin API) ----------------------------------------------------------

    async def create_circle(
        self,
        *,
        title: str,
        starts_at: datetime,
        duration_minutes: int,
        timezone: str,
        now: datetime,
        capacity: int = DEFAULT_CAPACITY,
    ) -> ScheduledCircle:
        """A one-off circle: a series without a rule, with its one occurrence stored."""
        fields = SeriesFields(
            title=title,
            description="",
            first_start=starts_at,
            timezone=timezone,
            duration_minutes=duration_minutes,
            rrule=None,
            ends_on=None,
            capacity=capacity,
            lobby_minutes=DEFAULT_LOBBY_MINUTES,
            grace_minutes=DEFAULT_GRACE_MINUTES,
            public=False,
            attendance_names_visible=False,
        )
        series = await SeriesStore(self._database).create(fields, now=now)
        occurrence = Occurrence(series.id, starts_at, starts_at, duration_minutes)
        row = await materialise(self._sessions, occurrence, now)
        return ScheduledCircle(
            circle=circle_for(series, occurrence, row),
            join_token=series.join_token,
            host_token=series.host_links[0].token,
            created_at=row.created_at,
        )

    async def list_circles(self) -> list[ScheduledCircle]:
        """Every stored occurrence, soonest first (ties by creation, so the order is stable)."""
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(CircleRow).order_by(
                        CircleRow.starts_at, CircleRow.created_at, CircleRow.id
                    )
                )
            )
            return [await self._scheduled(session, row) for row in rows]

    async def get_circle(self, circle_id: str) -> ScheduledCircle | None:
        async with self._sessions() as session:
            row = await session.get(CircleRow, circle_id)
            return None if row is None else await self._scheduled(session, row)

    async def _scheduled(self, session: AsyncSession, row: CircleRow) -> ScheduledCircle:
        assert row.series_id is not None and row.original_start is not None
        series = await load_series(session, row.series_id)
        assert series is not None
        occurrence = Occurrence(series.id, row.original_start, row.starts_at, row.duration_minutes)
        return ScheduledCircle(
            circle=circle_for(series, occurrence, row),
            join_token=series.join_token,
            host_token=series.host_links[0].token if series.host_links else None,
            created_at=row.created_at,
        )

    async def present_seats(self, circle_id: str) -> list[SeatRow]:
        """Seats of a circle not marked as left, in join order (for start-up and tests)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(SeatRow)
                .where(SeatRow.circle_id == circle_id, SeatRow.left_at.is_(None))
                .order_by(SeatRow.joined_at, SeatRow.id)
            )
            return list(rows)

    async def all_seats(self, circle_id: str) -> list[SeatRow]:
        """Every seat ever taken in a circle (attendance), in join order."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(SeatRow)
                .where(SeatRow.circle_id == circle_id)
                .order_by(SeatRow.joined_at, SeatRow.id)
            )
            return list(rows)


@dataclass(frozen=True, slots=True)
class IssuedAdminToken:
    """A freshly created admin token. ``token`` is shown once and never stored."""

    id: str
    token: str


class AdminTokenStore:
    """Admin API tokens, stored only as SHA-256 hashes.

    ``now`` defaults to the clock: these are bookkeeping times, not decisions.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _sessions(self) -> async_sessionmaker[AsyncSession]:
        # Read at each use, so a store may be built before Database.connect().
        return self._database.sessions

    async def create(self, *, now: datetime | None = None) -> IssuedAdminToken:
        token = secrets.token_urlsafe(ADMIN_TOKEN_BYTES)
        row = AdminTokenRow(
            id=new_id(), token_hash=hash_token(token), created_at=now or datetime.now(UTC)
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return IssuedAdminToken(id=row.id, token=token)

    async def verify(self, token: str) -> bool:
        """True when ``token`` is a stored admin token that has not been revoked."""
        if not token:
            return False
        async with self._sessions() as session:
            found = await session.scalar(
                select(AdminTokenRow.id).where(
                    AdminTokenRow.token_hash == hash_token(token),
                    AdminTokenRow.revoked_at.is_(None),
                )
            )
        return found is not None

    async def revoke(self, token_id: str, *, now: datetime | None = None) -> bool:
        """Revoke by id; False when there is no such unrevoked token."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(AdminTokenRow)
                .where(AdminTokenRow.id == token_id, AdminTokenRow.revoked_at.is_(None))
                .values(revoked_at=now or datetime.now(UTC))
            )
        return _rows_changed(result) > 0

    async def ensure_bootstrap_token(self, *, now: datetime | None = None) -> str | None:
        """Create a first admin token when none is usable; return it, else None.

        The caller (the CLI) prints it once. Two servers starting at once may both create
        one; that leaves two valid tokens, which is harmless.
        """
        async with self._sessions() as session:
            usable = await session.scalar(
                select(AdminTokenRow.id).where(AdminTokenRow.revoked_at.is_(None)).limit(1)
            )
        if usable is not None:
            return None
        return (await self.create(now=now)).token
