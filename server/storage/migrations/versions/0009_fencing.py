"""Fencing tokens: ``circles.fence``, raised by the node that claims a circle.

With several nodes (docs/architecture.md, "Nodes") a circle is owned by the node holding its
lease in Redis. Claiming it raises ``fence`` by one in the database; every write of the
circle's state checks, in its own transaction, that the fence is still the writer's. A node
that lost its lease (paused, cut off) can then write nothing more, whatever Redis says.

Revision ID: 0009
Revises: 0007 (re-chained at merge)
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("circles") as batch:
        batch.add_column(sa.Column("fence", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("circles") as batch:
        batch.drop_column("fence")
