"""Circles, their seats (attendance) and admin tokens.

Names go through op.f(): they are final, the naming convention must not rewrite them.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "circles",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("join_token", sa.String(64), nullable=False),
        sa.Column("host_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circles")),
        sa.CheckConstraint(
            "status IN ('scheduled', 'open', 'ended')", name=op.f("ck_circles_status")
        ),
        sa.CheckConstraint("duration_minutes > 0", name=op.f("ck_circles_duration_positive")),
    )
    op.create_index("ix_circles_join_token", "circles", ["join_token"], unique=True)
    op.create_index("ix_circles_host_token", "circles", ["host_token"], unique=True)

    op.create_table(
        "seats",
        sa.Column("circle_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("circle_id", "id", name=op.f("pk_seats")),
        sa.ForeignKeyConstraint(
            ["circle_id"],
            ["circles.id"],
            name=op.f("fk_seats_circle_id_circles"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("role IN ('host', 'participant')", name=op.f("ck_seats_role")),
    )
    op.create_index("ix_seats_circle_id_left_at", "seats", ["circle_id", "left_at"])

    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("admin_tokens")
    op.drop_index("ix_seats_circle_id_left_at", table_name="seats")
    op.drop_table("seats")
    op.drop_index("ix_circles_host_token", table_name="circles")
    op.drop_index("ix_circles_join_token", table_name="circles")
    op.drop_table("circles")
