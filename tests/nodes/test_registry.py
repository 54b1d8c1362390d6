"""The registry's leases against the machine's real Redis (a key prefix per test)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from server.doors import HERE, RegistryDirectory
from server.nodes import LEASE_TTL, NodeRegistry, OwnedElsewhere
from tests.nodes.conftest import REDIS_URL


def registry(prefix: str, node_id: str) -> NodeRegistry:
    return NodeRegistry(
        REDIS_URL,
        prefix=prefix,
        node_id=node_id,
        url=f"http://{node_id}",
        media_address="127.0.0.1",
        load=lambda: (0, 0, 0.0),
    )


@pytest.fixture
async def pair() -> AsyncIterator[tuple[NodeRegistry, NodeRegistry]]:
    prefix = f"hearth-test-{secrets.token_hex(4)}:"
    a, b = registry(prefix, "a"), registry(prefix, "b")
    # Heartbeats by hand (no background loop): the test decides when each one happens.
    await a.beat()
    await b.beat()
    yield a, b
    keys = [key async for key in a.redis.scan_iter(f"{prefix}*")]
    await a.close()
    await b.close()
    cleaner = registry(prefix, "cleaner")
    if keys:
        await cleaner.redis.delete(*keys)
    await cleaner.redis.aclose()


async def test_a_lease_is_one_node_s_renewed_retaken_after_a_wipe_and_lost_to_another(
    pair: tuple[NodeRegistry, NodeRegistry],
) -> None:
    a, b = pair
    lost: list[str] = []
    a.on_lease_lost = lost.append
    await a.acquire("circle-1")
    assert await b.owner("circle-1") == "a"
    with pytest.raises(OwnedElsewhere) as refused:
        await b.acquire("circle-1")
    assert refused.value.owner == "a"
    # Renewed at each heartbeat.
    key = a.prefix + "lease:circle-1"
    await a.redis.pexpire(key, 500)
    await a.beat()
    assert await a.redis.pttl(key) > 500
    # Redis restarted empty: the owner's next heartbeat takes it back, before anyone else.
    await a.redis.delete(key)
    await a.beat()
    assert await b.owner("circle-1") == "a"
    # It expired (a long pause) and another node took it: the old owner learns it lost it.
    await a.redis.delete(key)
    await b.acquire("circle-1")
    await a.beat()
    assert lost == ["circle-1"]
    assert "circle-1" not in a.leases
    # Giving back a lease that is not yours does nothing.
    a.leases["circle-1"] = "a"
    await a.release("circle-1")
    assert await b.owner("circle-1") == "b"
    assert await a.redis.pttl(key) <= LEASE_TTL * 1000


async def test_nodes_list_each_other_and_one_that_stopped_is_gone(
    pair: tuple[NodeRegistry, NodeRegistry],
) -> None:
    a, b = pair
    assert sorted(n.node_id for n in await a.nodes()) == ["a", "b"]
    placed = await a.place()
    assert placed is not None and placed.node_id in {"a", "b"}
    await b.redis.delete(b.prefix + "node:b")  # its record expired
    assert [n.node_id for n in await a.nodes()] == ["a"]
    assert not await a.redis.sismember(a.prefix + "nodes", "b")


async def test_two_doors_placing_one_circle_at_once_agree_on_its_node(
    pair: tuple[NodeRegistry, NodeRegistry],
) -> None:
    a, b = pair
    placed = await asyncio.gather(*(door.place_circle("circle-2") for door in (a, b, a, b)))
    assert len(set(placed)) == 1 and placed[0] in {"a", "b"}
    # The chosen node takes it as its own when it loads the circle; the other cannot.
    chosen, other = (a, b) if placed[0] == "a" else (b, a)
    await chosen.acquire("circle-2")
    with pytest.raises(OwnedElsewhere):
        await other.acquire("circle-2")


async def test_a_join_for_a_circle_being_handed_over_waits_for_the_lease_and_goes_to_the_new_node(
    pair: tuple[NodeRegistry, NodeRegistry],
) -> None:
    a, b = pair
    # Node A runs the circle and starts draining: placement skips it at once.
    await a.acquire("circle-3")
    a.draining = True
    await a.beat()
    # A person reconnects (closed with 1012 by A) through B's door while A is still
    # storing the circle's last writes: the door holds the join instead of sending it to
    # A, which would refuse it and make the page come back after its backoff.
    door = RegistryDirectory(b, serves_here=True)
    placing = asyncio.get_running_loop().create_task(door.place("circle-3"))
    await asyncio.sleep(0.3)
    assert not placing.done()
    loop = asyncio.get_running_loop()
    released_at = loop.time()
    await a.release("circle-3")  # A has stored everything and lets go
    placed = await placing
    # Straight to the one node that takes circles (B itself), within a few polls.
    assert placed is HERE
    assert loop.time() - released_at < 0.5
    assert await a.owner("circle-3") == "b"


async def test_a_whole_circle_reconnecting_during_a_hand_over_shares_one_placement(
    pair: tuple[NodeRegistry, NodeRegistry],
) -> None:
    a, b = pair
    await a.acquire("circle-4")
    a.draining = True
    await a.beat()
    door = RegistryDirectory(b, serves_here=True)
    lookups = 0
    place_circle = b.place_circle

    async def counted(circle_id: str) -> str | None:
        nonlocal lookups
        lookups += 1
        return await place_circle(circle_id)

    b.place_circle = counted  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    # Twenty people closed with 1012 come back at once; one of them gives up (closes the tab).
    joins = [loop.create_task(door.place("circle-4")) for _ in range(20)]
    await asyncio.sleep(0.3)
    joins[0].cancel()
    await asyncio.sleep(0.1)
    polled = lookups
    await a.release("circle-4")
    placed = await asyncio.gather(*joins[1:])
    assert placed == [HERE] * 19
    # The twenty waited on one placement: about one look-up per poll (every 20 ms), not
    # twenty; the one who gave up did not end it for the others.
    assert polled <= 0.4 / 0.02 + 2, polled
    assert await a.owner("circle-4") == "b"
