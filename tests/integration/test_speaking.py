"""Pages are told who is speaking; a muted microphone never shows as speaking."""

from __future__ import annotations

import asyncio

from tests.support.peer import ScriptedParticipant, seat_with_audio
from tests.support.server import ServerProcess, link_token


async def test_listeners_are_told_who_speaks_and_never_about_a_muted_voice(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", 500.0)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", 850.0)
    kim = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Kim", None)
    people = [host, sam, kim]
    try:
        # Sam hums into a muted microphone.
        await seat_with_audio((host, False), (sam, True), (kim, True))
        assert host.me is not None and sam.me is not None
        update = await kim.wait_for("speaking", timeout=10)
        assert update["speakers"] == [host.me["id"]]
        assert 1 <= update["levels"][host.me["id"]] <= 10
        await asyncio.sleep(1.5)
        said = [m for m in kim.messages if m["type"] == "speaking"]
        assert all(sam.me["id"] not in m["speakers"] for m in said)
        # Coalesced: a steady speaker does not cause a stream of updates.
        assert len(said) <= 3
    finally:
        for person in people:
            await person.close()
