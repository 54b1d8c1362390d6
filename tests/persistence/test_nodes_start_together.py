"""Several nodes started at the same moment on a fresh PostgreSQL database all come up.

An orchestrator starts every node of a deployment at once. Each migrates the database at
start; without a lock two of them create the same types together and one dies with
UniqueViolationError (pg_type_typname_nsp_index). Real server processes, a real database.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import throwaway_postgres_database
from tests.support.server import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.postgres

NODES = 4


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own for one test, never migrated, dropped after it."""
    yield from throwaway_postgres_database()


async def test_nodes_started_at_once_on_a_fresh_database_all_come_up(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    # The session's database is fresh: nothing has migrated it yet.
    nodes = [
        ServerProcess(
            data_dir=tmp_path / f"node{i}",
            extra_env={"HEARTH_DATABASE_URL": fresh_postgres_url},
        )
        for i in range(NODES)
    ]
    try:
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait_ready(timeout=60)
        # Every node serves the same database: a circle made on one is listed by all.
        made = nodes[0].create_circle("Started together")
        for node in nodes:
            status, listed = node.api("GET", "/api/v1/circles")
            assert status == 200
            assert made["id"] in {c["id"] for c in listed["circles"]}, node.log_text()
        for node in nodes:
            assert "UniqueViolation" not in node.log_text()
    finally:
        for node in nodes:
            node.stop()
    engine = create_async_engine(fresh_postgres_url)
    try:
        async with engine.connect() as connection:
            versions = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).all()
        assert len(versions) == 1
    finally:
        await engine.dispose()


# Each process imports everything first, then waits for the same instant to migrate: the
# moment the race happens in (an orchestrator's nodes are further apart, less reliably).
_MIGRATE_AT = """
import asyncio, sys, time
from server.storage.database import Database
url, at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, at - time.time()))
async def main():
    db = Database(url)
    await db.connect()
    await db.close()
asyncio.run(main())
"""


def test_migrations_begun_at_the_same_instant_run_once(
    fresh_postgres_url: str,
) -> None:
    at = time.time() + 4
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_AT, fresh_postgres_url, str(at)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(NODES)
    ]
    outputs = [run.communicate(timeout=120)[0].decode(errors="replace") for run in runs]
    assert [run.returncode for run in runs] == [0] * NODES, "\n".join(outputs)
