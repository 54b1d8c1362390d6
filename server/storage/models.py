"""The tables, as SQLAlchemy sees them.

Alembic's migrations (server/storage/migrations) are the source of truth for the schema; a
test compares these models with them, so a change here without a migration fails the suite.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so that migrations can refer to (and drop) them by name on
# every backend instead of relying on what each database would invent.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TOKEN_LENGTH = 64
ID_LENGTH = 32
# Seat ids come from signaling/; leave room for whatever form it picks (uuid, token).
SEAT_ID_LENGTH = 64
DESCRIPTION_LENGTH = 2000


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC, returned aware in UTC.

    PostgreSQL keeps the offset (timestamptz); SQLite keeps none and would hand back naive
    values, so the value goes in as naive UTC there and gets its zone back on the way out.
    Naive input is refused: a time without a zone is a bug waiting for a daylight-saving day.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SeriesRow(Base):
    """A circle series: when it meets (a recurrence rule in a time zone) and its join link.

    A one-off circle is a series without a rule.
    """

    __tablename__ = "series"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        CheckConstraint("lobby_minutes >= 0 AND grace_minutes >= 0", name="windows"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_LENGTH))
    # IANA name; the wall-clock time of first_start in this zone is what every occurrence keeps.
    timezone: Mapped[str] = mapped_column(String(64))
    first_start: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # RFC 5545 RRULE value without "RRULE:"; NULL for a one-off circle.
    rrule: Mapped[str | None] = mapped_column(String(500))
    # Last local date with an occurrence (inclusive), or NULL.
    ends_on: Mapped[date | None] = mapped_column(Date)
    # Most people seated at once; NULL: no limit.
    capacity: Mapped[int | None] = mapped_column(Integer)
    lobby_minutes: Mapped[int] = mapped_column(Integer)
    grace_minutes: Mapped[int] = mapped_column(Integer)
    # Listed in the public calendar and Meeting Guide feeds (with its join link).
    public: Mapped[bool] = mapped_column(Boolean)
    # Whether admins may see attendees' names after an occurrence (counts otherwise).
    attendance_names_visible: Mapped[bool] = mapped_column(Boolean)
    # Link secret for everyone: whoever holds it may join; looked up by value.
    join_token: Mapped[str] = mapped_column(String(TOKEN_LENGTH), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HostLinkRow(Base):
    """A named host link of a series (its roster), revocable on its own."""

    __tablename__ = "host_links"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    series_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("series.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the link's token (hex): the token itself is shown once, when it is made or
    # rotated, and never stored. A link is looked up by hashing what it carries.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CircleRow(Base):
    """One occurrence of a series that has a row: it was moved, cancelled, or it ran.

    Occurrences that nothing happened to are not stored; they come from the series' rule.
    The live circle's id is this row's id.

    ``series_id`` and ``original_start`` are nullable in the schema only because SQLite
    cannot add a NOT NULL column to a table with rows (or change it later without copying
    the table, which would take the seats' cascade with it); every row has both. For the same
    reason ``series_id`` has no foreign key: the store deletes a series' rows itself.
    """

    __tablename__ = "circles"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'open', 'ended')", name="status"),
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        Index("ix_circles_series_id_original_start", "series_id", "original_start", unique=True),
        # A link's "occurrence now" reads only the rows near now (moved ones by starts_at).
        Index("ix_circles_series_id_starts_at", "series_id", "starts_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    series_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # Where the rule put it (RFC 5545 RECURRENCE-ID); starts_at is where it is now.
    original_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Minutes a host added to the closing time.
    extended_minutes: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Fencing token of the node that last claimed the live circle (several nodes only):
    # a write carrying another token is refused in its own transaction.
    fence: Mapped[int] = mapped_column(Integer, server_default="0")


class SeatRow(Base):
    """Attendance: one row per seat taken, kept after the person leaves (left_at set).

    Seat ids are chosen by the live circle and only need to be unique within it, hence the
    composite key.
    """

    __tablename__ = "seats"
    __table_args__ = (
        CheckConstraint("role IN ('host', 'cohost', 'participant')", name="role"),
        # Start-up and save_state look for the seats still present in a circle.
        Index("ix_seats_circle_id_left_at", "circle_id", "left_at"),
    )

    circle_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(SEAT_ID_LENGTH), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    muted: Mapped[bool] = mapped_column(Boolean)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AdminTokenRow(Base):
    """An admin API token, known only by its SHA-256: a database leak reveals no token."""

    __tablename__ = "admin_tokens"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- moderation (issue 4) ----------------------------------------------------------------
# Kept in tables of their own, keyed by circle, so that the move to series/occurrences can
# re-key them without touching the circle's columns.


class CircleModerationRow(Base):
    """What the admin chose for a series' moderation; absent means the defaults.

    Per series, not per occurrence: a weekly circle keeps its lobby, passcode and speaking
    mode from week to week.
    """

    __tablename__ = "circle_moderation"
    __table_args__ = (
        CheckConstraint("speaking_mode IN ('open', 'hand_raise')", name="speaking_mode"),
        CheckConstraint("no_host_policy IN ('continue', 'hold')", name="no_host_policy"),
    )

    series_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    speaking_mode: Mapped[str] = mapped_column(String(16))
    lobby: Mapped[bool] = mapped_column(Boolean)
    passcode: Mapped[str | None] = mapped_column(String(100))
    wait_for_host: Mapped[bool] = mapped_column(Boolean)
    no_host_policy: Mapped[str] = mapped_column(String(16))
    allow_rename: Mapped[bool] = mapped_column(Boolean)
    share_seconds: Mapped[int | None] = mapped_column(Integer)
    crisis_text: Mapped[str] = mapped_column(Text)


class LiveStateRow(Base):
    """The whole live state of a circle (rooms.snapshot), rewritten with every command."""

    __tablename__ = "live_states"

    circle_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModerationAuditRow(Base):
    """One moderation action, for admins; purged after the retention period."""

    __tablename__ = "moderation_audit"
    __table_args__ = (Index("ix_moderation_audit_circle_id_at", "circle_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    circle_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("circles.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(SEAT_ID_LENGTH))
    actor_label: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str | None] = mapped_column(String(SEAT_ID_LENGTH))
    target_label: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(String(200))
