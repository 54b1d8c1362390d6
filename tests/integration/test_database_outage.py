"""A database outage in the middle of a circle: the circle goes on, nothing is lost.

A real server on a PostgreSQL cluster of the test's own (its own folder and port), which
the test stops for OUTAGE_SECONDS while real aiortc peers are in the circle: their audio
keeps flowing, the host's mute and removal take effect at once, a newcomer is refused at
once with storage_unavailable (and /circle-info says so with a 503), someone whose
connection dropped takes their seat back by seat token, and when the database is back
what the host did is stored (in order, nothing lost) and joins work again without anyone
doing anything.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.storage.database import Database
from server.storage.repository import SqlCircleStore
from tests.integration.test_limits import settings_with
from tests.support.hearing import HEARD, HOST_HZ, KIM_HZ, SAM_HZ, assert_hears, listen
from tests.support.own_postgres import OwnPostgres, available
from tests.support.peer import ScriptedParticipant, silent_fraction
from tests.support.server import ServerProcess, link_token

OUTAGE_SECONDS = 30.0
# Heard at all, through the whole window: on a starved machine frames go missing and the
# average level drops, but audio that stopped would be silent (gaps near 100%).
HEARD_THROUGH_LOAD = HEARD / 3
MAX_SILENT = 0.5
ANSWERS = ("joined", "error")

pytestmark = pytest.mark.skipif(not available(), reason="no PostgreSQL server binaries")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    try:
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _hears(
    person: ScriptedParticipant, since: float, heard: list[float], not_heard: list[float]
) -> None:
    assert_hears(person, since, heard, not_heard, heard_above=HEARD_THROUGH_LOAD, check_gaps=False)
    gaps = silent_fraction(person.recorder.samples_since(since))
    assert gaps < MAX_SILENT, f"{person.name} heard silence in {gaps:.0%} of frames"


async def _join_until_in(
    ws_url: str, token: str, timeout: float
) -> tuple[int, ScriptedParticipant]:
    """Join as a page does after storage_unavailable: again a moment later, on a new
    socket. Returns how many tries it took, and the person once in."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        person = ScriptedParticipant(ws_url, token, "Max", None)
        await person.connect()
        mark = len(person.messages)
        await person.send({"type": "join", "token": token, "display_name": "Max", "muted": True})
        await person.wait_until(
            lambda p=person, mark=mark: any(m["type"] in ANSWERS for m in p.messages[mark:])
        )
        answer = next(m for m in person.messages[mark:] if m["type"] in ANSWERS)
        if answer["type"] == "joined":
            return tries, person
        await person.close()
        assert answer["code"] == "storage_unavailable", answer
        assert time.monotonic() < deadline, "joins did not work again after the outage"
        await asyncio.sleep(0.2)


