"""Moderation over the real protocol, with real aiortc peers and a real server process."""

from __future__ import annotations

from pathlib import Path

from tests.support import hearing
from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

# Whether a voice gets through is what moderation decides; how cleanly is the audio path's
# business (tests/integration/test_hearing_each_other.py), and the CPU here is shared.
PRESENT = 0.1


def assert_hears(
    person: ScriptedParticipant, since: float, heard: list[float], not_heard: list[float]
) -> None:
    hearing.assert_hears(person, since, heard, not_heard, heard_above=PRESENT, check_gaps=False)


async def seated(
    server: ServerProcess, circle: dict[str, str], *people: tuple[str, float | None, bool]
) -> list[ScriptedParticipant]:
    """Join each (name, tone, is_host) in order, unmuted, with audio connected."""
    joined = []
    for name, tone, host in people:
        link = circle["host_url"] if host else circle["join_url"]
        person = ScriptedParticipant(server.ws_url, link_token(link), name, tone)
        await person.connect()
        await person.join(muted=False)
        joined.append(person)
    for person in joined:
        await person.start_audio()
    for person in joined:
        await person.wait_connected()
        await person.wait_until(lambda p=person: len(p.participants) == len(joined))
    return joined


async def test_in_hand_raise_mode_only_the_person_with_the_floor_is_heard(
    server: ServerProcess,
) -> None:
    circle = server.create_circle(title="Hand raise")
    people = await seated(
        server, circle, ("Ana", HOST_HZ, True), ("Sam", SAM_HZ, False), ("Kim", None, False)
    )
    ana, sam, kim = people
    try:
        await ana.send({"type": "set_speaking_mode", "mode": "hand_raise"})
        await kim.wait_until(
            lambda: kim.room is not None and kim.room["speaking_mode"] == "hand_raise"
        )
        await listen(0.6)
        since = await listen(2.0)
        # Sam is unmuted and sending, but has no floor: the server drops it.
        assert_hears(kim, since, heard=[HOST_HZ], not_heard=[SAM_HZ])

        await sam.send({"type": "raise_hand"})
        await ana.wait_until(
            lambda: ana.room is not None and ana.room["hand_queue"] == [sam.me["id"]]
        )  # type: ignore[index]
        await ana.send({"type": "next_speaker"})
        await kim.wait_until(lambda: kim.room is not None and kim.room["floor"] == sam.me["id"])  # type: ignore[index]
        assert kim.participants[sam.me["id"]]["has_floor"] is True  # type: ignore[index]
        await listen(0.6)
        since = await listen(2.0)
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[])

        await ana.send({"type": "next_speaker"})  # empty queue: the turn just ends
        await kim.wait_until(lambda: kim.room is not None and kim.room["floor"] is None)
        await listen(0.6)
        since = await listen(2.0)
        assert_hears(kim, since, heard=[HOST_HZ], not_heard=[SAM_HZ])

        # A participant's host command is refused and changes nothing.
        mark = len(sam.messages)
        await sam.send({"type": "give_floor", "participant_id": sam.me["id"]})  # type: ignore[index]
        refused = await sam.wait_for("error", after=mark)
        assert (refused["code"], refused["ref"]) == ("forbidden", "give_floor")
    finally:
        for person in people:
            await person.close()


async def test_a_removed_person_cannot_rejoin_under_a_new_name(server: ServerProcess) -> None:
    circle = server.create_circle(title="Removal")
    ana, sam = await seated(server, circle, ("Ana", None, True), ("Sam", None, False))
    again: ScriptedParticipant | None = None
    try:
        sam_id = sam.me["id"]  # type: ignore[index]
        await ana.send({"type": "remove", "participant_id": sam_id})
        removed = await sam.wait_for("error")
        assert removed["code"] == "removed"
        await sam.wait_until(lambda: sam.closed_code is not None)
        assert sam.closed_code == 4403
        await ana.wait_until(lambda: sam_id not in ana.participants)
        assert ana.moderation is not None and [
            b["display_name"] for b in ana.moderation["bans"]
        ] == ["Sam"]

        # Same browser (device key), a new name and no seat token: refused.
        again = ScriptedParticipant(
            server.ws_url, link_token(circle["join_url"]), "Totally New", None
        )
        again.device_key = sam.device_key
        await again.connect()
        refused = await again.join(expect="error")
        assert refused["code"] == "banned"
        await again.wait_until(lambda: again is not None and again.closed_code is not None)
        assert again.closed_code == 4403

        # The audit log has it, for admins.
        status, audit = server.api("GET", f"/api/v1/circles/{circle['id']}/audit")
        assert status == 200
        assert [
            (e["action"], e["actor"]["label"], e["target"]["label"]) for e in audit["entries"]
        ] == [("remove", "Ana", "Sam")]
    finally:
        for person in (ana, sam, again):
            if person is not None:
                await person.close()


async def test_sigkill_mid_circle_the_state_comes_back_and_audio_flows_again(
    tmp_path: Path,
) -> None:
    server = ServerProcess(data_dir=tmp_path / "data")
    server.start()
    people: list[ScriptedParticipant] = []
    try:
        circle = server.create_circle(title="Crash")
        people = await seated(
            server, circle, ("Ana", HOST_HZ, True), ("Sam", SAM_HZ, False), ("Kim", KIM_HZ, False)
        )
        ana, sam, kim = people
        kim_id, sam_id = kim.me["id"], sam.me["id"]  # type: ignore[index]
        await ana.send({"type": "set_speaking_mode", "mode": "hand_raise"})
        await ana.send({"type": "set_lock", "locked": True})
        await sam.send({"type": "raise_hand"})
        await ana.send({"type": "give_floor", "participant_id": kim_id})
        await ana.wait_until(
            lambda: (
                ana.room is not None
                and ana.room["floor"] == kim_id
                and ana.room["hand_queue"] == [sam_id]
                and ana.room["locked"]
            )
        )

        server.kill()  # SIGKILL: no goodbye to anyone
        server.start()
        for person in people:
            await person.reconnect()
        for person in people:
            await person.wait_connected()

        for person in people:
            assert person.me is not None and person.me["id"] in (ana.me["id"], sam_id, kim_id)  # type: ignore[index]
            assert person.room is not None
            assert person.room["speaking_mode"] == "hand_raise"
            assert person.room["floor"] == kim_id
            assert person.room["hand_queue"] == [sam_id]
            assert person.room["locked"] is True
        assert ana.me is not None and ana.me["role"] == "host"
        await ana.wait_until(
            lambda: (
                all(p["connection"] == "connected" for p in ana.participants.values())
                and len(ana.participants) == 3
            )
        )
        await listen(1.0)
        since = await listen(2.0)
        # Kim has the floor, Ana hosts; Sam is still only waiting with a raised hand.
        assert_hears(sam, since, heard=[HOST_HZ, KIM_HZ], not_heard=[SAM_HZ])
        assert_hears(ana, since, heard=[KIM_HZ], not_heard=[SAM_HZ, HOST_HZ])

        # Locked survived too: nobody new gets in.
        late = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Late", None)
        await late.connect()
        refused = await late.join(expect="error")
        assert refused["code"] == "circle_locked"
        await late.close()
    finally:
        for person in people:
            await person.close()
        server.stop()
