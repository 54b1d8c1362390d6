"""A muted voice's packets are read in batches on a slow clock, not packet by packet
(signaling.voice.QuietSockets). Nothing of what people hear may change: a person muted for
a while is heard again, whole, the moment they unmute, mixed with the voice already there."""

from __future__ import annotations

from tests.support.hearing import HOST_HZ, KIM_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import circle_people, seat_with_audio
from tests.support.server import ServerProcess


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
