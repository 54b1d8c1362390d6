"""What the join page may learn before joining (POST /circle-info): the circle and its hosts
while it is open, and for an unknown link exactly what a closed circle gets."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


def circle_info(server: ServerProcess, body: bytes) -> tuple[int, dict[str, Any], str]:
    request = urllib.request.Request(
        f"{server.base_url}/circle-info",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read()), response.headers["Cache-Control"]


def ask(server: ServerProcess, token: object) -> dict[str, Any]:
    status, answer, cache = circle_info(server, json.dumps({"token": token}).encode())
    assert (status, cache) == (200, "no-store")
    return answer


async def test_join_page_learns_title_and_hosts_only_while_the_circle_is_open(
    server: ServerProcess,
) -> None:
    circle = server.create_circle(title="Sunday circle")
    join_token = link_token(circle["join_url"])
    # Before the host opens it: the same answer as a link that does not exist.
    assert ask(server, join_token) == ask(server, "no-such-link") == {"open": False}
    assert circle_info(server, b"{not json")[1] == {"open": False}
    assert ask(server, 42) == {"open": False}

    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    await host.connect()
    try:
        await host.join(muted=True)
        answer = ask(server, join_token)
        assert answer["open"] is True
        assert answer["circle"]["title"] == "Sunday circle"
        assert answer["hosts"] == ["Ana"]
        assert answer["role"] == "participant"
        assert ask(server, link_token(circle["host_url"]))["role"] == "host"
        # Nothing about who else is there, and no address of anyone.
        assert set(answer) == {"open", "circle", "hosts", "role", "passcode_required"}
        assert answer["passcode_required"] is False
    finally:
        await host.close()


async def test_join_page_asks_for_a_passcode_only_where_the_link_needs_one(
    server: ServerProcess,
) -> None:
    circle = server.create_circle(title="Quiet circle")
    status, settings = server.api("GET", f"/api/v1/circles/{circle['id']}/moderation")
    assert status == 200
    status, _ = server.api(
        "PUT", f"/api/v1/circles/{circle['id']}/moderation", {**settings, "passcode": "olive"}
    )
    assert status == 200
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    await host.connect()
    try:
        await host.join(muted=True)
        assert ask(server, link_token(circle["join_url"]))["passcode_required"] is True
        # Host links are never held by a passcode, so the host's page does not ask.
        assert ask(server, link_token(circle["host_url"]))["passcode_required"] is False
    finally:
        await host.close()
