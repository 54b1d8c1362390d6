"""Admin tokens: created once at bootstrap, stored only as hashes, revocable."""

from __future__ import annotations

from sqlalchemy import select

from server.storage.database import Database
from server.storage.models import AdminTokenRow
from server.storage.repository import AdminTokenStore, hash_token


async def test_bootstrap_token_is_created_only_when_no_usable_token_exists(
    database: Database,
) -> None:
    tokens = AdminTokenStore(database)

    first = await tokens.ensure_bootstrap_token()
    assert first is not None
    assert await tokens.verify(first)
    assert await tokens.ensure_bootstrap_token() is None


async def test_tokens_are_stored_as_hashes_only(database: Database) -> None:
    issued = await AdminTokenStore(database).create()

    async with database.sessions() as session:
        rows = list(await session.scalars(select(AdminTokenRow)))
    assert [row.token_hash for row in rows] == [hash_token(issued.token)]
    assert issued.token not in rows[0].token_hash


async def test_revoked_and_unknown_tokens_do_not_verify(database: Database) -> None:
    tokens = AdminTokenStore(database)
    kept = await tokens.create()
    revoked = await tokens.create()

    assert await tokens.revoke(revoked.id)
    assert not await tokens.revoke(revoked.id)

    assert await tokens.verify(kept.token)
    assert not await tokens.verify(revoked.token)
    assert not await tokens.verify("not-a-token")
    assert not await tokens.verify("")


async def test_bootstrap_creates_a_new_token_once_every_token_is_revoked(
    database: Database,
) -> None:
    tokens = AdminTokenStore(database)
    first = await tokens.create()
    await tokens.revoke(first.id)

    fresh = await tokens.ensure_bootstrap_token()

    assert fresh is not None and fresh != first.token
    assert await tokens.verify(fresh)
