"""Three Hearth nodes on one PostgreSQL and one Redis: registry, placement, leases, any door,
failover. Real processes, real aiortc peers, real databases."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from pathlib import Path

from tests.nodes.conftest import Cluster
from tests.support.hearing import HOST_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


def registered(cluster: Cluster) -> dict[str, dict[str, object]]:
    with cluster.redis() as r:
        ids = r.smembers(f"{cluster.prefix}nodes")
        found = {}
        for node_id in ids:
            raw = r.get(f"{cluster.prefix}node:{node_id}")
            if raw is not None:
                found[str(node_id)] = json.loads(str(raw))
        return found


async def wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def hear_each_other(
    checks: list[tuple[ScriptedParticipant, list[float], list[float]]], attempts: int = 3
) -> None:
    """Each person hears the first tones and not the second, within a few 2 s windows: a
    window where this loaded machine dropped frames is tried again; audio that does not
    come back fails."""
    for attempt in range(attempts):
        since = await listen(2.0)
        try:
            for person, heard, not_heard in checks:
                assert_hears(person, since, heard=heard, not_heard=not_heard)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


async def test_every_node_registers_with_its_load_and_a_killed_one_disappears(
    cluster: Cluster,
) -> None:
    nodes = registered(cluster)
    assert set(nodes) == {"node-a", "node-b", "node-c"}
    for node_id, record in nodes.items():
        server = cluster.node(node_id)
        assert record["url"] == server.base_url
        assert record["media_address"] == server.host
        assert record["participants"] == 0
        assert {"cpu", "lag_ms", "seen_at", "circles"} <= set(record)
    cluster.nodes[2].kill()
    await wait_for(lambda: "node-c" not in registered(cluster))
    assert set(registered(cluster)) == {"node-a", "node-b"}


async def test_a_circle_lives_on_one_node_and_people_through_any_door_hear_each_other(
    cluster: Cluster,
) -> None:
    a, _, c = cluster.nodes
    circle = a.create_circle("Any door")
    # The host comes in through node A, Sam through node C: one circle, on one node.
    host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    sam = ScriptedParticipant(c.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
    people = [host, sam]
    try:
        for person in people:
            await person.connect()
            await person.join(muted=False)
        owner = cluster.owner(circle["id"])
        assert owner in {"node-a", "node-b", "node-c"}
        # Both see both: there is one copy of the circle, not one per door.
        for person in people:
            await person.wait_until(lambda p=person: len(p.participants) == 2)
        for person in people:
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        await listen(1.0)
        await hear_each_other([(host, [SAM_HZ], [HOST_HZ]), (sam, [HOST_HZ], [SAM_HZ])])
        # Media comes straight from the owner: its address is in the answer, no other.
        owner_host = cluster.node(owner).host
        for person in people:
            assert person.pc is not None
            answer = person.pc.remoteDescription.sdp
            assert owner_host in answer
            assert all(n.host not in answer for n in cluster.nodes if n.host != owner_host)
        # The registry counts them on the owner.
        await wait_for(lambda: registered(cluster)[owner]["participants"] == 2)
    finally:
        for person in people:
            await person.close()


async def rejoin(
    person: ScriptedParticipant, ws_url: str, timeout: float = 30
) -> dict[str, object]:
    """As the page does after a lost connection: reconnect with the seat token, with a
    short pause between tries while the circle is moving (1012). A door holds a join for a
    circle being handed over (drain), so the first try normally gets in."""
    person.ws_url = ws_url
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await person.reconnect()
        except (ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_when_the_owner_is_killed_the_circle_comes_back_on_another_node_with_its_seats(
    cluster: Cluster,
) -> None:
    a = cluster.nodes[0]
    circle = a.create_circle("Failover")
    host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    sam = ScriptedParticipant(a.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
    people = [host, sam]
    try:
        for person in people:
            await person.connect()
            await person.join(muted=False)
        for person in people:
            await person.wait_until(lambda p=person: len(p.participants) == 2)
        assert host.me is not None and sam.me is not None
        seats = {host.me["id"], sam.me["id"]}
        # The host mutes Sam, removes (bans) Kim, and locks the circle; Sam raises a hand:
        # all of it must survive the owner's death.
        await host.send({"type": "mute_participant", "participant_id": sam.me["id"]})
        await sam.wait_until(lambda: sam.participants[sam.me["id"]]["muted"] is True)
        kim = ScriptedParticipant(a.ws_url, link_token(circle["join_url"]), "Kim", None)
        await kim.connect()
        await kim.join()
        assert kim.me is not None
        await host.send({"type": "remove", "participant_id": kim.me["id"]})
        await kim.wait_until(lambda: kim.closed_code is not None)
        await host.send({"type": "raise_hand"})
        await host.send({"type": "set_lock", "locked": True})
        await host.wait_until(
            lambda: host.room is not None and host.room["locked"] and host.room["hand_queue"]
        )
        await kim.close()
        owner = cluster.owner(circle["id"])
        assert owner is not None
        survivors = [n for n in cluster.nodes if n.extra_env["HEARTH_NODE_ID"] != owner]
        killed_at = time.monotonic()
        cluster.node(owner).kill()

        # Both come back through a surviving node's door, by seat token.
        joined = [await rejoin(person, survivors[0].ws_url) for person in people]
        back_after = time.monotonic() - killed_at
        new_owner = cluster.owner(circle["id"])
        assert new_owner is not None and new_owner != owner
        assert {j["you"]["id"] for j in joined} == seats  # type: ignore[index]
        assert host.me is not None and host.me["role"] == "host"
        assert sam.participants[sam.me["id"]]["muted"] is True
        assert host.room is not None and host.room["locked"] is True
        assert host.room["hand_queue"] == [host.me["id"]]
        assert host.moderation is not None
        assert [b["display_name"] for b in host.moderation["bans"]] == ["Kim"]
        # Kim's browser is still banned on the new node.
        again = ScriptedParticipant(
            survivors[1].ws_url, link_token(circle["join_url"]), "Kim again", None
        )
        again.device_key = kim.device_key
        await again.connect()
        assert (await again.join(expect="error"))["code"] == "banned"
        await again.close()
        await sam.send({"type": "mute", "muted": False})
        # Sam was muted by a host: unmuting is Sam's own choice and allowed.
        await sam.wait_until(lambda: sam.participants[sam.me["id"]]["muted"] is False)
        for person in people:
            await person.wait_connected(timeout=15)
        heard_after = time.monotonic() - killed_at
        await listen(1.0)
        await hear_each_other([(host, [SAM_HZ], [HOST_HZ]), (sam, [HOST_HZ], [SAM_HZ])])
        print(f"failover: joined again after {back_after:.1f} s, audio after {heard_after:.1f} s")
    finally:
        for person in people:
            await person.close()


async def test_draining_the_owner_moves_its_circle_while_people_talk(cluster: Cluster) -> None:
    a = cluster.nodes[0]
    circle = a.create_circle("Drain")
    host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    sam = ScriptedParticipant(a.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
    people = [host, sam]
    try:
        for person in people:
            await person.connect()
            await person.join(muted=False)
        for person in people:
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        assert host.me is not None and sam.me is not None
        seats = {host.me["id"], sam.me["id"]}
        owner = cluster.owner(circle["id"])
        assert owner is not None
        draining = cluster.node(owner)
        # People reach the owner's own door here, so they see its close and come back
        # through another node (behind a load balancer, the same address would do).
        if owner != "node-a":
            for person in people:
                await rejoin(person, draining.ws_url)
        other = next(n for n in cluster.nodes if n is not draining)
        assert draining.process is not None
        draining.process.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        for person in people:
            await person.wait_until(lambda p=person: p.closed_code is not None, timeout=15)
        assert {p.closed_code for p in people} == {1012}
        joined = await asyncio.gather(*(rejoin(person, other.ws_url) for person in people))
        assert {j["you"]["id"] for j in joined} == seats  # type: ignore[index]
        for person in people:
            await person.wait_connected(timeout=15)
        gap = time.monotonic() - sent_at
        new_owner = cluster.owner(circle["id"])
        assert new_owner is not None and new_owner != owner
        await listen(1.0)
        await hear_each_other([(host, [SAM_HZ], [HOST_HZ]), (sam, [HOST_HZ], [SAM_HZ])])
        print(f"drain: audio back {gap:.2f} s after SIGTERM (owner {owner} -> {new_owner})")
        assert draining.process.wait(timeout=30) == 0
    finally:
        for person in people:
            await person.close()


def circle_info(node: ServerProcess, token: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{node.base_url}/circle-info",
        data=json.dumps({"token": token}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


async def test_every_node_answers_the_same_and_an_admin_drains_a_node_through_another(
    cluster: Cluster,
) -> None:
    a = cluster.nodes[0]
    circle = a.create_circle("Same answer everywhere")
    host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", None)
    try:
        await host.connect()
        await host.join()
        owner = cluster.owner(circle["id"])
        assert owner is not None
        # The join page's answer names the host present, whichever node is asked.
        token = link_token(circle["join_url"])
        answers = [circle_info(node, token) for node in cluster.nodes]
        assert all(answer == answers[0] for answer in answers), answers
        assert answers[0]["open"] is True and answers[0]["hosts"] == ["Ana"]
        # The registry, from every node.
        listed = [node.api("GET", "/api/v1/nodes") for node in cluster.nodes]
        assert all(status == 200 for status, _ in listed)
        ids = [sorted(n["id"] for n in body["nodes"]) for _, body in listed]
        assert ids == [["node-a", "node-b", "node-c"]] * 3
        # Moderation settings changed through a node that does not run the circle reach it.
        other = next(n for n in cluster.nodes if n.extra_env["HEARTH_NODE_ID"] != owner)
        status, settings = other.api("GET", f"/api/v1/circles/{circle['id']}/moderation")
        assert status == 200
        settings.pop("passcode_set", None)
        settings["lobby"] = not settings["lobby"]
        status, _ = other.api("PUT", f"/api/v1/circles/{circle['id']}/moderation", settings)
        assert status == 200
        await host.wait_until(
            lambda: host.room is not None and host.room.get("lobby") == settings["lobby"]
        )
        # An admin drains the owner through another node: the host is moved.
        status, body = other.api("POST", f"/api/v1/nodes/{owner}/drain")
        assert (status, body) == (202, {"id": owner, "draining": True})
        await host.wait_until(lambda: host.closed_code is not None, timeout=15)
        assert host.closed_code == 1012
        await rejoin(host, other.ws_url)
        new_owner = cluster.owner(circle["id"])
        assert new_owner is not None and new_owner != owner
        drained = [n for n in registered(cluster).values() if n["draining"]]
        assert [n["node_id"] for n in drained] == [owner]
        status, body = other.api("POST", "/api/v1/nodes/no-such-node/drain")
        assert status == 404 and body["error"]["code"] == "not_found"
    finally:
        await host.close()


async def test_an_owner_paused_past_its_lease_loses_the_circle_and_its_people_follow(
    cluster: Cluster,
) -> None:
    a = cluster.nodes[0]
    circle = a.create_circle("Paused owner")
    host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", None)
    await host.connect()
    await host.join()
    owner = cluster.owner(circle["id"])
    assert owner is not None
    paused = cluster.node(owner)
    door = next(n for n in cluster.nodes if n is not paused)
    if paused is a:
        await rejoin(host, door.ws_url)  # through a door that stays awake
    sam = ScriptedParticipant(door.ws_url, link_token(circle["join_url"]), "Sam", None)
    kim = ScriptedParticipant(door.ws_url, link_token(circle["join_url"]), "Kim", None)
    people = [host, sam, kim]
    try:
        await sam.connect()
        await sam.join()
        assert host.me is not None and sam.me is not None
        seats = {host.me["id"], sam.me["id"]}
        assert paused.process is not None
        paused.process.send_signal(signal.SIGSTOP)  # a long pause: GC, a VM migrated...
        try:
            await wait_for(lambda: cluster.owner(circle["id"]) is None, timeout=20)
            # Kim arrives meanwhile: the circle is placed on a node that is awake, which
            # loads it from the database with Ana's and Sam's seats kept for them.
            await kim.connect()
            joined = await kim.join()
            names = {p["display_name"] for p in joined["participants"]}
            assert names == {"Ana", "Sam", "Kim"}
            new_owner = cluster.owner(circle["id"])
            assert new_owner is not None and new_owner != owner
        finally:
            paused.process.send_signal(signal.SIGCONT)
        # The old owner wakes, finds its lease gone, and lets its people go (1012); they
        # come back to the new owner with their seats. It writes nothing more: the fence.
        for person in (host, sam):
            await person.wait_until(lambda p=person: p.closed_code is not None, timeout=15)
            assert person.closed_code == 1012
        for person in (host, sam):
            await rejoin(person, door.ws_url)
        assert {host.me["id"], sam.me["id"]} == seats
        assert cluster.owner(circle["id"]) == new_owner
        await kim.wait_until(lambda: len(kim.participants) == 3)
        assert "lease" in paused.log_text()
    finally:
        for person in people:
            await person.close()


async def test_people_bridged_through_a_door_count_once_against_the_unjoined_limit(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    # Three sockets per address may wait to join; seven people come in one after the
    # other through a door that is not the owner. Each is counted (and let go) by the door
    # under their own address, not again by the owner under the door's.
    cluster = Cluster(
        tmp_path, fresh_postgres_url, extra_env={"HEARTH_UNJOINED_SOCKETS_PER_ADDRESS": "3"}
    )
    people: list[ScriptedParticipant] = []
    try:
        cluster.start()
        a = cluster.nodes[0]
        circle = a.create_circle("Many through one door")
        host = ScriptedParticipant(a.ws_url, link_token(circle["host_url"]), "Ana", None)
        people.append(host)
        await host.connect()
        await host.join()
        owner = cluster.owner(circle["id"])
        door = next(n for n in cluster.nodes if n.extra_env["HEARTH_NODE_ID"] != owner)
        for i in range(7):
            person = ScriptedParticipant(door.ws_url, link_token(circle["join_url"]), f"P{i}", None)
            people.append(person)
            await person.connect()
            await person.join()
        await host.wait_until(lambda: len(host.participants) == 8)
    finally:
        for person in people:
            await person.close()
        cluster.stop()
