"""The database a Hearth server runs on: one async engine, sessions, migrations at start.

The schema is Alembic's (server/storage/migrations); ``connect()`` brings the database to the
newest revision before anything else touches it, so a fresh deployment and an upgraded one
start the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic Config that works from any working directory.

    With ``connection``, env.py migrates over it (inside the caller's transaction); otherwise
    env.py opens its own engine on ``url`` (or on HEARTH_DATABASE_URL / the default SQLite).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def create_engine_for(url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine on ``url`` with the per-backend settings Hearth relies on.

    SQLite: the folder of the file is created, and foreign keys are switched on for every
    connection (SQLite leaves them off by default, and seats rely on their circle existing).
    Several processes write the same file when circles are spread over worker processes
    (``hearth serve --workers N``): WAL lets readers and one writer work at once, and a
    busy timeout makes a writer wait its turn instead of failing with "database is locked".
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **engine_options)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


# Milliseconds a SQLite writer waits for another process's write to finish.
SQLITE_BUSY_TIMEOUT_MS = 5000


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    if _is_file_database(cursor):
        # WAL is a property of the file (kept once set); an in-memory database has none.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Durable at every checkpoint; with WAL, NORMAL cannot corrupt the database.
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _is_file_database(cursor: Any) -> bool:
    cursor.execute("PRAGMA database_list")
    return any(row[1] == "main" and row[2] for row in cursor.fetchall())


class Database:
    """Owns the engine; hand ``sessions`` to repositories.

    Use: ``db = Database(url); await db.connect(); ...; await db.close()``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    async def connect(self) -> None:
        """Create the engine and upgrade the schema to the newest revision."""
        engine = create_engine_for(self.url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade_to_head)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessions = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database.connect() has not been awaited")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("Database.connect() has not been awaited")
        return self._sessions


def _upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
