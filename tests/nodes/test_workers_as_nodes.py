"""``hearth serve --workers 2`` with ``HEARTH_REDIS_URL``: the workers are nodes in the
registry and the front is one more door, next to a plain node on another address. Real
processes, one PostgreSQL database of the test's own, Redis under the test's key prefix, real
aiortc peers."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.nodes.conftest import REDIS_URL
from tests.nodes.test_nodes import hear_each_other, registered, rejoin, wait_for
from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


class FrontAndNode:
    """A front with two workers on 127.0.0.2 and a node on 127.0.0.3, one Redis prefix."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.prefix = f"hearth-test-{secrets.token_hex(4)}:"
        self.redis_url = REDIS_URL

        def env(node_id: str) -> dict[str, str]:
            return {
                "HEARTH_DATABASE_URL": database_url,
                "HEARTH_REDIS_URL": REDIS_URL,
                "HEARTH_REDIS_PREFIX": self.prefix,
                "HEARTH_NODE_ID": node_id,
            }

        self.front = ServerProcess(
            data_dir=root / "front", host="127.0.0.2", workers=2, extra_env=env("front")
        )
        self.node = ServerProcess(data_dir=root / "node", host="127.0.0.3", extra_env=env("node-c"))

    def owner(self, circle_id: str) -> str | None:
        with redis.Redis.from_url(self.redis_url, decode_responses=True) as r:
            value = r.get(f"{self.prefix}lease:{circle_id}")
            return str(value) if value is not None else None

    def redis(self) -> redis.Redis:
        # For tests.nodes.test_nodes.registered.
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def stop(self) -> None:
        for server in (self.front, self.node):
            server.stop()
        with redis.Redis.from_url(self.redis_url) as r:
            keys = list(r.scan_iter(f"{self.prefix}*"))
            if keys:
                r.delete(*keys)


@pytest.fixture
def setup(tmp_path: Path, fresh_postgres_url: str) -> Iterator[FrontAndNode]:
    made = FrontAndNode(tmp_path, fresh_postgres_url)
    try:
        yield made
    finally:
        made.stop()


async def test_a_circle_on_a_worker_is_reached_through_the_front_and_another_node_and_a_front_drain_moves_it(  # noqa: E501
    setup: FrontAndNode,
) -> None:
    front, node = setup.front, setup.node
    front.start(timeout=120)
    # The workers register as nodes, named after the front; the front, a door that runs no
    # circle, does not.
    await wait_for(lambda: set(registered(setup)) == {"front-w0", "front-w1"})  # type: ignore[arg-type]
    circle = front.create_circle("Workers are nodes")
    host = ScriptedParticipant(front.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    people = [host]
    try:
        await host.connect()
        await host.join(muted=False)
        owner = setup.owner(circle["id"])
        assert owner in {"front-w0", "front-w1"}
        index = int(owner[-1])
        assert [c["id"] for c in front.worker_live(index)["circles"]] == [circle["id"]]
        assert front.worker_live(1 - index)["circles"] == []

        # A second machine's node comes up; Sam enters through it, Kim through the front:
        # one circle, on the worker, and everyone hears the others.
        node.start(timeout=60)
        status, listed = front.api("GET", "/api/v1/nodes")
        assert status == 200
        assert sorted(n["id"] for n in listed["nodes"]) == ["front-w0", "front-w1", "node-c"]
        sam = ScriptedParticipant(node.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
        kim = ScriptedParticipant(front.ws_url, link_token(circle["join_url"]), "Kim", KIM_HZ)
        people += [sam, kim]
        for person in (sam, kim):
            await person.connect()
            joined = await person.join(muted=False)
            assert {p["display_name"] for p in joined["participants"]} >= {"Ana", person.name}
        for person in people:
            await person.wait_until(lambda p=person: len(p.participants) == 3)
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        assert setup.owner(circle["id"]) == owner
        # Media straight from the worker, on the front's machine: no other address offered.
        for person in people:
            assert person.pc is not None
            answer = person.pc.remoteDescription.sdp
            assert front.host in answer and node.host not in answer
        await listen(1.0)
        await hear_each_other(
            [
                (host, [SAM_HZ, KIM_HZ], [HOST_HZ]),
                (sam, [HOST_HZ, KIM_HZ], [SAM_HZ]),
                (kim, [HOST_HZ, SAM_HZ], [KIM_HZ]),
            ]
        )

        # The front is stopped: its workers drain as nodes do, and the circle moves to the
        # other machine while people come back by seat token through its door.
        seats = {p.me["id"] for p in people if p.me is not None}
        assert front.process is not None
        front.process.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        for person in people:
            await person.wait_until(lambda p=person: p.closed_code is not None, timeout=20)
        assert {p.closed_code for p in people} == {1012}
        joined_again = await asyncio.gather(*(rejoin(p, node.ws_url) for p in people))
        assert {j["you"]["id"] for j in joined_again} == seats  # type: ignore[index]
        for person in people:
            await person.wait_connected(timeout=15)
        print(f"front drain: audio back {time.monotonic() - sent_at:.2f} s after SIGTERM")
        assert setup.owner(circle["id"]) == "node-c"
        await listen(1.0)
        await hear_each_other(
            [(host, [SAM_HZ, KIM_HZ], [HOST_HZ]), (sam, [HOST_HZ, KIM_HZ], [SAM_HZ])]
        )
        assert front.process.wait(timeout=30) == 0
        assert set(registered(setup)) == {"node-c"}  # type: ignore[arg-type]
    finally:
        for person in people:
            await person.close()
