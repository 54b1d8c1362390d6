"""Several voices at once, each forwarded in a receive slot of its own: real aiortc peers
offering three receive tracks, as the page does; a listener offering one gets the mix."""

from __future__ import annotations

from tests.support.hearing import ABSENT, HEARD, HOST_HZ, KIM_HZ, SAM_HZ, assert_hears, listen
from tests.support.peer import (
    ScriptedParticipant,
    circle_people,
    seat_with_audio,
    tone_amplitudes,
)
from tests.support.server import ServerProcess, link_token

TONES = [HOST_HZ, SAM_HZ, KIM_HZ]


def tones_per_slot(person: ScriptedParticipant, since: float) -> list[set[float]]:
    """Which tones each of the person's receive tracks carried."""
    found = []
    for samples in person.recorder.slot_samples_since(since):
        levels = tone_amplitudes(samples, TONES)
        assert all(v > HEARD or v < ABSENT for v in levels.values()), levels
        found.append({f for f, v in levels.items() if v > HEARD})
    return found


async def test_three_speakers_each_reach_everyone_else_in_a_slot_of_their_own(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    four = (("Ana", HOST_HZ), ("Sam", SAM_HZ), ("Kim", KIM_HZ), ("Lee", None))
    async with circle_people(server.ws_url, circle, *four) as people:
        host, sam, kim, lee = people
        await seat_with_audio(*((person, person is lee) for person in people))
        for person in people:
            await person.wait_until(lambda p=person: len(p.participants) == 4)

        await listen(1.0)
        since = await listen(2.5)
        assert_hears(lee, since, heard=TONES, not_heard=[])
        assert_hears(host, since, heard=[SAM_HZ, KIM_HZ], not_heard=[HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ, KIM_HZ], not_heard=[SAM_HZ])
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])
        # Forwarded, not mixed: every voice in a track of its own, the same for everyone.
        slots = tones_per_slot(lee, since)
        assert sorted(len(s) for s in slots) == [1, 1, 1], slots
        for person in (host, sam, kim):
            theirs = tones_per_slot(person, since)
            mine = person.tone.frequency if person.tone else None
            assert theirs == [s - {mine} for s in slots], (person.name, theirs, slots)

        # Someone whose client offers one receive track: three voices do not fit in it, so
        # the circle is mixed again and they hear all three in that one track.
        late = ScriptedParticipant(
            server.ws_url, link_token(circle["join_url"]), "Max", None, slots=1
        )
        try:
            await seat_with_audio((late, True))
            await listen(1.5)
            since = await listen(2.5)
            # Three tones summed and encoded once: each a little quieter than alone.
            in_mix = HEARD / 3
            assert_hears(late, since, heard=TONES, not_heard=[], heard_above=in_mix)
            assert_hears(
                host, since, heard=[SAM_HZ, KIM_HZ], not_heard=[HOST_HZ], heard_above=in_mix
            )
            assert_hears(lee, since, heard=TONES, not_heard=[], heard_above=in_mix)
            # The mix, in the first track; nothing in the others.
            first, *others = lee.recorder.slot_samples_since(since)
            assert min(tone_amplitudes(first, TONES).values()) > in_mix
            assert all(max(tone_amplitudes(o, TONES).values()) < ABSENT for o in others)
        finally:
            await late.close()
