"""Series (recurrence in a time zone), host link rosters, occurrences as circles.

Every circle of 0001 becomes a one-off series (no capacity limit, as before) with the same
id, join link and (as a host link named "Host") host link; its row stays as the series' only
occurrence, so live circles, seats and links keep working across the upgrade.

SQLite notes: columns are dropped and added in place (ALTER TABLE), never by copying the
table: with foreign keys on, dropping ``circles`` to copy it would delete every seat.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

circles = sa.table(
    "circles",
    sa.column("id", sa.String),
    sa.column("title", sa.String),
    sa.column("starts_at", sa.DateTime),
    sa.column("duration_minutes", sa.Integer),
    sa.column("timezone", sa.String),
    sa.column("join_token", sa.String),
    sa.column("host_token", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("series_id", sa.String),
    sa.column("original_start", sa.DateTime),
)
series = sa.table(
    "series",
    sa.column("id", sa.String),
    sa.column("title", sa.String),
    sa.column("description", sa.String),
    sa.column("timezone", sa.String),
    sa.column("first_start", sa.DateTime),
    sa.column("duration_minutes", sa.Integer),
    sa.column("rrule", sa.String),
    sa.column("capacity", sa.Integer),
    sa.column("lobby_minutes", sa.Integer),
    sa.column("grace_minutes", sa.Integer),
    sa.column("public", sa.Boolean),
    sa.column("attendance_names_visible", sa.Boolean),
    sa.column("join_token", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)
host_links = sa.table(
    "host_links",
    sa.column("id", sa.String),
    sa.column("series_id", sa.String),
    sa.column("name", sa.String),
    sa.column("token", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("revoked_at", sa.DateTime),
)


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("first_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("rrule", sa.String(500), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("lobby_minutes", sa.Integer(), nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("attendance_names_visible", sa.Boolean(), nullable=False),
        sa.Column("join_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.CheckConstraint("duration_minutes > 0", name=op.f("ck_series_duration_positive")),
        sa.CheckConstraint(
            "capacity IS NULL OR capacity > 0", name=op.f("ck_series_capacity_positive")
        ),
        sa.CheckConstraint(
            "lobby_minutes >= 0 AND grace_minutes >= 0", name=op.f("ck_series_windows")
        ),
    )
    op.create_index("ix_series_join_token", "series", ["join_token"], unique=True)

    op.create_table(
        "host_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("series_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_links")),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_host_links_series_id_series"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_host_links_series_id", "host_links", ["series_id"])
    op.create_index("ix_host_links_token", "host_links", ["token"], unique=True)

    op.add_column("circles", sa.Column("series_id", sa.String(32), nullable=True))
    op.add_column("circles", sa.Column("original_start", sa.DateTime(timezone=True), nullable=True))
    op.add_column("circles", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "circles",
        sa.Column("extended_minutes", sa.Integer(), server_default="0", nullable=False),
    )

    # Every existing circle becomes a one-off series with the same id and links.
    op.execute(
        series.insert().from_select(
            [c.name for c in series.columns],
            sa.select(
                circles.c.id,
                circles.c.title,
                sa.literal(""),
                circles.c.timezone,
                circles.c.starts_at,
                circles.c.duration_minutes,
                sa.null(),
                sa.null(),
                sa.literal(30),
                sa.literal(15),
                sa.false(),
                sa.false(),
                circles.c.join_token,
                circles.c.created_at,
                circles.c.created_at,
            ),
        )
    )
    op.execute(
        host_links.insert().from_select(
            [c.name for c in host_links.columns],
            sa.select(
                circles.c.id,
                circles.c.id,
                sa.literal("Host"),
                circles.c.host_token,
                circles.c.created_at,
                sa.null(),
            ),
        )
    )
    op.execute(circles.update().values(series_id=circles.c.id, original_start=circles.c.starts_at))

    op.create_index(
        "ix_circles_series_id_original_start",
        "circles",
        ["series_id", "original_start"],
        unique=True,
    )
    op.drop_index("ix_circles_join_token", table_name="circles")
    op.drop_index("ix_circles_host_token", table_name="circles")
    for name in ("join_token", "host_token", "title", "timezone"):
        op.drop_column("circles", name)


def downgrade() -> None:
    # Only one-off circles existed before series: occurrences of recurring series go (their
    # seats with them), and so does a one-off whose every host link was revoked.
    op.add_column("circles", sa.Column("title", sa.String(200), nullable=True))
    op.add_column("circles", sa.Column("timezone", sa.String(64), nullable=True))
    op.add_column("circles", sa.Column("join_token", sa.String(64), nullable=True))
    op.add_column("circles", sa.Column("host_token", sa.String(64), nullable=True))
    one_off = sa.select(series.c.id).where(series.c.rrule.is_(None))
    first_host = (
        sa.select(sa.func.min(host_links.c.token))
        .where(host_links.c.series_id == circles.c.series_id, host_links.c.revoked_at.is_(None))
        .scalar_subquery()
    )

    def from_series(column: sa.ColumnClause[object]) -> sa.ScalarSelect[object]:
        return sa.select(column).where(series.c.id == circles.c.series_id).scalar_subquery()

    op.execute(
        circles.update().values(
            title=from_series(series.c.title),
            timezone=from_series(series.c.timezone),
            join_token=from_series(series.c.join_token),
            host_token=first_host,
        )
    )
    op.execute(
        circles.delete().where(
            sa.or_(
                circles.c.series_id.not_in(one_off),
                circles.c.host_token.is_(None),
                circles.c.join_token.is_(None),
            )
        )
    )
    if op.get_bind().dialect.name != "sqlite":
        # SQLite cannot make a column NOT NULL in place (see the module's docstring).
        for name in ("title", "timezone", "join_token", "host_token"):
            op.alter_column("circles", name, nullable=False)
    op.create_index("ix_circles_join_token", "circles", ["join_token"], unique=True)
    op.create_index("ix_circles_host_token", "circles", ["host_token"], unique=True)

    op.drop_index("ix_circles_series_id_original_start", table_name="circles")
    for name in ("extended_minutes", "cancelled_at", "original_start", "series_id"):
        op.drop_column("circles", name)
    op.drop_index("ix_host_links_token", table_name="host_links")
    op.drop_index("ix_host_links_series_id", table_name="host_links")
    op.drop_table("host_links")
    op.drop_index("ix_series_join_token", table_name="series")
    op.drop_table("series")
