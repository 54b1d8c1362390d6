"""Moderation: per-circle settings, the saved live state, the audit log; co-host role.

Revision 0003 follows 0001 for now; merged after issue 3's 0002 it is re-chained onto it.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "circle_moderation",
        sa.Column("circle_id", sa.String(32), nullable=False),
        sa.Column("speaking_mode", sa.String(16), nullable=False),
        sa.Column("lobby", sa.Boolean(), nullable=False),
        sa.Column("passcode", sa.String(100), nullable=True),
        sa.Column("wait_for_host", sa.Boolean(), nullable=False),
        sa.Column("no_host_policy", sa.String(16), nullable=False),
        sa.Column("allow_rename", sa.Boolean(), nullable=False),
        sa.Column("share_seconds", sa.Integer(), nullable=True),
        sa.Column("crisis_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("circle_id", name=op.f("pk_circle_moderation")),
        sa.ForeignKeyConstraint(
            ["circle_id"],
            ["circles.id"],
            name=op.f("fk_circle_moderation_circle_id_circles"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "speaking_mode IN ('open', 'hand_raise')",
            name=op.f("ck_circle_moderation_speaking_mode"),
        ),
        sa.CheckConstraint(
            "no_host_policy IN ('continue', 'hold')",
            name=op.f("ck_circle_moderation_no_host_policy"),
        ),
    )
    op.create_table(
        "live_states",
        sa.Column("circle_id", sa.String(32), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("circle_id", name=op.f("pk_live_states")),
        sa.ForeignKeyConstraint(
            ["circle_id"],
            ["circles.id"],
            name=op.f("fk_live_states_circle_id_circles"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "moderation_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("circle_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_label", sa.String(100), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("target_label", sa.String(100), nullable=True),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_audit")),
        sa.ForeignKeyConstraint(
            ["circle_id"],
            ["circles.id"],
            name=op.f("fk_moderation_audit_circle_id_circles"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_moderation_audit_circle_id_at", "moderation_audit", ["circle_id", "at"])
    op.create_index("ix_moderation_audit_at", "moderation_audit", ["at"])
    with op.batch_alter_table("seats") as batch:
        batch.drop_constraint(op.f("ck_seats_role"), type_="check")
        batch.create_check_constraint(
            op.f("ck_seats_role"), "role IN ('host', 'cohost', 'participant')"
        )


def downgrade() -> None:
    # Co-hosts become participants: the older schema knows no other role.
    op.execute("UPDATE seats SET role = 'participant' WHERE role = 'cohost'")
    with op.batch_alter_table("seats") as batch:
        batch.drop_constraint(op.f("ck_seats_role"), type_="check")
        batch.create_check_constraint(op.f("ck_seats_role"), "role IN ('host', 'participant')")
    op.drop_index("ix_moderation_audit_at", table_name="moderation_audit")
    op.drop_index("ix_moderation_audit_circle_id_at", table_name="moderation_audit")
    op.drop_table("moderation_audit")
    op.drop_table("live_states")
    op.drop_table("circle_moderation")
