"""Moderation settings changed through the admin API reach a live circle at once, and a new
series can be protected before its first meeting. Real server processes (one, and a front
with two workers: the API is the front's, the circle a worker's) and aiortc peers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.hearing import HOST_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

DEFAULTS: dict[str, Any] = {
    "speaking_mode": "open",
    "lobby": False,
    "passcode": None,
    "wait_for_host": False,
    "no_host_policy": "continue",
    "allow_rename": False,
    "share_seconds": None,
    "crisis_text": "",
}


@pytest.fixture(scope="module", params=[None, 2], ids=["one-process", "two-workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-live-settings")), workers=request.param
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def put_settings(server: ServerProcess, path: str, **changes: Any) -> None:
    status, body = server.api("PUT", path, {**DEFAULTS, **changes})
    assert status == 200, body


async def test_passcode_lobby_and_speaking_mode_set_by_an_admin_apply_to_the_live_circle(
    server: ServerProcess,
) -> None:
    circle = server.create_circle(title="Changed while live")
    path = f"/api/v1/circles/{circle['id']}/moderation"
    ana = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
    kim = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Kim", None)
    try:
        for person in (ana, sam):
            await person.connect()
            await person.join(muted=False)
            await person.start_audio()
        for person in (ana, sam):
            await person.wait_connected()

        # A passcode: everyone inside stays and is told; a newcomer needs it.
        put_settings(server, path, passcode="4711")
        for person in (ana, sam):
            await person.wait_until(lambda p=person: p.room["passcode_required"])  # type: ignore[misc]
        await kim.connect()
        refused = await kim.join(expect="error")
        assert refused["code"] == "passcode_required"

        # A lobby: the newcomer with the passcode now waits, and the host sees them waiting.
        put_settings(server, path, passcode="4711", lobby=True)
        for person in (ana, sam):
            await person.wait_until(lambda p=person: p.room["lobby"])  # type: ignore[misc]
        waiting = await kim.join(expect="waiting", passcode="4711")
        assert waiting["reason"] == "lobby"
        await ana.wait_until(
            lambda: [w["display_name"] for w in (ana.moderation or {}).get("lobby", [])] == ["Kim"]
        )
        assert set(sam.participants) == {ana.me["id"], sam.me["id"]}  # type: ignore[index]

        # Hand-raise: everyone's room says so, and Sam (without the floor) is no longer heard.
        put_settings(server, path, passcode="4711", lobby=True, speaking_mode="hand_raise")
        for person in (ana, sam):
            await person.wait_until(lambda p=person: p.room["speaking_mode"] == "hand_raise")  # type: ignore[misc]
        since = await listen(2.0)
        assert_hears(ana, since, heard=[], not_heard=[SAM_HZ, HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[SAM_HZ])

        # Turning the lobby off lets the waiting in at once.
        put_settings(server, path, passcode="4711", speaking_mode="hand_raise")
        joined = await kim.wait_for("joined")
        assert joined["room"]["lobby"] is False
        status, log = server.api("GET", f"/api/v1/circles/{circle['id']}/audit")
        assert status == 200
        assert [e["action"] for e in log["entries"]].count("set_settings") == 4
    finally:
        for person in (ana, sam, kim):
            await person.close()


async def test_a_new_series_is_protected_from_its_first_meeting(server: ServerProcess) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    status, series = server.api(
        "POST",
        "/api/v1/series",
        {
            "title": "First meeting",
            "starts_at": starts.isoformat(),
            "timezone": "Europe/Berlin",
            "duration_minutes": 60,
            "rrule": "FREQ=WEEKLY",
        },
    )
    assert status == 201, series
    status, listed = server.api("GET", f"/api/v1/series/{series['id']}/occurrences")
    assert status == 200
    first = listed["occurrences"][0]["id"]
    # Nobody has opened it yet; its settings are the series' and can be set now, either way.
    put_settings(server, f"/api/v1/circles/{first}/moderation", passcode="olive")
    status, seen = server.api("GET", f"/api/v1/series/{series['id']}/moderation")
    assert (status, seen["passcode_set"]) == (200, True)
    put_settings(server, f"/api/v1/series/{series['id']}/moderation", passcode="olive", lobby=True)
    status, seen = server.api("GET", f"/api/v1/circles/{first}/moderation")
    assert (status, seen["lobby"]) == (200, True)
    status, _ = server.api("GET", "/api/v1/series/no-such-series/moderation")
    assert status == 404
    status, _ = server.api("GET", f"/api/v1/circles/{series['id']}-12/moderation")
    assert status == 404

    ana = ScriptedParticipant(
        server.ws_url, link_token(series["host_links"][0]["url"]), "Ana", None
    )
    sam = ScriptedParticipant(server.ws_url, link_token(series["join_url"]), "Sam", None)
    try:
        await ana.connect()
        assert (await ana.join())["room"]["passcode_required"] is True
        await sam.connect()
        assert (await sam.join(expect="error"))["code"] == "passcode_required"
        assert (await sam.join(expect="waiting", passcode="olive"))["reason"] == "lobby"
    finally:
        await ana.close()
        await sam.close()
