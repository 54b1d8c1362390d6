"""Three real aiortc peers in one circle, each humming its own tone through the server."""

from __future__ import annotations

import asyncio
import time

from tests.support.peer import ScriptedParticipant, silent_fraction
from tests.support.server import ServerProcess, link_token

# No tone is a sum or difference (first or second order) of the other two: codec
# intermodulation would otherwise put a faint copy of a voice where it is not.
HOST_HZ, SAM_HZ, KIM_HZ = 500.0, 850.0, 1270.0
TONES = [HOST_HZ, SAM_HZ, KIM_HZ]
TONE_AMPLITUDE = 0.3  # what each ToneTrack sends, of full scale
# A voice that reaches you keeps its level (0.30 arrives as 0.30 on a quiet machine; frames
# dropped under heavy load lower the average, which is why this is not closer).
HEARD = TONE_AMPLITUDE * 0.5
ABSENT = TONE_AMPLITUDE / 100  # one that does not stays 40 dB down (codec noise is ~90 dB down)


async def listen(seconds: float) -> float:
    """Let audio flow for a while; returns when the window to analyse began."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return start


def assert_hears(
    person: ScriptedParticipant, since: float, heard: list[float], not_heard: list[float]
) -> None:
    levels = person.hears(since, TONES)
    for f in heard:
        assert levels[f] > HEARD, f"{person.name} should hear {f} Hz: {levels}"
    for f in not_heard:
        assert levels[f] < ABSENT, f"{person.name} should not hear {f} Hz: {levels}"
    if heard:
        # A voice that is heard is heard whole: no dropped frames in the window.
        gaps = silent_fraction(person.recorder.samples_since(since))
        assert gaps < 0.2, f"{person.name} heard gaps in {gaps:.0%} of frames"


async def test_everyone_hears_the_others_but_not_themselves_and_a_host_mute_is_enforced(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ)
    kim = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Kim", KIM_HZ)
    people = [host, sam, kim]
    try:
        for person in people:
            await person.connect()
            joined = await person.join(muted=False)
            assert joined["circle"]["status"] == "open"
        assert host.me is not None and host.me["role"] == "host"
        assert sam.me is not None and sam.me["role"] == "participant"
        for person in people:
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        for person in people:
            await person.wait_until(lambda p=person: len(p.participants) == 3)

        await listen(1.0)  # let the first packets settle
        since = await listen(2.0)
        assert_hears(host, since, heard=[SAM_HZ, KIM_HZ], not_heard=[HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ, KIM_HZ], not_heard=[SAM_HZ])
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])

        kim_id = kim.me["id"] if kim.me else ""
        await host.send({"type": "mute_participant", "participant_id": kim_id})
        for person in people:
            await person.wait_until(lambda p=person: p.participants[kim_id]["muted"] is True)
        update = await sam.wait_for("participant_updated")
        assert update["by"] == host.me["id"]

        frames_before = kim.tone.frames_sent if kim.tone else 0
        await listen(0.5)
        since = await listen(2.0)
        # Kim's browser keeps sending; the server drops it.
        assert kim.tone is not None and kim.tone.frames_sent > frames_before + 50
        assert_hears(host, since, heard=[SAM_HZ], not_heard=[KIM_HZ, HOST_HZ])
        assert_hears(sam, since, heard=[HOST_HZ], not_heard=[KIM_HZ, SAM_HZ])
        assert_hears(kim, since, heard=[HOST_HZ, SAM_HZ], not_heard=[KIM_HZ])
    finally:
        for person in people:
            await person.close()
