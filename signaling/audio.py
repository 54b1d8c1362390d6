"""The per-circle audio path, behind one small interface.

``AudioPath`` is what the rest of signaling sees: voices come in as aiortc tracks, each
listener gets one outbound track, and the room says whose voices may be heard.

``MixingAudioPath`` is the walking skeleton's engine, the simplest that works: aiortc's stock
receive pipeline decodes each voice; every 20 ms the audible voices are summed once and each
listener gets that sum minus their own voice (never your own voice back), which aiortc's
sender encodes per listener. docs/performance.md (issue 6) replaces its insides with an engine
that skips aiortc's receive pipeline; the interface stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections import deque
from typing import Protocol, cast

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, Opus's usual frame
TICK_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# Frames a voice may hold before the mixer takes them: enough to ride out arrival jitter,
# few enough that delay stays low. Older frames are dropped past this.
MAX_PENDING_FRAMES = 4
# A voice starts (and restarts after running dry) only once this many frames wait, so a
# single late packet does not cut every following frame in two.
PRIME_FRAMES = 2
# Frames a listener's track may hold if its sender falls behind; the oldest go first.
MAX_LISTENER_FRAMES = 5

Pcm = npt.NDArray[np.int16]


class AudioPath(Protocol):
    def attach_voice(self, seat_id: str, track: MediaStreamTrack) -> None:
        """Take ``track`` as the voice of ``seat_id`` (replacing an earlier one)."""
        ...

    def listener_track(self, seat_id: str) -> MediaStreamTrack:
        """A new outbound track carrying what ``seat_id`` should hear."""
        ...

    def set_audible(self, seat_ids: frozenset[str]) -> None:
        """Only these seats' voices may be heard; every other voice is dropped on entry."""
        ...

    def detach(self, seat_id: str) -> None:
        """Forget the seat's voice and stop its listener track."""
        ...

    async def close(self) -> None: ...


class ListenerTrack(MediaStreamTrack):
    """One listener's downstream audio: mono 48 kHz frames handed over by the mixer."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[Pcm | None] = asyncio.Queue()
        self._pts = 0

    def push(self, pcm: Pcm) -> None:
        while self._frames.qsize() >= MAX_LISTENER_FRAMES:
            self._frames.get_nowait()
        self._frames.put_nowait(pcm)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pcm = await self._frames.get()
        if pcm is None:
            raise MediaStreamError
        # Stereo with the same voice on both sides: aiortc's Opus encoder is stereo, and
        # handing it mono would make FFmpeg's upmix take 3 dB off every voice.
        stereo = np.repeat(pcm, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            self._frames.put_nowait(None)
        super().stop()


class _Voice:
    """One person's incoming audio, decoded by aiortc, cut into 20 ms mono frames."""

    def __init__(self, seat_id: str, track: MediaStreamTrack, path: MixingAudioPath) -> None:
        self.seat_id = seat_id
        self.track = track
        self.pending: deque[Pcm] = deque()
        self.primed = False
        self._path = path
        self._carry: Pcm = np.zeros(0, dtype=np.int16)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            if not self._path.is_audible(self.seat_id):
                # Muted or without the floor: dropped here, whatever the browser sends.
                self.pending.clear()
                self.primed = False
                self._carry = self._carry[:0]
                continue
            self._take(frame)

    def _take(self, frame: av.AudioFrame) -> None:
        for samples in self._mono(frame):
            self._carry = np.concatenate((self._carry, samples))
        while len(self._carry) >= FRAME_SAMPLES:
            self.pending.append(self._carry[:FRAME_SAMPLES])
            self._carry = self._carry[FRAME_SAMPLES:]
        while len(self.pending) > MAX_PENDING_FRAMES:
            self.pending.popleft()

    def _mono(self, frame: av.AudioFrame) -> list[Pcm]:
        # aiortc's Opus decoder gives 48 kHz interleaved stereo whose channels carry the same
        # voice: averaging them keeps its level (FFmpeg's downmix would take 3 dB off).
        if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE:
            channels = len(frame.layout.channels)
            pcm = frame.to_ndarray().reshape(-1, channels)
            return [pcm.mean(axis=1, dtype=np.float32).astype(np.int16)]
        return [
            mono.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            for mono in self._resampler.resample(frame)
        ]

    def next_frame(self) -> Pcm | None:
        if not self.primed:
            if len(self.pending) < PRIME_FRAMES:
                return None
            self.primed = True
        if not self.pending:
            self.primed = False
            return None
        return self.pending.popleft()

    def stop(self) -> None:
        self.task.cancel()


class MixingAudioPath:
    """Sum the audible voices once per tick; each listener gets the sum minus their own."""

    def __init__(self, *, run_clock: bool = True) -> None:
        # Tests turn the clock off and call mix_once themselves.
        self._run_clock = run_clock
        self._voices: dict[str, _Voice] = {}
        self._listeners: dict[str, ListenerTrack] = {}
        self._audible: frozenset[str] = frozenset()
        self._ticker: asyncio.Task[None] | None = None

    def is_audible(self, seat_id: str) -> bool:
        return seat_id in self._audible

    def attach_voice(self, seat_id: str, track: MediaStreamTrack) -> None:
        old = self._voices.pop(seat_id, None)
        if old is not None:
            old.stop()
        self._voices[seat_id] = _Voice(seat_id, track, self)
        self._ensure_ticking()

    def listener_track(self, seat_id: str) -> MediaStreamTrack:
        old = self._listeners.pop(seat_id, None)
        if old is not None:
            old.stop()
        track = ListenerTrack()
        self._listeners[seat_id] = track
        self._ensure_ticking()
        return track

    def set_audible(self, seat_ids: frozenset[str]) -> None:
        self._audible = seat_ids

    def detach(self, seat_id: str) -> None:
        voice = self._voices.pop(seat_id, None)
        if voice is not None:
            voice.stop()
        listener = self._listeners.pop(seat_id, None)
        if listener is not None:
            listener.stop()

    async def close(self) -> None:
        for seat_id in list(self._voices) + list(self._listeners):
            self.detach(seat_id)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    def mix_once(self) -> None:
        """One 20 ms tick: take a frame from each audible voice, hand each listener its mix."""
        contributions: dict[str, npt.NDArray[np.int32]] = {}
        for seat_id, voice in self._voices.items():
            frame = voice.next_frame()
            if frame is not None and seat_id in self._audible:
                contributions[seat_id] = frame.astype(np.int32)
        total = (
            np.sum(list(contributions.values()), axis=0, dtype=np.int32)
            if contributions
            else np.zeros(FRAME_SAMPLES, dtype=np.int32)
        )
        for seat_id, listener in self._listeners.items():
            own = contributions.get(seat_id)
            mix = total - own if own is not None else total
            listener.push(cast(Pcm, np.clip(mix, -32768, 32767).astype(np.int16)))

    def _ensure_ticking(self) -> None:
        if not self._run_clock:
            return
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += TICK_SECONDS
            delay = deadline - loop.time()
            if delay < -0.2:
                # Far behind (a stalled loop): start afresh instead of sending a burst.
                deadline = loop.time()
            await asyncio.sleep(max(delay, 0))
            try:
                self.mix_once()
            except Exception:  # the mixer must outlive one bad frame
                log.exception("audio mix tick failed")
