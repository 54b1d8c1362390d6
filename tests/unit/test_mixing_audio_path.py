"""The skeleton's mixer: who hears what, decided by the room's audible set."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from signaling.audio import FRAME_SAMPLES, ListenerTrack, MixingAudioPath

pytestmark = pytest.mark.asyncio


class ConstantVoice(MediaStreamTrack):
    """A decoded voice whose every sample is ``level`` (stereo, as aiortc's decoder gives)."""

    kind = "audio"

    def __init__(self, level: int, frames: int = 6) -> None:
        super().__init__()
        self.level = level
        self.left = frames

    async def recv(self) -> av.AudioFrame:
        if self.left == 0:
            raise MediaStreamError
        self.left -= 1
        pcm = np.full((1, FRAME_SAMPLES * 2), self.level, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.time_base = fractions.Fraction(1, 48_000)
        return frame


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def heard(track: MediaStreamTrack) -> int:
    frame = await asyncio.wait_for(track.recv(), 1)
    values = frame.to_ndarray().reshape(-1)
    assert len(values) == FRAME_SAMPLES * 2  # interleaved stereo, the same on both sides
    return int(np.median(values))


def mixer_with(
    levels: dict[str, int], audible: set[str]
) -> tuple[MixingAudioPath, dict[str, MediaStreamTrack]]:
    path = MixingAudioPath(run_clock=False)  # the test ticks by hand
    path.set_audible(frozenset(audible))
    listeners = {seat: path.listener_track(seat) for seat in levels}
    for seat, level in levels.items():
        path.attach_voice(seat, ConstantVoice(level))
    return path, listeners


async def test_each_listener_hears_the_others_and_never_their_own_voice() -> None:
    path, listeners = mixer_with({"a": 100, "b": 1000, "c": 10000}, audible={"a", "b", "c"})
    await settle()
    path.mix_once()
    assert await heard(listeners["a"]) == 11000
    assert await heard(listeners["b"]) == 10100
    assert await heard(listeners["c"]) == 1100
    await path.close()


async def test_a_muted_voice_never_leaves_the_server() -> None:
    path, listeners = mixer_with({"a": 100, "b": 1000, "c": 10000}, audible={"a", "b"})
    await settle()
    path.mix_once()
    assert await heard(listeners["a"]) == 1000
    assert await heard(listeners["b"]) == 100
    assert await heard(listeners["c"]) == 1100
    await path.close()


async def test_loud_voices_clip_instead_of_wrapping_around() -> None:
    path, listeners = mixer_with({"a": 30000, "b": 30000, "c": 0}, audible={"a", "b", "c"})
    await settle()
    path.mix_once()
    assert await heard(listeners["c"]) == 32767
    await path.close()


async def test_listener_frames_carry_continuous_timestamps() -> None:
    track = ListenerTrack()
    for _ in range(3):
        track.push(np.zeros(FRAME_SAMPLES, dtype=np.int16))
    pts = [(await track.recv()).pts for _ in range(3)]
    assert pts == [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_silence_flows_to_listeners_when_nobody_speaks() -> None:
    path = MixingAudioPath()
    listener = path.listener_track("a")
    # The real clock runs here: frames arrive every 20 ms even with no voices.
    assert await heard(listener) == 0
    assert await heard(listener) == 0
    await path.close()
