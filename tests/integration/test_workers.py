"""``hearth serve --workers 2``: circles spread over worker processes, used exactly as one.

Real processes on loopback: a front and two workers, with aiortc peers humming tones.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import test_bad_input_over_websocket as bad_input
from tests.integration import test_circle_info as circle_info
from tests.integration import test_hearing_each_other as hearing
from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

# A fourth tone for the second circle, clear of the others' sums and differences.
LEE_HZ = 1730.0


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-workers")),
        workers=2,
        # A hundred people from 127.0.0.1 open their sockets before joining: the front's
        # per-address bound (test_limits_behind_front.py) is not what these tests are about.
        extra_env={"HEARTH_UNJOINED_SOCKETS_PER_ADDRESS": "1000"},
    )
    process.start(timeout=120)
    try:
        yield process
    finally:
        process.stop()
        # No orphans: every worker stopped with the front.
        for pid, _ in process.worker_processes().values():
            assert not _alive(pid), f"worker pid {pid} outlived the front"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie not yet reaped by anyone counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def hosting(server: ServerProcess, circle_id: str) -> int | None:
    for index in server.worker_processes():
        if any(c["id"] == circle_id for c in server.worker_live(index)["circles"]):
            return index
    return None


async def test_three_people_hear_each_other_and_a_host_mute_holds_through_the_pipe(
    workers: ServerProcess,
) -> None:
    await hearing.test_everyone_hears_the_others_but_not_themselves_and_a_host_mute_is_enforced(
        workers
    )


async def test_refusals_and_confused_messages_are_answered_as_by_one_process(
    workers: ServerProcess,
) -> None:
    # Unknown link and closed circle: circle_not_open and close 4404, indistinguishable.
    await bad_input.test_an_unknown_link_is_answered_like_a_closed_circle(workers)
    # Before a join: not_joined, invalid_json, unknown_type, and the connection stays.
    await bad_input.test_confused_messages_get_errors_and_the_connection_stays(workers)
    # The join page's /circle-info comes from the worker hosting the circle (hosts present).
    await circle_info.test_join_page_learns_title_and_hosts_only_while_the_circle_is_open(workers)


def test_internal_endpoints_are_not_on_the_public_port(workers: ServerProcess) -> None:
    # The workers' internal endpoints are on their own 127.0.0.1 ports, never the public one.
    for method, path in (
        ("GET", "/internal/live"),
        ("GET", "/internal/metrics"),
        ("POST", "/internal/settings"),
        ("POST", "/internal/drain"),
    ):
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(f"{workers.base_url}{path}", method=method, data=data)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code in (404, 405)


async def test_circles_on_two_workers_run_at_once_and_survive_a_worker_crash(
    workers: ServerProcess,
) -> None:
    people: list[ScriptedParticipant] = []
    try:
        # Circles land by a hash of their id: make circles until two workers each host one.
        placed: dict[int, tuple[ScriptedParticipant, ScriptedParticipant]] = {}
        tones = iter([(HOST_HZ, SAM_HZ), (KIM_HZ, LEE_HZ)])
        for attempt in range(12):
            circle = workers.create_circle(title=f"Circle {attempt}")
            host = ScriptedParticipant(workers.ws_url, link_token(circle["host_url"]), "H", None)
            people.append(host)
            await host.connect()
            await host.join(muted=True)
            assert host.me is not None
            index = None
            for _ in range(20):
                occurrence = (await host.wait_for("joined"))["circle"]["id"]
                index = hosting(workers, occurrence)
                if index is not None:
                    break
                await asyncio.sleep(0.1)
            assert index is not None
            if index in placed:
                await host.close()
                continue
            first_hz, second_hz = next(tones)
            a = ScriptedParticipant(workers.ws_url, link_token(circle["host_url"]), "A", first_hz)
            b = ScriptedParticipant(workers.ws_url, link_token(circle["join_url"]), "B", second_hz)
            people.extend([a, b])
            for person in (a, b):
                await person.connect()
                await person.join(muted=False)
                await person.start_audio()
            placed[index] = (a, b)
            if len(placed) == 2:
                break
        assert sorted(placed) == [0, 1], "no two circles landed on different workers"
        pairs = [placed[0], placed[1]]
        for a, b in pairs:
            await a.wait_connected()
            await b.wait_connected()

        await listen(1.0)
        since = await listen(2.0)
        # Both circles at once, each on its own worker: each pair hears only each other.
        for a, b in pairs:
            assert a.tone is not None and b.tone is not None
            others = [
                p.tone.frequency for pair in pairs for p in pair if p.tone and p not in (a, b)
            ]
            assert_hears(a, since, [b.tone.frequency], [a.tone.frequency, *others])
            assert_hears(b, since, [a.tone.frequency], [b.tone.frequency, *others])

        # Worker 1 dies. The front starts it again; its people reconnect with their seat
        # tokens and get their seats back from the saved state; worker 0's circle goes on.
        old_pid, _ = workers.worker_processes()[1]
        seats = [p.me["id"] if p.me else "" for p in placed[1]]
        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while workers.worker_processes()[1][0] == old_pid:
            assert time.monotonic() < deadline, "the front did not start the worker again"
            await asyncio.sleep(0.1)
        for a in placed[1]:
            await a.wait_until(lambda a=a: a.closed_code is not None)
            assert a.closed_code == 1001  # going away: the page reconnects
        while True:
            try:
                workers.worker_live(1)
                break
            except OSError:
                assert time.monotonic() < deadline, "the restarted worker does not answer"
                await asyncio.sleep(0.1)
        for a in placed[1]:
            joined = await a.reconnect()
            assert joined["type"] == "joined"
        assert [p.me["id"] if p.me else "" for p in placed[1]] == seats
        for a in placed[1]:
            await a.wait_connected()
        await listen(1.0)
        since = await listen(2.0)
        for a, b in pairs:
            assert a.tone is not None and b.tone is not None
            assert_hears(a, since, [b.tone.frequency], [a.tone.frequency])
            assert_hears(b, since, [a.tone.frequency], [b.tone.frequency])
    finally:
        for person in people:
            await person.close()


def test_workers_stop_by_themselves_when_the_front_is_killed(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", workers=2)
    server.start(timeout=120)  # two workers start slowly on a busy machine
    pids = [pid for pid, _ in server.worker_processes().values()]
    assert len(pids) == 2
    server.kill()  # SIGKILL: the front gets no chance to stop them
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "workers outlived a killed front"
        time.sleep(0.1)


async def test_more_people_than_a_connection_pool_holds_join_at_once(
    workers: ServerProcess,
) -> None:
    # Every piped WebSocket holds a front-to-worker connection for its whole life.
    circles = [workers.create_circle(title=f"Busy {i}") for i in range(4)]
    people = [
        ScriptedParticipant(workers.ws_url, link_token(c["host_url"]), f"P{n}", None)
        for c in circles
        for n in range(28)
    ]
    try:
        for person in people:
            await person.connect()
        async with asyncio.timeout(30):
            answers = await asyncio.gather(*(p.join(muted=True) for p in people))
        assert [a["type"] for a in answers] == ["joined"] * len(people)
    finally:
        await asyncio.gather(*(p.close() for p in people))
