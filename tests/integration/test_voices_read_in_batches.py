"""A muted voice's packets are read in batches on a slow clock, not packet by packet
(signaling.voice.QuietSockets). Nothing of what people hear may change: a person muted for
a while is heard again, whole, the moment they unmute, mixed with the voice already there."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import circle_people, seat_with_audio
from tests.support.server import ServerProcess, free_port


async def test_a_voice_read_on_the_slow_clock_is_heard_whole_once_unmuted(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    trio = (("Ana", HOST_HZ), ("Sam", SAM_HZ), ("Kim", KIM_HZ))
    async with circle_people(server.ws_url, circle, *trio) as (host, sam, kim):
        # Sam hums into a muted microphone.
        await seat_with_audio((host, False), (sam, True), (kim, True))
        assert sam.me is not None

        since = await listen(2.0)  # Sam muted: read on the slow clock, never heard
        assert_hears(kim, since, heard=[HOST_HZ], not_heard=[SAM_HZ])

        await sam.send({"type": "mute", "muted": False})
        await kim.wait_until(lambda: kim.participants[sam.me["id"]]["muted"] is False)
        await listen(0.5)
        since = await listen(2.0)  # two voices: mixed
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[])
        assert_hears(host, since, heard=[SAM_HZ], not_heard=[HOST_HZ, KIM_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[SAM_HZ, KIM_HZ])


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own, whose metrics say how voices' datagrams were read."""
    metrics_port = free_port()
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-paced")),
        extra_env={"HEARTH_METRICS_PORT": str(metrics_port)},
    )
    process.start()
    process.metrics_port = metrics_port  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        process.stop()


def read_on_the_grid(server: ServerProcess) -> float:
    """Datagrams of audible voices read so far on every instant of the grid (paced)."""
    port = server.metrics_port  # type: ignore[attr-defined]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith('hearth_media_batched_datagrams_total{clock="paced"}'):
            return float(line.rpartition(" ")[2])
    raise AssertionError("no count of paced reads in the metrics")


async def test_three_talkers_are_read_on_the_grid_and_hear_each_other_whole(
    counted: ServerProcess,
) -> None:
    """While several people talk, their voices are read all together on every instant of
    the grid instead of each packet waking the server: everyone still hears the others
    whole. Once one talks alone, that voice is read as each packet arrives again."""
    circle = counted.create_circle()
    trio = (("Ana", HOST_HZ), ("Sam", SAM_HZ), ("Kim", KIM_HZ))
    async with circle_people(counted.ws_url, circle, *trio) as (host, sam, kim):
        await seat_with_audio((host, False), (sam, False), (kim, False))
        assert sam.me is not None and kim.me is not None
        await listen(2.5)  # talkers are counted every second
        before = read_on_the_grid(counted)
        since = await listen(2.0)
        assert read_on_the_grid(counted) - before > 200  # 3 voices, 50 packets a second
        assert_hears(host, since, heard=[SAM_HZ, KIM_HZ], not_heard=[HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ, KIM_HZ], not_heard=[SAM_HZ])
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])

        # Sam and Kim mute: Ana talks alone, and is read as each packet arrives.
        await sam.send({"type": "mute", "muted": True})
        await kim.send({"type": "mute", "muted": True})
        await kim.wait_until(lambda: kim.participants[kim.me["id"]]["muted"] is True)
        await sam.wait_until(lambda: sam.participants[sam.me["id"]]["muted"] is True)
        await listen(2.5)
        before = read_on_the_grid(counted)
        since = await listen(2.0)
        assert read_on_the_grid(counted) - before < 10
        assert_hears(kim, since, heard=[HOST_HZ], not_heard=[SAM_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[KIM_HZ])
