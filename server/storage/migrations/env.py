"""Alembic's environment: migrate over a given connection, or open one from the URL.

``Database.connect()`` passes its connection in ``config.attributes["connection"]`` (Alembic's
async cookbook); the ``alembic`` command line passes nothing, and then the URL comes from
``sqlalchemy.url`` if set, else HEARTH_DATABASE_URL, else the default SQLite file.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, pool

from server.config import Settings
from server.storage.database import create_engine_for
from server.storage.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    if url := config.get_main_option("sqlalchemy.url") or os.environ.get("HEARTH_DATABASE_URL"):
        return url
    data_dir = Path(os.environ.get("HEARTH_DATA_DIR") or Settings().data_dir)
    return Settings(data_dir=data_dir).effective_database_url


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode makes autogenerate write migrations
        # that copy the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_on_own_engine() -> None:
    engine = create_engine_for(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


given_connection = config.attributes.get("connection")
if given_connection is not None:
    run_migrations(given_connection)
elif context.is_offline_mode():
    run_migrations_offline()
else:
    # Only the command line has an ini file; code that embeds Hearth keeps its own logging.
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(run_migrations_on_own_engine())
