"""What a confused or hostile client gets back: a stable code, and nothing changes."""

from __future__ import annotations

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


async def test_an_unknown_link_is_answered_like_a_closed_circle(server: ServerProcess) -> None:
    scheduled = server.create_circle(title="Host not here yet")
    answers = []
    for token in ("no-such-link", link_token(scheduled["join_url"])):
        guest = ScriptedParticipant(server.ws_url, token, "Sam", None)
        await guest.connect()
        try:
            await guest.send({"type": "join", "token": token, "display_name": "Sam"})
            error = await guest.wait_for("error")
            await guest.wait_until(lambda g=guest: g.closed_code is not None)
            answers.append((error["code"], error["message"], guest.closed_code))
        finally:
            await guest.close()
    assert answers[0] == answers[1] == ("circle_not_open", answers[0][1], 4404)


async def test_confused_messages_get_errors_and_the_connection_stays(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    await host.connect()
    try:
        await host.send({"type": "mute", "muted": False})
        assert (await host.wait_for("error"))["code"] == "not_joined"
        mark = len(host.messages)
        await host.send_raw("{not json")
        assert (await host.wait_for("error", after=mark))["code"] == "invalid_json"
        mark = len(host.messages)
        await host.send({"type": "dance"})
        error = await host.wait_for("error", after=mark)
        assert (error["code"], error["ref"]) == ("unknown_type", "dance")
        mark = len(host.messages)
        await host.send({"type": "join", "token": host.token, "display_name": "\u202e"})
        assert (await host.wait_for("error", after=mark))["code"] == "invalid_display_name"
        # Still connected, and a proper join still works.
        await host.join(muted=True)
        mark = len(host.messages)
        await host.send({"type": "join", "token": host.token, "display_name": "Ana"})
        assert (await host.wait_for("error", after=mark))["code"] == "already_joined"
        mark = len(host.messages)
        await host.send({"type": "offer", "sdp": "v=0\r\nthis is not sdp"})
        assert (await host.wait_for("error", after=mark))["code"] == "invalid_sdp"
        mark = len(host.messages)
        await host.send({"type": "mute_participant", "participant_id": "ghost"})
        assert (await host.wait_for("error", after=mark))["code"] == "unknown_participant"
    finally:
        await host.close()


async def test_a_participant_sending_a_host_command_changes_nothing(server: ServerProcess) -> None:
    circle = server.create_circle()
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", None)
    try:
        await host.connect()
        await host.join(muted=False)
        await sam.connect()
        await sam.join(muted=False)
        assert host.me is not None
        mark = len(sam.messages)
        await sam.send({"type": "mute_participant", "participant_id": host.me["id"]})
        error = await sam.wait_for("error", after=mark)
        assert (error["code"], error["ref"]) == ("forbidden", "mute_participant")
        # A later self-mute by Sam arrives at the host; no mute of the host came before it.
        await sam.send({"type": "mute", "muted": True})
        update = await host.wait_for("participant_updated")
        assert update["participant"]["display_name"] == "Sam"
        assert host.participants[host.me["id"]]["muted"] is False
    finally:
        await sam.close()
        await host.close()


async def test_leaving_tells_the_others(server: ServerProcess) -> None:
    circle = server.create_circle()
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", None)
    try:
        await host.connect()
        await host.join()
        await sam.connect()
        await sam.join()
        await host.wait_until(lambda: len(host.participants) == 2)
        await sam.send({"type": "leave"})
        await sam.wait_until(lambda: sam.closed_code is not None)
        assert sam.closed_code == 1000
        left = await host.wait_for("participant_left")
        assert sam.me is not None and left["participant_id"] == sam.me["id"]
    finally:
        await sam.close()
        await host.close()
