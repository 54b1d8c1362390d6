"""Passcodes stored as salted scrypt hashes instead of in clear; circles indexed by start.

Upgrade hashes every clear passcode in place (the column fits the hash). Downgrade cannot
bring a clear passcode back: it leaves the hashes, so a protected circle stays closed to
everyone but its hosts rather than opening to anyone; set passcodes anew after a downgrade.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from signaling.passcodes import hash_passcode, is_hashed

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

moderation = sa.table(
    "circle_moderation",
    sa.column("series_id", sa.String(32)),
    sa.column("passcode", sa.String(100)),
)


def upgrade() -> None:
    op.create_index("ix_circles_series_id_starts_at", "circles", ["series_id", "starts_at"])
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(moderation.c.series_id, moderation.c.passcode).where(
            moderation.c.passcode.is_not(None)
        )
    ).all()
    for series_id, passcode in rows:
        if passcode and not is_hashed(passcode):
            connection.execute(
                moderation.update()
                .where(moderation.c.series_id == series_id)
                .values(passcode=hash_passcode(passcode))
            )


def downgrade() -> None:
    # The hashes stay: see the module's docstring.
    op.drop_index("ix_circles_series_id_starts_at", table_name="circles")
