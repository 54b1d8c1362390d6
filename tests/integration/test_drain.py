"""SIGTERM mid-circle: no newcomers, the circle goes on for the drain time, everyone is told
and closed with 1012, the process exits 0; after the restart everyone takes their seat back.

Real server processes (one, and a front with two workers) and aiortc peers humming tones.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.support.hearing import HOST_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

DRAIN_SECONDS = 6
# What the process may take beyond the drain time to close sockets and stop (workers too).
EXIT_MARGIN = 8.0


@pytest.mark.parametrize("workers", [None, 2], ids=["one-process", "two-workers"])
async def test_sigterm_drains_the_circle_then_everyone_resumes_their_seat_after_restart(
    tmp_path: Path, workers: int | None
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        extra_env={"HEARTH_DRAIN_SECONDS": str(DRAIN_SECONDS)},
        workers=workers,
    )
    server.start()
    circle = server.create_circle(title="Drained gently")
    ana = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
    kim = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Kim", None)
    people = (ana, sam, kim)
    try:
        for person in (ana, sam):
            await person.connect()
            await person.join(muted=False)
            await person.start_audio()
        for person in (ana, sam):
            await person.wait_connected()
        seats = {p.name: p.me["id"] for p in (ana, sam) if p.me is not None}
        marks = {p.name: len(p.messages) for p in (ana, sam)}

        assert server.process is not None
        process = server.process
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)

        # Everyone present is told at once, with the time left.
        for person in (ana, sam):
            notice = await person.wait_for("server_draining", after=marks[person.name])
            assert notice["seconds"] == DRAIN_SECONDS
        # A newcomer is refused and told why; the page will come back later by itself.
        await kim.connect()
        refused = await kim.join(expect="error")
        assert refused["code"] == "server_draining"
        await kim.wait_until(lambda: kim.closed_code is not None)
        assert kim.closed_code == 1012

        # The circle goes on meanwhile: both still hear each other.
        since = await listen(2.0)
        assert_hears(ana, since, heard=[SAM_HZ], not_heard=[HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[SAM_HZ])

        for person in (ana, sam):
            await person.wait_until(lambda p=person: p.closed_code is not None, timeout=20)  # type: ignore[misc]
            assert person.closed_code == 1012
        closed_after = time.monotonic() - signalled
        # Not cut short: the people present had (about) the whole drain time.
        assert closed_after > DRAIN_SECONDS - 1.5, closed_after
        code = await asyncio.to_thread(process.wait, DRAIN_SECONDS + EXIT_MARGIN)
        exited_after = time.monotonic() - signalled
        assert code == 0, server.log_text()[-3000:]
        assert exited_after < DRAIN_SECONDS + EXIT_MARGIN
        print(f"closed 1012 after {closed_after:.2f} s, exited 0 after {exited_after:.2f} s")
        server.process = None

        # Back up: each page reconnects with its seat token and gets the same seat.
        server.start()
        for person in (ana, sam):
            joined = await person.reconnect()
            assert joined["you"]["id"] == seats[person.name]
        for person in (ana, sam):
            await person.wait_connected()
        since = await listen(2.0)
        assert_hears(ana, since, heard=[SAM_HZ], not_heard=[HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[SAM_HZ])
    finally:
        for person in people:
            await person.close()
        server.stop()


async def test_a_drain_ends_as_soon_as_nobody_is_connected(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", extra_env={"HEARTH_DRAIN_SECONDS": "60"})
    server.start()
    circle = server.create_circle()
    ana = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    try:
        await ana.connect()
        await ana.join()
        assert server.process is not None
        process = server.process
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        await ana.wait_for("server_draining")
        await ana.send({"type": "leave"})
        code = await asyncio.to_thread(process.wait, 20)
        assert code == 0
        assert time.monotonic() - signalled < 20
        server.process = None
    finally:
        await ana.close()
        server.stop()
