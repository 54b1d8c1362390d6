"""Redis going away and coming back empty: live circles go on, nodes register again, and
the circle is not split. The test runs its own redis-server (the machine's stays up)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import redis

from tests.nodes.conftest import Cluster
from tests.nodes.test_nodes import hear_each_other, registered, wait_for
from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import free_port, link_token


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    # No persistence: a restart comes back empty, the worst case for leases.
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis(port=port) as r:
                r.ping()
            return process
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


async def test_live_circles_go_on_through_a_redis_outage_and_nothing_splits_after(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    port = free_port()
    own_redis = start_redis(port, tmp_path)
    cluster = Cluster(tmp_path, fresh_postgres_url, redis_url=f"redis://127.0.0.1:{port}/0")
    people: list[ScriptedParticipant] = []
    try:
        cluster.start()
        a, b, c = cluster.nodes
        circle = a.create_circle("Through an outage")
        host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
        sam = ScriptedParticipant(b.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
        people = [host, sam]
        for person in people:
            await person.connect()
            await person.join(muted=False)
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        owner = cluster.owner(circle["id"])
        assert owner is not None

        own_redis.terminate()
        own_redis.wait()
        await asyncio.sleep(7)  # longer than a lease lives
        # The circle goes on: they hear each other, and a host's command still works.
        await hear_each_other([(host, [SAM_HZ], [HOST_HZ]), (sam, [HOST_HZ], [SAM_HZ])])
        assert sam.me is not None
        await host.send({"type": "mute_participant", "participant_id": sam.me["id"]})
        await sam.wait_until(lambda: sam.participants[sam.me["id"]]["muted"] is True)

        own_redis = start_redis(port, tmp_path)  # back, empty
        await wait_for(lambda: set(registered(cluster)) == {"node-a", "node-b", "node-c"})
        # The owner took its lease back: a newcomer through the third door joins the same
        # circle (sees the other two), not a second copy of it.
        await wait_for(lambda: cluster.owner(circle["id"]) == owner)
        kim = ScriptedParticipant(c.ws_url, link_token(circle["join_url"]), "Kim", KIM_HZ)
        people.append(kim)
        await kim.connect()
        joined = await kim.join(muted=False)
        assert {p["display_name"] for p in joined["participants"]} == {"Ana", "Sam", "Kim"}
        await kim.start_audio()
        await kim.wait_connected()
        await listen(1.0)
        await hear_each_other([(kim, [HOST_HZ], [KIM_HZ, SAM_HZ])])
    finally:
        for person in people:
            await person.close()
        cluster.stop()
        own_redis.terminate()
        own_redis.wait()
