"""Each limit as a disruptor would hit it: a real server, real sockets, tight settings.

The server runs with small limits (set in its environment, as an operator would) so that
each one is reached in a second or two; the defaults are in the README's table.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

LIMITS = {
    "HEARTH_MESSAGE_RATE": "5",
    "HEARTH_MESSAGE_BURST": "10",
    "HEARTH_FLOOD_CLOSE_AFTER": "20",
    "HEARTH_RENAME_BURST": "2",
    "HEARTH_RENAME_EVERY_SECONDS": "60",
    "HEARTH_PASSCODE_TRIES_PER_SOCKET": "3",
    "HEARTH_PASSCODE_FREE_FAILURES": "2",
    "HEARTH_LOBBY_SIZE": "2",
    "HEARTH_LOBBY_IDLE_SECONDS": "2",
    "HEARTH_UNJOINED_SOCKETS_PER_ADDRESS": "3",
    "HEARTH_CIRCLE_INFO_RATE": "1",
    "HEARTH_CIRCLE_INFO_BURST": "5",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-limits")), extra_env=dict(LIMITS)
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
    # Whatever a disruptor did, nothing reached a traceback.
    assert "Traceback" not in process.log_text()


def settings_with(server: ServerProcess, circle_id: str, **changes: Any) -> dict[str, Any]:
    path = f"/api/v1/circles/{circle_id}/moderation"
    status, current = server.api("GET", path)
    assert status == 200
    status, stored = server.api("PUT", path, {**current, **changes})
    assert status == 200, stored
    return dict(stored)


async def person(server: ServerProcess, url: str, name: str) -> ScriptedParticipant:
    someone = ScriptedParticipant(server.ws_url, link_token(url), name, None)
    await someone.connect()
    return someone


async def first_of(
    someone: ScriptedParticipant, kinds: tuple[str, ...], *, after: int
) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [m for m in someone.messages[after:] if m["type"] in kinds]

    await someone.wait_until(lambda: bool(found()))
    return found()[0]


async def test_a_flood_of_messages_is_refused_then_the_socket_is_closed(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    host = await person(server, circle["host_url"], "Ana")
    sam = await person(server, circle["join_url"], "Sam")
    try:
        await host.join()
        await sam.join()
        mark = len(host.messages)
        for i in range(200):
            await sam.send({"type": "mute", "muted": i % 2 == 0})
        await sam.wait_until(lambda: sam.closed_code is not None)
        assert sam.closed_code == 4429
        codes = {m.get("code") for m in sam.messages if m["type"] == "error"}
        assert codes == {"rate_limited"}
        await asyncio.sleep(0.5)
        updates = [m for m in host.messages[mark:] if m["type"] == "participant_updated"]
        # The burst passed; the other 190 toggles never reached the host (or the database).
        assert len(updates) <= 12
        # The host's own socket is untouched.
        await host.send({"type": "mute", "muted": True})
        await host.wait_for("participant_updated", after=len(host.messages) - 1)
        assert host.closed_code is None
    finally:
        await sam.close()
        await host.close()


async def test_wrong_passcodes_close_the_socket_then_cost_a_growing_wait(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    stored = settings_with(server, circle["id"], passcode="4711")
    # The API never gives the passcode back, only that there is one.
    assert stored["passcode_set"] is True and "passcode" not in stored
    assert "4711" not in json.dumps(server.api("GET", f"/api/v1/circles/{circle['id']}/moderation"))
    host = await person(server, circle["host_url"], "Ana")
    guesser = await person(server, circle["join_url"], "Guess")
    try:
        await host.join()
        codes = []
        for guess in ("0000", "0001", "0002"):
            mark = len(guesser.messages)
            await guesser.send(
                {"type": "join", "token": guesser.token, "display_name": "G", "passcode": guess}
            )
            codes.append((await guesser.wait_for("error", after=mark))["code"])
        await guesser.wait_until(lambda: guesser.closed_code is not None)
        assert codes == ["passcode_required"] * 3
        assert guesser.closed_code == 4429
        assert guesser.messages[-1]["code"] == "too_many_attempts"

        # The same address now waits before a passcode is even checked, the right one too.
        again = await person(server, circle["join_url"], "Kim")
        try:
            refused = await again.join(expect="error", passcode="4711")
            assert refused["code"] == "too_many_attempts"
            assert 1 <= refused["retry_after"] <= 2
            await asyncio.sleep(refused["retry_after"] + 0.2)
            joined = await again.join(passcode="4711")
            assert joined["you"]["display_name"] == "Kim"
        finally:
            await again.close()
    finally:
        await guesser.close()
        await host.close()


async def test_renames_are_limited_and_each_is_in_the_audit_log(server: ServerProcess) -> None:
    circle = server.create_circle()
    settings_with(server, circle["id"], allow_rename=True)
    host = await person(server, circle["host_url"], "Ana")
    sam = await person(server, circle["join_url"], "Sam")
    try:
        await host.join()
        await sam.join()
        answers = []
        for name in ("Sam B", "Sammy", "S"):
            mark = len(sam.messages)
            await sam.send({"type": "rename", "display_name": name})
            reply = await first_of(sam, ("participant_updated", "error"), after=mark)
            answers.append(reply.get("code") or reply["participant"]["display_name"])
        assert answers == ["Sam B", "Sammy", "rate_limited"]
        status, audit = server.api("GET", f"/api/v1/circles/{circle['id']}/audit")
        assert status == 200
        renames = [e["detail"] for e in audit["entries"] if e["action"] == "rename"]
        assert renames == ["Sam -> Sam B", "Sam B -> Sammy"]
    finally:
        await sam.close()
        await host.close()


async def test_the_lobby_is_bounded_and_idle_places_are_given_up(server: ServerProcess) -> None:
    circle = server.create_circle()
    settings_with(server, circle["id"], lobby=True)
    host = await person(server, circle["host_url"], "Ana")
    waiting: list[ScriptedParticipant] = []
    try:
        await host.join()
        for i in range(3):
            # One at a time: sockets that have not joined yet are bounded per address.
            waiting.append(await person(server, circle["join_url"], f"W{i}"))
            if i < 2:
                await waiting[i].join(expect="waiting")
        full = await waiting[2].join(expect="error")
        assert full["code"] == "lobby_full"
        assert waiting[2].closed_code is None  # may knock again later
        # Nobody admits them: after the lobby wait (2 s here) their places are given up.
        for w in waiting[:2]:
            await w.wait_until(lambda w=w: w.closed_code is not None, timeout=10)
            assert w.closed_code == 4431
            assert w.messages[-1]["code"] == "lobby_timeout"
        await host.wait_until(lambda: host.moderation is not None and not host.moderation["lobby"])
        # Room again: the third knocks and waits.
        await waiting[2].join(expect="waiting")
    finally:
        for w in waiting:
            await w.close()
        await host.close()


async def test_sockets_that_never_join_are_bounded_per_address(server: ServerProcess) -> None:
    circle = server.create_circle()
    idle = [await person(server, circle["join_url"], f"I{i}") for i in range(3)]
    extra = await person(server, circle["join_url"], "Extra")
    try:
        await extra.wait_until(lambda: extra.closed_code is not None)
        assert extra.closed_code == 4430
        assert extra.messages[-1]["code"] == "too_many_connections"
        # A socket that closes or joins no longer counts: more may open.
        await idle[0].close()
        await asyncio.sleep(0.2)
        host = await person(server, circle["host_url"], "Ana")
        await host.join()
        late = await person(server, circle["join_url"], "Late")
        await late.join()
        await late.close()
        await host.close()
    finally:
        for i in idle:
            await i.close()
        await extra.close()


async def test_a_name_posing_as_the_host_is_refused_and_real_names_are_not(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    host = await person(server, circle["host_url"], "Ana")
    someone = await person(server, circle["join_url"], "\u0410na")  # Cyrillic A
    try:
        await host.join()
        refused = await someone.join(expect="error")
        assert refused["code"] == "name_confusable"
        for name, code in (
            ("A\u200bna", "invalid_display_name"),
            ("\u3164", "invalid_display_name"),
        ):
            mark = len(someone.messages)
            await someone.send({"type": "join", "token": someone.token, "display_name": name})
            assert (await someone.wait_for("error", after=mark))["code"] == code
        persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
        someone.name = persian
        joined = await someone.join()
        assert joined["you"]["display_name"] == persian
    finally:
        await someone.close()
        await host.close()


async def test_the_websocket_refuses_other_sites_before_the_upgrade(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as http_session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http_session.ws_connect(server.ws_url, origin="https://evil.example")
        assert refused.value.status == 403
        # The page's own origin and a program without Origin are let in.
        for origin in (server.base_url, None):
            ws = await http_session.ws_connect(server.ws_url, origin=origin)
            await ws.close()


@pytest.mark.parametrize("field", ["token", "passcode", "device_key", "seat_token"])
async def test_a_lone_surrogate_in_any_field_is_invalid_not_internal(
    server: ServerProcess, field: str
) -> None:
    circle = server.create_circle()
    guest = await person(server, circle["join_url"], "Sam")
    try:
        message = {"type": "join", "token": guest.token, "display_name": "Sam", field: "\ud800x"}
        await guest.send_raw(json.dumps(message))  # json escapes it as \ud800, as an attacker may
        error = await guest.wait_for("error")
        assert (error["code"], error["ref"]) == ("invalid_message", "join")
        assert field in error["message"]
    finally:
        await guest.close()


def post_circle_info(server: ServerProcess, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.base_url}/circle-info", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_circle_info_takes_any_body_and_a_flood_is_refused(server: ServerProcess) -> None:
    time.sleep(5)  # a full bucket (1 a second here, 5 at once)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert post_circle_info(server, deep) == (200, {"open": False})
    nested = b'{"token": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert post_circle_info(server, nested) == (200, {"open": False})
    surrogate = b'{"token": "\\ud800"}'
    assert post_circle_info(server, surrogate) == (200, {"open": False})
    started = time.monotonic()
    answers = [post_circle_info(server, b'{"token": "nope"}')[0] for _ in range(8)]
    assert answers.count(429) >= 2 and set(answers) == {200, 429}
    # Each refusal came after a pause, so a flooder waiting for answers is slowed down.
    assert time.monotonic() - started >= answers.count(429) * 0.9


def test_an_authorization_header_with_bytes_that_are_not_utf8_is_a_401(
    server: ServerProcess,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("GET", "/api/v1/circles")
        connection.putheader("Authorization", b"Bearer \xff\xfe\xfa")
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 401
    assert body["error"]["code"] == "unauthorized"