def _circle_info(server: ServerProcess, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{server.base_url}/circle-info",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def test_a_database_outage_keeps_the_circle_going_and_loses_nothing(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "hearth", extra_env={"HEARTH_DATABASE_URL": own_postgres.url}
    )
    server.start()
    people: list[ScriptedParticipant] = []
    try:
        circle = server.create_circle("Outage")
        host_token, join_token = link_token(circle["host_url"]), link_token(circle["join_url"])
        ana = ScriptedParticipant(server.ws_url, host_token, "Ana", HOST_HZ)
        sam = ScriptedParticipant(server.ws_url, join_token, "Sam", SAM_HZ)
        kim = ScriptedParticipant(server.ws_url, join_token, "Kim", KIM_HZ)
        lee = ScriptedParticipant(server.ws_url, join_token, "Lee", None)
        ned = ScriptedParticipant(server.ws_url, join_token, "Ned", None)
        people = [ana, sam, kim, lee, ned]
        for person in people:
            await person.connect()
            await person.join(muted=person in (lee, ned))
        for person in (ana, sam, kim):
            await person.start_audio()
        for person in (ana, sam, kim):
            await person.wait_connected(timeout=20)
        await listen(1.0)
        since = await listen(2.0)
        _hears(sam, since, heard=[HOST_HZ, KIM_HZ], not_heard=[SAM_HZ])

        await asyncio.to_thread(own_postgres.stop, "fast")
        down_at = time.monotonic()

        # A newcomer is refused at once, with a reason the page can show, and may retry.
        max_ = ScriptedParticipant(server.ws_url, join_token, "Max", None)
        people.append(max_)
        await max_.connect()
        asked = time.monotonic()
        refusal = await max_.join(expect="error")
        refusal_ms = (time.monotonic() - asked) * 1000
        assert refusal["code"] == "storage_unavailable", refusal
        assert max_.closed_code is None
        await max_.close()

        # The join page's look-up says the same, with a stable code (never a 500).
        status, info = await asyncio.to_thread(_circle_info, server, join_token)
        assert status == 503 and info["error"]["code"] == "storage_unavailable", info
        assert info["open"] is False

        # Ned's connection drops; his page comes back with its seat token and gets the
        # same seat back from the live circle's memory, and everyone sees him back.
        assert ned.me is not None
        ned_id = ned.me["id"]
        await ned.drop()
        await ana.wait_until(lambda: ana.participants[ned_id]["connection"] == "reconnecting")
        await ned.connect()
        back = await ned.join(muted=True)
        assert back["you"]["id"] == ned_id
        await ana.wait_until(lambda: ana.participants[ned_id]["connection"] == "connected")

        # Safety first: the host mutes Kim and removes Lee, and it holds at once.
        assert kim.me is not None and lee.me is not None and ana.me is not None
        kim_id, lee_id = kim.me["id"], lee.me["id"]
        await ana.send({"type": "mute_participant", "participant_id": kim_id})
        for person in (ana, sam, kim):
            await person.wait_until(lambda p=person: p.participants[kim_id]["muted"] is True)
        await ana.send({"type": "remove", "participant_id": lee_id})
        await lee.wait_until(lambda: lee.closed_code is not None)
        assert lee.closed_code == 4403
        await sam.send({"type": "raise_hand"})
        await ana.wait_until(lambda: bool(ana.room and ana.room["hand_queue"]))
        commands = 3

        # The audio goes on for the whole outage, with Kim's voice held back.
        await listen(0.5)
        since = time.monotonic()
        await asyncio.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
        audio_seconds = time.monotonic() - since
        _hears(sam, since, heard=[HOST_HZ], not_heard=[KIM_HZ, SAM_HZ])
        _hears(ana, since, heard=[SAM_HZ], not_heard=[KIM_HZ, HOST_HZ])
        _hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])
        gaps = max(silent_fraction(p.recorder.samples_since(since)) for p in (ana, sam, kim))
        assert gaps < MAX_SILENT

        await asyncio.to_thread(own_postgres.start)
        up_at = time.monotonic()
        tries, max_again = await _join_until_in(server.ws_url, join_token, timeout=30)
        people.append(max_again)
        recovery_s = time.monotonic() - up_at

        # Nothing lost: what the host did during the outage is in the database.
        database = Database(own_postgres.url)
        await database.connect()
        try:
            store = SqlCircleStore(database)
            actions = [r.action for r in await store.audit_log(circle["id"])]
            match = await store.find_by_link(host_token)
            assert match is not None
            saved = await store.load_state(match)
            present = {seat.id for seat in await store.present_seats(circle["id"])}
        finally:
            await database.close()
        assert "mute" in actions and "remove" in actions, actions
        assert actions.index("mute") < actions.index("remove")
        assert saved is not None and sam.me is not None
        assert saved.seats[kim_id].muted
        assert lee_id not in saved.seats and [b.display_name for b in saved.bans] == ["Lee"]
        assert saved.hand_queue == (sam.me["id"],)
        assert lee_id not in present and kim_id in present and ned_id in present
        assert saved.seats[ned_id].disconnected_at is None
        flushed = [
            int(n) for n in re.findall(r"storage is back: (\d+) decisions", server.log_text())
        ]
        assert flushed and sum(flushed) >= commands
        print(
            f"\noutage {OUTAGE_SECONDS:.0f} s: audio heard for {audio_seconds:.1f} s of it "
            f"(at most {gaps:.0%} of frames silent); "
            f"join refused in {refusal_ms:.0f} ms; {commands} commands during the outage, "
            f"{sum(flushed)} decisions flushed in {len(flushed)} transaction(s) when back; "
            f"joins work again {recovery_s:.2f} s after the database started ({tries} tries)"
        )
        assert "Traceback" not in server.log_text()
    finally:
        for person in people:
            await person.close()
        server.stop()


