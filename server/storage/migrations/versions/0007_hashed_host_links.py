"""Host links stored hashed (SHA-256), and every series with a capacity.

A host link's token is shown once, when it is made or rotated; the database keeps only its
SHA-256, as it does for admin tokens, so a leaked database opens no circle as its host.
Existing tokens are hashed in place: the links already handed out keep working.

Series without a capacity ("no limit") get the default, 30: every circle has one now.

Downgrade cannot recover tokens from their hashes: it gives every host link a new random
token (the old host links stop working; rotate them in the console to hand out new ones).

Revision ID: 0007
Revises: 0003 (re-chained at merge)
Create Date: 2026-12-02
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_CAPACITY = 30


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("host_links") as batch:
        batch.add_column(sa.Column("token_hash", sa.String(64), nullable=True))
    links = sa.table(
        "host_links",
        sa.column("id", sa.String),
        sa.column("token", sa.String),
        sa.column("token_hash", sa.String),
    )
    for link_id, token in bind.execute(sa.select(links.c.id, links.c.token)).all():
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        bind.execute(links.update().where(links.c.id == link_id).values(token_hash=digest))
    op.drop_index("ix_host_links_token", table_name="host_links")
    with op.batch_alter_table("host_links") as batch:
        batch.alter_column("token_hash", existing_type=sa.String(64), nullable=False)
        batch.drop_column("token")
    op.create_index("ix_host_links_token_hash", "host_links", ["token_hash"], unique=True)
    series = sa.table("series", sa.column("capacity", sa.Integer))
    bind.execute(
        series.update().where(series.c.capacity.is_(None)).values(capacity=DEFAULT_CAPACITY)
    )


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("host_links") as batch:
        batch.add_column(sa.Column("token", sa.String(64), nullable=True))
    links = sa.table("host_links", sa.column("id", sa.String), sa.column("token", sa.String))
    for (link_id,) in bind.execute(sa.select(links.c.id)).all():
        fresh = secrets.token_urlsafe(24)
        bind.execute(links.update().where(links.c.id == link_id).values(token=fresh))
    op.drop_index("ix_host_links_token_hash", table_name="host_links")
    with op.batch_alter_table("host_links") as batch:
        batch.alter_column("token", existing_type=sa.String(64), nullable=False)
        batch.drop_column("token_hash")
    op.create_index("ix_host_links_token", "host_links", ["token"], unique=True)
