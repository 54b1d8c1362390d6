"""Nodes on Redis: the registry of nodes with their load, and the leases on circles.

Every node is the same program. With ``HEARTH_REDIS_URL`` set it registers itself here:

- ``{prefix}node:{id}``: its record (``rooms.placement.NodeLoad`` as JSON), written every
  ``HEARTBEAT`` with a time to live of ``NODE_TTL``: a node that stops beating disappears.
- ``{prefix}nodes``: the set of node ids, to list them without scanning the key space
  (an id whose record has expired is taken out by whoever lists).
- ``{prefix}lease:{circle id}``: the owner's node id, set only if absent, with a time to
  live of ``LEASE_TTL``, renewed every ``HEARTBEAT`` by the owner. The one truth of where a
  circle lives.
- ``{prefix}secret``: a random value the first node sets; a WebSocket bridged from another
  node carries it, so a client cannot pretend to be a node.

The fencing token is not Redis's: it is ``circles.fence`` in PostgreSQL, raised by one in
the transaction that claims the circle (``SqlCircleStore.claim_fence``) and checked in the
same transaction as every write of the circle's state. A restarted Redis forgets its
counters; the database does not, so a token can never go backwards. See
docs/architecture.md, "Nodes".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rooms.placement import NodeLoad, choose_node, is_alive

log = logging.getLogger(__name__)

# Seconds between heartbeats (and lease renewals); a node record lives NODE_TTL without one.
HEARTBEAT = 1.0
NODE_TTL = 3.0
# A lease not renewed for this long expires, and the next join places the circle afresh.
LEASE_TTL = 5.0

# Renew a lease this node holds; take it back when Redis forgot it (restarted empty).
# Returns 1 when it is ours now, 0 when another node holds it.
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# Give up a lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class OwnedElsewhere(Exception):
    """The circle's lease is held by another node."""

    def __init__(self, circle_id: str, owner: str) -> None:
        super().__init__(f"circle {circle_id} is owned by node {owner}")
        self.circle_id = circle_id
        self.owner = owner


class LoadMeter:
    """CPU share of this process between two readings."""

    def __init__(self) -> None:
        self._cpu = self._cpu_seconds()
        self._at = time.monotonic()

    @staticmethod
    def _cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def cpu(self) -> float:
        cpu, at = self._cpu_seconds(), time.monotonic()
        share = (cpu - self._cpu) / max(at - self._at, 1e-6)
        self._cpu, self._at = cpu, at
        return round(share, 3)