async def test_behind_the_front_a_seat_comes_back_during_an_outage(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """With --workers 2 the front finds a join's worker through the database; while it is
    away, someone coming back with a seat token is still sent to the worker holding it."""
    server = ServerProcess(
        data_dir=tmp_path / "hearth",
        extra_env={"HEARTH_DATABASE_URL": own_postgres.url},
        workers=2,
    )
    server.start(timeout=120)
    people: list[ScriptedParticipant] = []
    try:
        circle = server.create_circle("Outage behind the front")
        host_token, join_token = link_token(circle["host_url"]), link_token(circle["join_url"])
        ana = ScriptedParticipant(server.ws_url, host_token, "Ana", None)
        ned = ScriptedParticipant(server.ws_url, join_token, "Ned", None)
        people = [ana, ned]
        for person in people:
            await person.connect()
            await person.join(muted=True)
        assert ned.me is not None
        ned_id = ned.me["id"]

        await asyncio.to_thread(own_postgres.stop, "fast")
        status, info = await asyncio.to_thread(_circle_info, server, join_token)
        assert status == 503 and info["error"]["code"] == "storage_unavailable", info
        await ned.drop()
        await ana.wait_until(lambda: ana.participants[ned_id]["connection"] == "reconnecting")
        await ned.connect()
        back = await ned.join(muted=True)
        assert back["you"]["id"] == ned_id
        await ana.wait_until(lambda: ana.participants[ned_id]["connection"] == "connected")
        # A newcomer on the same link needs the database: refused at once, may retry.
        max_ = ScriptedParticipant(server.ws_url, join_token, "Max", None)
        people.append(max_)
        await max_.connect()
        assert (await max_.join(expect="error"))["code"] == "storage_unavailable"

        await asyncio.to_thread(own_postgres.start)
        _, max_again = await _join_until_in(server.ws_url, join_token, timeout=30)
        people.append(max_again)
        assert "Traceback" not in server.log_text()
    finally:
        for person in people:
            await person.close()
        server.stop()


async def _rename(person: ScriptedParticipant, name: str) -> dict[str, Any]:
    """Send a rename; the answer: the update telling it, or the refusal."""
    assert person.me is not None
    me, mark = person.me["id"], len(person.messages)
    await person.send({"type": "rename", "display_name": name})

    def answer() -> dict[str, Any] | None:
        for m in person.messages[mark:]:
            if m["type"] == "error":
                return m
            if m["type"] == "participant_updated" and m["participant"]["id"] == me:
                return m
        return None

    await person.wait_until(lambda: answer() is not None)
    found = answer()
    assert found is not None
    return found


async def test_a_long_outage_keeps_a_bounded_number_of_changes_and_says_so(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """Memory stays bounded however long the database is away: past the limit a
    participant's change is refused, in words, and changes nothing; the host can still
    remove someone; everything that was kept is stored when the database is back."""
    keep = 4
    server = ServerProcess(
        data_dir=tmp_path / "hearth",
        extra_env={
            "HEARTH_DATABASE_URL": own_postgres.url,
            "HEARTH_OUTAGE_KEEP_LIMIT": str(keep),
            "HEARTH_RENAME_BURST": "50",
        },
    )
    server.start()
    people: list[ScriptedParticipant] = []
    try:
        circle = server.create_circle("A long outage")
        settings_with(server, circle["id"], allow_rename=True)
        host_token, join_token = link_token(circle["host_url"]), link_token(circle["join_url"])
        ana = ScriptedParticipant(server.ws_url, host_token, "Ana", None)
        sam = ScriptedParticipant(server.ws_url, join_token, "Sam", None)
        kim = ScriptedParticipant(server.ws_url, join_token, "Kim", None)
        people = [ana, sam, kim]
        for person in people:
            await person.connect()
            await person.join(muted=True)
        assert kim.me is not None

        await asyncio.to_thread(own_postgres.stop, "fast")
        renamed: list[str] = []
        refusal = None
        for i in range(3 * keep):
            answer = await _rename(sam, f"Sam {i}")
            if answer["type"] == "error":
                refusal = answer
                break
            renamed.append(answer["participant"]["display_name"])
        assert refusal is not None, "changes were kept without a bound"
        assert refusal["code"] == "storage_unavailable" and refusal["ref"] == "rename"
        assert 0 < len(renamed) <= keep and sam.closed_code is None
        # The refused rename changed nothing anyone sees.
        await asyncio.sleep(0.3)
        assert sam.me is not None
        assert ana.participants[sam.me["id"]]["display_name"] == renamed[-1]
        # The host still removes someone (hosts keep acting up to twice the limit).
        await ana.send({"type": "remove", "participant_id": kim.me["id"]})
        await kim.wait_until(lambda: kim.closed_code is not None)
        assert kim.closed_code == 4403

        await asyncio.to_thread(own_postgres.start)
        async with asyncio.timeout(30):
            while "storage is back" not in server.log_text():
                await asyncio.sleep(0.2)
        database = Database(own_postgres.url)
        await database.connect()
        try:
            actions = [r.action for r in await SqlCircleStore(database).audit_log(circle["id"])]
        finally:
            await database.close()
        # Everything kept reached the database; the refused rename never existed.
        assert actions.count("rename") == len(renamed) and "remove" in actions, actions
        assert "Traceback" not in server.log_text()
    finally:
        for person in people:
            await person.close()
        server.stop()
