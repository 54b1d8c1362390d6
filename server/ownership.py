"""Ownership of live circles among nodes: a layer around the hub's store.

The hub loads a circle through ``load_state`` and writes it through ``save_batch``; this
store wraps the SQL one so that, with several nodes:

- loading a circle first takes its lease in Redis (``NodeRegistry.acquire``; another node's
  lease refuses the load) and then the next fencing token from the database;
- every write carries that token and is checked against the database in its own
  transaction (``SqlCircleStore.save_batch(fence=...)``): LeaseLost once another node
  claimed the circle.

The hub itself stays as it is for one node; the node layer also gives a circle's lease back
when the hub releases it (``CircleHub.on_released``) and evicts a circle whose lease turned
out to be another node's (``CircleHub.evict``). See docs/architecture.md, "Nodes".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from redis.exceptions import RedisError

from rooms.errors import RoomError
from rooms.machine import AuditEntry
from rooms.model import CircleState
from rooms.overload import SERVER_DRAINING
from server.nodes import NodeRegistry, OwnedElsewhere
from server.storage.repository import SqlCircleStore
from signaling.store import LeaseLost, LinkMatch, StateWrite, StorageUnavailable

log = logging.getLogger(__name__)

# What a join is told when the circle was placed elsewhere meanwhile: the page reconnects
# (close 1012, like a restart) and its door bridges it to the owner.
MOVED_MESSAGE = "This circle is on another server; reconnecting you there."


class OwnedCircleStore:
    """A CircleStore whose loads take the lease and fence, and whose writes are fenced."""

    def __init__(self, inner: SqlCircleStore, registry: NodeRegistry) -> None:
        self.inner = inner
        self._registry = registry
        # Fencing token of each circle this node claimed.
        self.fences: dict[str, int] = {}

    async def find_by_link(self, token: str) -> LinkMatch | None:
        return await self.inner.find_by_link(token)

    async def load_state(self, match: LinkMatch) -> CircleState | None:
        circle = match.circle
        if circle is None:
            return None
        if self._registry.draining:
            raise RoomError(SERVER_DRAINING, MOVED_MESSAGE)
        try:
            await self._registry.acquire(circle.id)
        except OwnedElsewhere as elsewhere:
            log.info("circle %s is node %s's; not loading it here", circle.id, elsewhere.owner)
            raise RoomError(SERVER_DRAINING, MOVED_MESSAGE) from None
        except (RedisError, OSError) as error:
            # Without Redis nobody can tell who owns a circle that is not live anywhere.
            raise StorageUnavailable(f"Redis: {type(error).__name__}") from error
        try:
            self.fences[circle.id] = await self.inner.claim_fence(circle.id)
            return await self.inner.load_state(match)
        except BaseException:
            self.fences.pop(circle.id, None)
            await self._registry.release(circle.id)
            raise

    async def save_state(
        self, state: CircleState, *, now: datetime, audit: Sequence[AuditEntry] = ()
    ) -> None:
        await self.save_batch([StateWrite(state, now, audit)])

    async def save_batch(self, writes: Sequence[StateWrite]) -> None:
        if not writes:
            return
        circle_id = writes[-1].state.circle.id
        fence = self.fences.get(circle_id)
        if fence is None:
            # Released or never claimed here (a join that raced an eviction): not ours.
            raise LeaseLost(f"circle {circle_id} is not held by this node")
        await self.inner.save_batch(writes, fence=fence)

    async def released(self, circle_id: str) -> None:
        """The hub closed the circle (empty, stored): give its lease back."""
        self.fences.pop(circle_id, None)
        await self._registry.release(circle_id)
