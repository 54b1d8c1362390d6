"""What the scripted participants hear, judged the same way in every integration test."""

from __future__ import annotations

import asyncio
import time

from tests.support.peer import ScriptedParticipant, silent_fraction

# No tone is a sum or difference (first or second order) of the other two: codec
# intermodulation would otherwise put a faint copy of a voice where it is not.
HOST_HZ, SAM_HZ, KIM_HZ = 500.0, 850.0, 1270.0
TONES = [HOST_HZ, SAM_HZ, KIM_HZ]
TONE_AMPLITUDE = 0.3  # what each ToneTrack sends, of full scale
# A voice that reaches you keeps its level (0.30 arrives as 0.30 on a quiet machine; frames
# dropped under heavy load lower the average, which is why this is not closer).
HEARD = TONE_AMPLITUDE * 0.5
ABSENT = TONE_AMPLITUDE / 100  # one that does not stays 40 dB down (codec noise is ~90 dB down)
# Heard frames may go missing on a loaded machine; past this share, the audio is broken.
MAX_GAPS = 0.2


async def listen(seconds: float) -> float:
    """Let audio flow for a while; returns when the window to analyse began."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return start


def assert_hears(
    person: ScriptedParticipant,
    since: float,
    heard: list[float],
    not_heard: list[float],
    *,
    heard_above: float = HEARD,
    check_gaps: bool = True,
) -> None:
    """``person`` hears each of ``heard`` (above ``heard_above``) and none of ``not_heard``."""
    levels = person.hears(since, [*heard, *not_heard])
    for f in heard:
        assert levels[f] > heard_above, f"{person.name} should hear {f} Hz: {levels}"
    for f in not_heard:
        assert levels[f] < ABSENT, f"{person.name} should not hear {f} Hz: {levels}"
    if heard and check_gaps:
        # A voice that is heard is heard whole: few dropped frames in the window.
        gaps = silent_fraction(person.recorder.samples_since(since))
        assert gaps < MAX_GAPS, f"{person.name} heard gaps in {gaps:.0%} of frames"
