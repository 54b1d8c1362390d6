"""What the page needs to be honest (issue 14): a person taking their seat back comes back
muted, their "I need support" signal is confirmed to them and restored on a resume, and the
crisis panel's text is the series' own or else the deployment's (HEARTH_CRISIS_TEXT).
Real server process, scripted clients over the real WebSocket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

DEPLOYMENT_CRISIS = "Call 112, or the Telefonseelsorge on 0800 111 0 111 (free, day and night)."

SETTINGS: dict[str, Any] = {
    "speaking_mode": "open",
    "lobby": False,
    "passcode": None,
    "wait_for_host": False,
    "no_host_policy": "continue",
    "allow_rename": False,
    "share_seconds": None,
    "crisis_text": "",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-honest")),
        extra_env={"HEARTH_CRISIS_TEXT": DEPLOYMENT_CRISIS},
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_a_resumed_seat_comes_back_muted_and_with_its_support_signal(
    server: ServerProcess,
) -> None:
    circle = server.create_circle(title="Coming back")
    ana = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", None)
    try:
        await ana.connect()
        await ana.join(muted=True)
        await sam.connect()
        joined = await sam.join(muted=False)
        assert joined["you"]["muted"] is False
        assert joined["needs_support"] is False

        # The signal is confirmed to the person who sent it, and only then shown as sent.
        mark = len(sam.messages)
        await sam.send({"type": "need_support", "active": True})
        confirmed = await sam.wait_for("support_updated", after=mark)
        assert confirmed["active"] is True
        seat_id = sam.me["id"]  # type: ignore[index]
        await ana.wait_until(lambda: seat_id in (ana.moderation or {}).get("support", []))
        # Nobody else is told: the participant list carries no support state.
        assert "needs_support" not in ana.participants[seat_id]

        # A drop and a resume with the seat token: same seat, muted now, signal still on.
        await sam.drop()
        sam.closed_code = None
        await sam.connect()
        mark_ana = len(ana.messages)
        back = await sam.join(muted=False)
        assert back["you"]["id"] == seat_id
        assert back["you"]["muted"] is True
        assert back["needs_support"] is True
        # The others see the seat muted too (the server drops its audio).
        update = await ana.wait_for("participant_updated", after=mark_ana)
        await ana.wait_until(lambda: ana.participants[seat_id]["muted"] is True)
        assert update["participant"]["id"] == seat_id

        # Turning it off is confirmed as well.
        mark = len(sam.messages)
        await sam.send({"type": "need_support", "active": False})
        assert (await sam.wait_for("support_updated", after=mark))["active"] is False
    finally:
        for person in (ana, sam):
            await person.close()


async def test_the_crisis_text_is_the_series_own_or_the_deployment_default(
    server: ServerProcess,
) -> None:
    circle = server.create_circle(title="Crisis text")
    path = f"/api/v1/circles/{circle['id']}/moderation"
    ana = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    try:
        await ana.connect()
        joined = await ana.join(muted=True)
        # No text of its own: the deployment's.
        assert joined["room"]["crisis_text"] == DEPLOYMENT_CRISIS
        own = "Call the Samaritans on 116 123."
        status, body = server.api("PUT", path, {**SETTINGS, "crisis_text": own})
        assert status == 200, body
        await ana.wait_until(lambda: ana.room is not None and ana.room["crisis_text"] == own)
        status, seen = server.api("GET", path)
        assert (status, seen["crisis_text"]) == (200, own)
        # Emptied again (or only blanks): the deployment's text comes back.
        status, body = server.api("PUT", path, {**SETTINGS, "crisis_text": "  "})
        assert status == 200, body
        await ana.wait_until(
            lambda: ana.room is not None and ana.room["crisis_text"] == DEPLOYMENT_CRISIS
        )
        # Too long: refused with a stable code, nothing changed.
        status, body = server.api("PUT", path, {**SETTINGS, "crisis_text": "x" * 4001})
        assert (status, body["error"]["field"]) == (422, "crisis_text"), body
        status, seen = server.api("GET", path)
        assert seen["crisis_text"] == "  "
    finally:
        await ana.close()
