"""Fixtures shared by the whole suite. Each section has its owner's header; keep them small."""

from __future__ import annotations

# ==========================================================================================
# Database fixtures (storage: server/storage)
#
# - ``database_url``: parametrized, so a test that asks for it runs on SQLite (a file in
#   tmp_path) and on PostgreSQL (a throwaway database for the session, emptied after each
#   test). PostgreSQL tests fail when the server is unreachable, unless HEARTH_SKIP_POSTGRES=1.
#   HEARTH_TEST_POSTGRES_URL overrides the server: an asyncpg URL naming an existing
#   database to connect to for CREATE DATABASE (default: postgres@127.0.0.1:5432/test).
# - ``sqlite_database_url``: SQLite only, for tests that need a database but not both kinds.
# - ``database``: a connected (migrated) server.storage.database.Database on ``database_url``.
# ==========================================================================================
import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.storage.database import Database

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _postgres_admin_url() -> str:
    return os.environ.get("HEARTH_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _run_autocommit(url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE refuse to run in one).

    On a thread of its own with its own event loop, so that it can be called from sync
    fixtures without touching the loop pytest-asyncio runs the tests on.
    """

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a database created for this test session, dropped at its end."""
    yield from throwaway_postgres_database()


def throwaway_postgres_database() -> Iterator[str]:
    """Create a database, yield its URL, drop it (for fixtures of any scope)."""
    if os.environ.get("HEARTH_SKIP_POSTGRES") == "1":
        pytest.skip("HEARTH_SKIP_POSTGRES=1")
    admin_url = _postgres_admin_url()
    name = f"hearth_test_{secrets.token_hex(6)}"
    try:
        _run_autocommit(admin_url, f'CREATE DATABASE "{name}"')
    except Exception as error:  # any failure to reach it or create a database counts
        pytest.fail(
            f"PostgreSQL at {make_url(admin_url).render_as_string(hide_password=True)} "
            f"is unusable ({type(error).__name__}: {error}); "
            "set HEARTH_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
        )
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    _run_autocommit(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    # A sub-folder that does not exist yet: Database must create it.
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hearth.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hearth.db'}"
        return
    url: str = request.getfixturevalue("postgres_server_url")
    yield url
    # Leave an empty database for the next test, whatever this one did to the schema.
    _run_autocommit(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.connect()
    yield db
    await db.close()


# ==========================================================================================
