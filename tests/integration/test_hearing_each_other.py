"""Three real aiortc peers in one circle, each humming its own tone through the server."""

from __future__ import annotations

from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import circle_people
from tests.support.server import ServerProcess


async def test_everyone_hears_the_others_but_not_themselves_and_a_host_mute_is_enforced(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    trio = (("Ana", HOST_HZ), ("Sam", SAM_HZ), ("Kim", KIM_HZ))
    async with circle_people(server.ws_url, circle, *trio) as people:
        host, sam, kim = people
        for person in people:
            await person.connect()
            joined = await person.join(muted=False)
            assert joined["circle"]["status"] == "open"
        assert host.me is not None and host.me["role"] == "host"
        assert sam.me is not None and sam.me["role"] == "participant"
        for person in people:
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        for person in people:
            await person.wait_until(lambda p=person: len(p.participants) == 3)

        await listen(1.0)  # let the first packets settle
        since = await listen(2.0)
        assert_hears(host, since, heard=[SAM_HZ, KIM_HZ], not_heard=[HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ, KIM_HZ], not_heard=[SAM_HZ])
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])

        kim_id = kim.me["id"] if kim.me else ""
        await host.send({"type": "mute_participant", "participant_id": kim_id})
        for person in people:
            await person.wait_until(lambda p=person: p.participants[kim_id]["muted"] is True)
        update = await sam.wait_for("participant_updated")
        assert update["by"] == host.me["id"]

        frames_before = kim.tone.frames_sent if kim.tone else 0
        await listen(0.5)
        since = await listen(2.0)
        # Kim's browser keeps sending; the server drops it.
        assert kim.tone is not None and kim.tone.frames_sent > frames_before + 50
        assert_hears(host, since, heard=[SAM_HZ], not_heard=[KIM_HZ, HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[KIM_HZ, SAM_HZ])
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])