class NodeRegistry:
    """This node's side of Redis: heartbeats, the list of nodes, leases on circles."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str,
        node_id: str,
        url: str,
        media_address: str,
        load: Callable[[], tuple[int, int, float]],
        registers: bool = True,
    ) -> None:
        # Short timeouts: a Redis that does not answer must not hold a join for long.
        self.redis = aioredis.from_url(
            redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )
        self.prefix = prefix
        self.node_id = node_id
        self.url = url
        self.media_address = media_address
        # False for the front of ``--workers N``: a door that runs no circle, so it is not
        # a node others place circles on (its workers are).
        self.registers = registers
        # (participants, circles, smoothed loop lag in ms), read at each heartbeat.
        self._load = load
        self._meter = LoadMeter()
        self.draining = False
        self.secret = ""
        # Leases this node holds: circle id -> the value stored in Redis (this node's id).
        self.leases: dict[str, str] = {}
        self.redis_reachable = True
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        # Called with a circle id when its lease turned out to be another node's.
        self.on_lease_lost: Callable[[str], None] | None = None

    @staticmethod
    def new_id() -> str:
        return f"{os.uname().nodename[:20]}-{secrets.token_hex(4)}"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # --- registry -----------------------------------------------------------------------

    def record(self) -> NodeLoad:
        participants, circles, lag_ms = self._load()
        return NodeLoad(
            node_id=self.node_id,
            url=self.url,
            media_address=self.media_address,
            participants=participants,
            circles=circles,
            cpu=self._meter.cpu(),
            lag_ms=round(lag_ms, 1),
            seen_at=time.time(),
            draining=self.draining,
        )

    async def start(self) -> None:
        """Register (failing loudly if Redis cannot be reached at start) and keep beating."""
        await self.redis.set(self._key("secret"), secrets.token_urlsafe(24), nx=True)
        self.secret = str(await self.redis.get(self._key("secret")))
        await self.beat()
        self._task = asyncio.get_running_loop().create_task(self._beat_forever())
        if self.registers:
            log.info("node %s registered (%s)", self.node_id, self.url)

    async def beat(self) -> None:
        """One heartbeat: the record, then each lease renewed (or found lost)."""
        if self.registers:
            record = self.record()
            async with self.redis.pipeline(transaction=False) as pipe:
                key = self._key("node", self.node_id)
                pipe.set(key, json.dumps(asdict(record)), px=_ms(NODE_TTL))
                pipe.sadd(self._key("nodes"), self.node_id)
                await pipe.execute()
        if not self.secret:
            # Redis restarted empty: the first node back sets a new secret for all.
            await self.redis.set(self._key("secret"), secrets.token_urlsafe(24), nx=True)
            self.secret = str(await self.redis.get(self._key("secret")))
        held_now = list(self.leases.items())
        if not held_now:
            return
        # Every lease in one round trip (a node may hold hundreds of circles).
        async with self.redis.pipeline(transaction=False) as pipe:
            for circle_id, value in held_now:
                key = self._key("lease", circle_id)
                await self._renew(keys=[key], args=[value, _ms(LEASE_TTL)], client=pipe)
            results = await pipe.execute()
        for (circle_id, value), held in zip(held_now, results, strict=True):
            if not held and self.leases.get(circle_id) == value:
                del self.leases[circle_id]
                log.warning("lease on circle %s is another node's now", circle_id)
                if self.on_lease_lost is not None:
                    self.on_lease_lost(circle_id)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self.beat()
                if not self.redis_reachable:
                    self.redis_reachable = True
                    log.warning("Redis is back: node %s registered again", self.node_id)
            except (RedisError, OSError) as error:
                # Live circles go on; nobody else can take a lease from a Redis that is
                # away, and the fence guards the database if only this node lost it.
                if self.redis_reachable:
                    self.redis_reachable = False
                    log.warning("Redis unreachable (%s); live circles go on", type(error).__name__)
            except Exception:
                log.exception("heartbeat failed")

    async def nodes(self) -> list[NodeLoad]:
        """Every node with a live record, this one included."""
        ids = sorted(str(i) for i in await self.redis.smembers(self._key("nodes")))
        if not ids:
            return []
        raws = await self.redis.mget([self._key("node", i) for i in ids])
        found: list[NodeLoad] = []
        gone: list[str] = []
        for node_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                gone.append(node_id)
                continue
            found.append(NodeLoad(**json.loads(str(raw))))
        if gone:
            await self.redis.srem(self._key("nodes"), *gone)
        now = time.time()
        return [n for n in found if is_alive(n, now, NODE_TTL)]

    async def node(self, node_id: str) -> NodeLoad | None:
        raw = await self.redis.get(self._key("node", node_id))
        return NodeLoad(**json.loads(raw)) if raw else None

    async def place(self) -> NodeLoad | None:
        """The node a circle nobody holds should go to (rooms.placement.choose_node)."""
        return choose_node(await self.nodes(), time.time(), NODE_TTL)

    # --- leases -------------------------------------------------------------------------

    async def owner(self, circle_id: str) -> str | None:
        held = await self.redis.get(self._key("lease", circle_id))
        return str(held) if held else None

    async def place_circle(self, circle_id: str) -> str | None:
        """The owner of a circle, placing it when nobody holds it: the least-loaded node
        gets the lease at once, set by the door on its behalf (set if absent), so that two
        doors placing the same circle at one moment agree on the node. None: no node
        takes circles."""
        owner = await self.owner(circle_id)
        if owner is not None:
            return owner
        placed = await self.place()
        if placed is None:
            return None
        key = self._key("lease", circle_id)
        if await self.redis.set(key, placed.node_id, nx=True, px=_ms(LEASE_TTL)):
            return placed.node_id
        return await self.owner(circle_id)

    async def leased_circles(self) -> set[str]:
        """Every circle some node holds a lease on now (live, or being loaded)."""
        start = len(self._key("lease", ""))
        return {str(key)[start:] async for key in self.redis.scan_iter(self._key("lease", "*"))}

    async def acquire(self, circle_id: str) -> None:
        """Take the circle's lease (set if absent, with expiry), or raise OwnedElsewhere.

        The caller then claims the fencing token in the database (``claim_fence``).
        """
        key = self._key("lease", circle_id)
        value = self.node_id
        if await self.redis.set(key, value, nx=True, px=_ms(LEASE_TTL)):
            self.leases[circle_id] = value
            return
        owner = await self.redis.get(key)
        if owner is not None:
            owner = str(owner)
        if owner == self.node_id:
            self.leases[circle_id] = value
            await self.redis.pexpire(key, _ms(LEASE_TTL))
            return
        if owner is None:  # expired between the two calls: try once more
            if await self.redis.set(key, value, nx=True, px=_ms(LEASE_TTL)):
                self.leases[circle_id] = value
                return
            owner = await self.owner(circle_id) or "?"
        raise OwnedElsewhere(circle_id, owner)

    async def release(self, circle_id: str) -> None:
        value = self.leases.pop(circle_id, None)
        if value is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[self._key("lease", circle_id)], args=[value])

    async def close(self) -> None:
        """Stop beating; give up every lease and the record (a clean stop is seen at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            for circle_id in list(self.leases):
                await self.release(circle_id)
            if self.registers:
                await self.redis.delete(self._key("node", self.node_id))
                await self.redis.srem(self._key("nodes"), self.node_id)
        await self.redis.aclose()


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
