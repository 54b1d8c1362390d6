"""Three nodes on this machine: each its own loopback address and port, one PostgreSQL
database made for the test, one Redis (the machine's, under a key prefix of the test's own).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from signaling.peer import restrict_ice_addresses
from tests.conftest import throwaway_postgres_database
from tests.support.server import ServerProcess

# The machine's Redis (scripts/prepare-test-machine starts it); HEARTH_TEST_REDIS_URL overrides.
REDIS_URL = os.environ.get("HEARTH_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")

pytestmark = pytest.mark.postgres


class Cluster:
    def __init__(
        self,
        root: Path,
        database_url: str,
        redis_url: str = REDIS_URL,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.prefix = f"hearth-test-{secrets.token_hex(4)}:"
        self.redis_url = redis_url
        self.nodes = [
            ServerProcess(
                data_dir=root / f"node-{name}",
                host=address,
                extra_env={
                    "HEARTH_DATABASE_URL": database_url,
                    "HEARTH_REDIS_URL": redis_url,
                    "HEARTH_REDIS_PREFIX": self.prefix,
                    "HEARTH_NODE_ID": f"node-{name}",
                    **(extra_env or {}),
                },
            )
            for name, address in zip("abc", ADDRESSES, strict=True)
        ]

    def start(self) -> None:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready(timeout=60)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        with redis.Redis.from_url(self.redis_url) as r:
            keys = list(r.scan_iter(f"{self.prefix}*"))
            if keys:
                r.delete(*keys)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def owner(self, circle_id: str) -> str | None:
        with self.redis() as r:
            value = r.get(f"{self.prefix}lease:{circle_id}")
            return str(value) if value is not None else None

    def node(self, node_id: str) -> ServerProcess:
        return next(n for n in self.nodes if n.extra_env["HEARTH_NODE_ID"] == node_id)


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    yield from throwaway_postgres_database()


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres_url: str) -> Iterator[Cluster]:
    made = Cluster(tmp_path, fresh_postgres_url)
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(autouse=True)
def loopback_media() -> Iterator[None]:
    # The scripted peers offer only 127.0.0.1; each node offers its own loopback address.
    restrict_ice_addresses(("127.0.0.1",))
    yield
    restrict_ice_addresses(())
