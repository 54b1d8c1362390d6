"""The database a Hearth server runs on: one async engine, sessions, migrations at start.

The schema is Alembic's (server/storage/migrations); ``connect()`` brings the database to the
newest revision before anything else touches it, so a fresh deployment and an upgraded one
start the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from signaling.store import StorageUnavailable

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")

# PostgreSQL advisory lock key that serializes migrations between nodes starting at the same
# moment: any fixed 64-bit number works as long as every node uses the same one ("hearth-m").
MIGRATION_LOCK_KEY = 0x6865617274682D6D

# A write that meets a lock or a serialization conflict is run again, after a short random
# pause that doubles each time: about 3 s in all before the database counts as unavailable.
WRITE_RETRIES = 8
FIRST_RETRY_PAUSE = 0.02

# A write that holds a connection this long without committing counts as the database being
# away (a hung server or network): the circle goes on in memory instead of leaving everyone
# waiting. Only time on a connection counts. Waiting for one of the pool's connections (or,
# on SQLite, for this process's writer turn) is a queue, not an outage: under a burst of joins
# on a busy loop, forty circles' writes share the pool and some wait seconds for it.
ON_CONNECTION_TIMEOUT = 5.0
# How long a write may queue for a connection before the database counts as away: a pool
# that stays exhausted this long is as good as no database to the person waiting. It also
# bounds a server that hangs without refusing (a cut network): the pool's pre-ping on an idle
# connection waits in this phase. A stopped or restarting server refuses at once.
QUEUE_TIMEOUT = 10.0


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
    if not is_sqlite:
        # A pooled connection may have died with a restarted server: test it at checkout
        # (one round trip) instead of failing the command that drew it.
        engine_options.setdefault("pool_pre_ping", True)
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


class Failure(Enum):
    """What kind of trouble a database error is, for deciding whether to try again."""

    TRANSIENT = "transient"  # a lock, a conflict: the same write succeeds a moment later
    UNAVAILABLE = "unavailable"  # the server cannot be reached (stopped, restarting, cut)
    PERMANENT = "permanent"  # anything else: a bug or a constraint; trying again won't help


# SQLSTATEs: serialization failure and deadlock are transient; class 08 (connection) and
# 57P01-57P03 (shutting down, crashed, starting up) mean the server is away.
_TRANSIENT_STATES = {"40001", "40P01", "55P03"}
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03"}


def classify(error: BaseException) -> Failure:
    """Transient (retry), unavailable (the database is away) or permanent."""
    if isinstance(error, StorageUnavailable):
        return Failure.UNAVAILABLE
    if isinstance(error, (OSError, ConnectionError, TimeoutError)):
        return Failure.UNAVAILABLE
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return Failure.UNAVAILABLE
        orig = error.orig
        state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
        if state in _TRANSIENT_STATES:
            return Failure.TRANSIENT
        if state.startswith("08") or state in _UNAVAILABLE_STATES:
            return Failure.UNAVAILABLE
        text = str(orig).lower()
        if "database is locked" in text or "database table is locked" in text:
            return Failure.TRANSIENT
        if isinstance(error, sa_exc.InterfaceError) or ("connection" in text and "closed" in text):
            return Failure.UNAVAILABLE
    cause = error.__cause__
    if cause is not None and cause is not error:
        return classify(cause)
    return Failure.PERMANENT


class _NoAnswer(Exception):
    """A write queued or held its connection past its time limit (see ``Database.write``)."""


class Database:
    """Owns the engine; hand ``sessions`` to repositories, and writes that must not fail a
    person to ``write``.

    Use: ``db = Database(url); await db.connect(); ...; await db.close()``.
    """

    def __init__(
        self,
        url: str,
        *,
        on_connection_timeout: float = ON_CONNECTION_TIMEOUT,
        queue_timeout: float = QUEUE_TIMEOUT,
        **engine_options: Any,
    ) -> None:
        self.url = url
        self.on_connection_timeout = on_connection_timeout
        self.queue_timeout = queue_timeout
        self._engine_options = engine_options
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        # SQLite allows one writer at a time: in this process they take turns here instead
        # of meeting "database is locked" (other processes are waited for by busy_timeout).
        self._writer = asyncio.Lock()
        # Write transactions committed by ``write`` (what group commit saves; see bench/).
        self.transactions = 0

    async def write(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, bounded: bool = True
    ) -> T:
        """Run ``work`` in one write transaction and commit it.

        Transient failures (a lock, a serialization conflict) are retried; a database that
        cannot be reached is tried once more (a pooled connection may have died with a
        restart) and then reported as StorageUnavailable, as is a write that holds its
        connection longer than ``on_connection_timeout`` (not tried again: the database does
        not answer) or queues for one longer than ``queue_timeout``. ``work`` may run more
        than once, so it must only touch the session.

        ``bounded=False`` is for maintenance (a purge of a year of records, the start-up
        clean-up), which may rightly hold its connection longer: only its queue is limited.
        """
        pause = FIRST_RETRY_PAUSE
        unavailable_tries = 0
        for attempt in range(WRITE_RETRIES + 1):
            try:
                return await self._write_once(work, bounded)
            except _NoAnswer as error:
                raise StorageUnavailable(str(error)) from None
            except Exception as error:
                failure = classify(error)
                if failure is Failure.PERMANENT:
                    raise
                if failure is Failure.UNAVAILABLE:
                    unavailable_tries += 1
                    if unavailable_tries > 1:
                        raise StorageUnavailable(str(error) or type(error).__name__) from error
                    continue
                if attempt == WRITE_RETRIES:
                    raise StorageUnavailable(f"still failing after retries: {error}") from error
                log.debug("retrying a write after %s", type(error).__name__)
                await asyncio.sleep(pause * (0.5 + random.random()))
                pause *= 2
        raise AssertionError("unreachable")

    async def _write_once(self, work: Callable[[AsyncSession], Awaitable[T]], bounded: bool) -> T:
        try:
            async with asyncio.timeout(self.queue_timeout) as queued:
                if self.is_sqlite:
                    await self._writer.acquire()
                try:
                    connection = await self.engine.connect()
                    queued.reschedule(None)  # from here only time on the connection counts
                except BaseException:
                    if self.is_sqlite:
                        self._writer.release()
                    raise
        except TimeoutError:
            if not queued.expired():
                raise  # the driver's own (connecting timed out): classified as away
            raise _NoAnswer(f"no connection within {self.queue_timeout:g} s") from None
        try:
            async with asyncio.timeout(self.on_connection_timeout if bounded else None):
                try:
                    session = AsyncSession(bind=connection, expire_on_commit=False)
                    async with session, session.begin():
                        result = await work(session)
                finally:
                    await connection.close()
        except TimeoutError:
            raise _NoAnswer(
                f"no answer within {self.on_connection_timeout:g} s on a connection"
            ) from None
        finally:
            if self.is_sqlite:
                self._writer.release()
        self.transactions += 1
        return result

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a read-only session; a database that cannot be reached is tried
        once more, then reported as StorageUnavailable (fast: a join waits on it)."""
        for attempt in range(2):
            try:
                async with self.sessions() as session:
                    return await work(session)
            except Exception as error:
                failure = classify(error)
                if failure is Failure.PERMANENT:
                    raise
                if attempt == 1:
                    raise StorageUnavailable(str(error) or type(error).__name__) from error
        raise AssertionError("unreachable")

    async def connect(self) -> None:
        """Create the engine and upgrade the schema to the newest revision.

        On PostgreSQL the upgrade runs under a transaction-scoped advisory lock: nodes started
        at the same moment (as an orchestrator starts them) take turns, so the first one
        migrates and the others, once it commits, find the schema at head and do nothing.
        Without it two nodes create the same types at once and one of them dies
        (UniqueViolationError on pg_type_typname_nsp_index). SQLite serializes writers itself.
        """
        engine = create_engine_for(self.url, **self._engine_options)
        try:
            async with engine.begin() as connection:
                if not self.is_sqlite:
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
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
