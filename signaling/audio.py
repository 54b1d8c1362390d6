"""The per-circle audio path, behind one small interface.

``AudioPath`` is what the rest of signaling sees: each voice's Opus packets enter through an
inlet (signaling.voice takes them before aiortc's jitter buffer and decoder), each listener
gets one outbound track, and the room says whose voices may be heard.

``SharedMixAudioPath`` is the engine (docs/performance.md has the numbers that chose it).
While one voice speaks (most of a support circle's time), its Opus packets are forwarded
unchanged to everyone else the moment they arrive, on the circle's own timeline: no decode, no
encode, no wait for a tick. While several speak, every 20 ms it decodes the voices that may be
heard, sums them, and encodes that sum ONCE: every listener who is not speaking gets the very
same packet. A speaker gets the sum minus their own voice from an encoder of their own (never
your own voice back), so a tick costs one encode plus one per voice in the mix, whatever the
number of listeners. When the mix falls silent, a few encoded silence frames end it cleanly
and then nothing is sent, as a browser does with DTX; a forwarded voice ends with the
browser's own silence packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rooms.tick_schedule import MixLoad, ShedLimits, loudest, observe_tick, plan_tick
from signaling.jitter_buffer import JitterBuffer
from signaling.rtp_rewriter import OutboundTimeline
from signaling.speech_detector import SpeechDetector
from signaling.telemetry import dropped_packets as _dropped
from signaling.voice import (
    DTX_MAX_BYTES,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TIME_BASE,
    DirectRtpWriter,
    VoiceInlet,
    opus_encoder,
    quiet_sockets,
)

log = logging.getLogger(__name__)

TICK_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
# Packets a listener's track may hold if its sender falls behind; the oldest go first.
MAX_LISTENER_PACKETS = 5
# Encoded silence sent after a stream's last sound, so the decoder ends it softly instead of
# playing ~0.4 s of loss concealment (a fading tail).
SILENCE_TAIL_FRAMES = 3
# A voice is speaking until this many ticks after its last speech packet. While exactly one
# voice speaks, its packets are forwarded unchanged (no decode, no encode, no tick wait).
FORWARD_HOLD_TICKS = 10
# A packet whose RFC 6464 level is below -SILENT_LEVEL dBov is background, not speech.
SILENT_LEVEL = 60

# The CPU time of each circle's last tick (this process's circles share one loop).
_tick_costs: weakref.WeakKeyDictionary[SharedMixAudioPath, float] = weakref.WeakKeyDictionary()

Pcm = npt.NDArray[np.int16]
if TYPE_CHECKING:
    Encoded = av.Packet[Any]  # one Opus packet with its pts
Levels = dict[str, float]


class AudioPath(Protocol):
    def voice_inlet(self, seat_id: str) -> VoiceInlet:
        """Where the Opus packets of ``seat_id``'s voice enter (replacing an earlier inlet)."""
        ...

    def listener_track(self, seat_id: str) -> MediaStreamTrack:
        """A new outbound track carrying what ``seat_id`` should hear."""
        ...

    def set_audible(self, seat_ids: frozenset[str]) -> None:
        """Only these seats' voices may be heard; every other voice is dropped on entry."""
        ...

    def is_audible(self, seat_id: str) -> bool:
        """Whether the seat's voice may be heard now (if not, dropped before SRTP)."""
        ...

    def levels(self) -> Levels:
        """The loudness (dBov, -127 silent) of each voice heard recently."""
        ...

    def detach(self, seat_id: str) -> None:
        """Forget the seat's voice and stop its listener track."""
        ...

    async def close(self) -> None: ...


class ListenerTrack(MediaStreamTrack):
    """One listener's downstream audio: Opus packets that aiortc's sender sends unchanged."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._packets: deque[Encoded | None] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._writer: DirectRtpWriter | None = None

    def write_directly(self, writer: DirectRtpWriter) -> None:
        """Hand packets to ``writer`` as soon as it is ready, instead of aiortc's sender."""
        self._writer = writer

    def writer_ready(self) -> None:
        # What waited for aiortc's sender is dropped: one sender per stream, never two.
        self._packets.clear()

    def push(
        self,
        packet: Encoded | None,
        data: bytes | None = None,
        seq: int | None = None,
        forwarded: bool = False,
        now: float | None = None,
    ) -> None:
        """Send ``packet``; ``data`` is its bytes when the caller has them already (one
        conversion per packet, not one per listener); ``seq`` its place in the circle's
        sequence (signaling.rtp_rewriter), whose gaps a ``forwarded`` packet keeps."""
        writer = self._writer
        if packet is not None and writer is not None and writer.ready:
            payload = bytes(packet) if data is None else data
            writer.write(payload, packet.pts or 0, seq, forwarded, now)
            return
        if len(self._packets) >= MAX_LISTENER_PACKETS:
            self._packets.popleft()
            _dropped["overflow"] += 1
        self._packets.append(packet)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> Encoded:
        while not self._packets:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        packet = self._packets.popleft()
        if packet is None:
            raise MediaStreamError
        return packet

    def skip_gap(self) -> None:
        """This listener is left out of the circle's stream for a while (their own voice is
        forwarded): their next packet follows the last one they got without a gap."""
        if self._writer is not None:
            self._writer.skip_gap()

    def stop(self) -> None:
        if self.readyState == "live":
            self.push(None)
        super().stop()


class _Voice:
    """One person's incoming packets: a jitter buffer (signaling.jitter_buffer) with its
    decoder, and for a sender whose packets carry no level, a speech detector."""

    def __init__(self) -> None:
        self.buffer = JitterBuffer()
        self.level = -127.0
        # Whether the sender's packets carry RFC 6464 levels (browsers do): then the mixer
        # trusts them. Without, each decoded frame is judged (signaling.speech_detector).
        self.level_from_header = False
        self.detector: SpeechDetector | None = None
        self.last_speech = -(10**9)  # tick of the last packet or frame carrying speech

    def speaking(self, tick: int) -> bool:
        return tick - self.last_speech <= FORWARD_HOLD_TICKS

    def judge(self, pcm: Pcm, tick: int) -> None:
        """A decoded frame of a voice without levels: is it speech, and how loud."""
        if self.detector is None:
            self.detector = SpeechDetector()
        if self.detector.is_speech(pcm):
            self.last_speech = tick
            self.level = dbov(pcm)

    def clear(self) -> None:
        self.buffer.clear()
        self.level = -127.0


class _Stream:
    """One encoded stream: an Opus encoder and its silence tail."""

    def __init__(self) -> None:
        self.encoder = opus_encoder()
        self.tail = 0  # silence frames still to send

    def encode(self, pcm: Pcm | None, pts: int) -> Encoded | None:
        if pcm is None:
            if self.tail == 0:
                return None
            self.tail -= 1
            pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        else:
            self.tail = SILENCE_TAIL_FRAMES
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        frame.pts = pts
        encoded = self.encoder.encode(frame)
        if not encoded:
            return None
        # The same timestamp for every stream of the circle, so a listener moving between
        # the shared stream and their own keeps a continuous timeline.
        packet = av.Packet(bytes(encoded[0]))
        packet.pts = pts
        packet.time_base = TIME_BASE
        return packet


def is_speech(payload: bytes, level: int) -> bool:
    """Whether a packet carries speech: not DTX, and not below the speaking level the
    sender says it has (RFC 6464, in -dBov)."""
    return len(payload) > DTX_MAX_BYTES and level <= SILENT_LEVEL


def mix(contributions: dict[str, Pcm]) -> tuple[npt.NDArray[np.int32], dict[str, Pcm | None]]:
    """The sum of all voices, and for each voice the sum of the others (clipped to 16 bits).

    A voice alone in the mix gets ``None``: there is nothing for its speaker to hear.
    """
    total = np.zeros(FRAME_SAMPLES, dtype=np.int32)
    for pcm in contributions.values():
        total += pcm
    minus: dict[str, Pcm | None] = {}
    for seat_id, pcm in contributions.items():
        minus[seat_id] = None if len(contributions) == 1 else clip(total - pcm)
    return total, minus


def clip(samples: npt.NDArray[np.int32]) -> Pcm:
    clipped: Pcm = np.clip(samples, -32768, 32767).astype(np.int16)
    return clipped


def dbov(pcm: Pcm) -> float:
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) / 32768.0
    return max(-127.0, 20 * float(np.log10(rms))) if rms > 0 else -127.0


class SharedMixAudioPath:
    """Mix the audible voices once per tick and encode the listeners' common mix once."""

    def __init__(self, *, run_clock: bool = True, forward_lone_voice: bool = True) -> None:
        # Tests turn the clock off and call mix_once themselves.
        self._run_clock = run_clock
        # Arrival and playout times for the jitter buffers: the machine's clock, or with the
        # clock off, the ticks themselves (packets given before a tick arrived 20 ms earlier).
        self._clock: Callable[[], float] = (
            time.monotonic if run_clock else lambda: self._tick * TICK_SECONDS
        )
        self._forward_lone_voice = forward_lone_voice
        self._voices: dict[str, _Voice] = {}
        self._listeners: dict[str, ListenerTrack] = {}
        self._audible: frozenset[str] = frozenset()
        self._shared = _Stream()
        self._own: dict[str, _Stream] = {}  # mix-minus streams of the voices in the mix
        self._tick = 0
        # The circle's outbound sequence numbers and timestamps (forwarded packets by offset).
        self._timeline = OutboundTimeline(FRAME_SAMPLES, SAMPLE_RATE)
        self._forwarded: str | None = None  # the lone voice sent on unchanged, if any
        self._ticker: asyncio.Task[None] | None = None
        self.encodes = 0  # for tests and the bench: encodes so far
        self.skipped_ticks = 0  # ticks dropped because the clock woke late
        # Whether the mix is shed (rooms.tick_schedule): the loudest voice is forwarded.
        self.shedding = False
        self._load = MixLoad()
        self._shed_limits = ShedLimits()

    def is_audible(self, seat_id: str) -> bool:
        return seat_id in self._audible

    def voice_inlet(self, seat_id: str) -> VoiceInlet:
        voice = _Voice()
        self._voices[seat_id] = voice

        def inlet(seq: int, timestamp: int, payload: bytes, level: int | None) -> None:
            if seat_id not in self._audible or self._voices.get(seat_id) is not voice:
                _dropped["inaudible"] += 1
                return  # muted, without the floor, or replaced: dropped right here
            forwarded = self._forwarded == seat_id
            voice.level_from_header = level is not None
            if level is not None:
                if is_speech(payload, level):
                    voice.last_speech = self._tick
                    voice.level = -float(level)
                elif not forwarded and not voice.speaking(self._tick):
                    return  # background between talkspurts: never decoded, never mixed
            elif forwarded and len(payload) > DTX_MAX_BYTES:
                # No level in the header: whether the lone voice still speaks is heard from
                # its audio, decoded here since its packets skip the jitter buffer.
                with contextlib.suppress(ValueError):
                    voice.judge(voice.buffer.decoder.decode(payload), self._tick)
            if forwarded:
                self._forward(seat_id, payload, seq, timestamp)
            else:
                voice.buffer.put(seq, timestamp, payload, self._clock())

        self._ensure_ticking()
        return inlet

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
        for seat_id, voice in self._voices.items():
            if seat_id not in seat_ids:
                voice.clear()
        # A voice that may be heard again is read promptly from now on, not on the slow clock.
        quiet_sockets.wake()

    def levels(self) -> Levels:
        return {seat_id: voice.level for seat_id, voice in self._voices.items()}

    def detach(self, seat_id: str) -> None:
        self._voices.pop(seat_id, None)
        self._own.pop(seat_id, None)
        listener = self._listeners.pop(seat_id, None)
        if listener is not None:
            listener.stop()

    async def close(self) -> None:
        _tick_costs.pop(self, None)
        for seat_id in list(self._voices) + list(self._listeners):
            self.detach(seat_id)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    def mix_once(self, skipped: int = 0) -> None:
        """One 20 ms tick: forward a lone voice, or mix the voices and send each listener theirs.

        ``skipped`` ticks were missed before this one (the clock woke late): their frames
        are dropped, so what is mixed stays as recent as it would have been on time.
        """
        now = self._clock()
        if skipped:
            self._tick += skipped
            self.skipped_ticks += skipped
            for seat_id, voice in self._voices.items():
                if seat_id != self._forwarded and seat_id in self._audible:
                    for _ in range(skipped):
                        if voice.buffer.pull(now) is None:
                            break
        self._tick += 1
        tick_pts = self._tick * FRAME_SAMPLES
        self._choose_forwarded()
        contributions: dict[str, Pcm] = {}
        for seat_id, voice in self._voices.items():
            if seat_id == self._forwarded:
                continue
            if self._forwarded is not None and self.shedding:
                # Shedding: only the forwarded voice is heard; the others are not decoded
                # (what they had waiting is let go, so they start fresh when mixing resumes).
                voice.buffer.clear()
                if not voice.speaking(self._tick):
                    voice.level = -127.0
                continue
            pcm = voice.buffer.pull(now) if seat_id in self._audible else None
            if pcm is not None and not voice.level_from_header:
                voice.judge(pcm, self._tick)
            if not voice.speaking(self._tick):
                voice.level = -127.0
                continue  # silence (or background noise) is never mixed
            if pcm is not None:
                contributions[seat_id] = pcm

        own: dict[str, Encoded | None] = {}
        pts = max(tick_pts, self._timeline.next_pts)
        seq = self._timeline.next_seq
        for seat_id in list(self._own):
            if seat_id not in contributions:
                # Out of the mix: finish this stream's silence tail, then the shared one.
                stream = self._own[seat_id]
                own[seat_id] = self._encode(stream, None, pts)
                if stream.tail == 0:
                    del self._own[seat_id]
        shared: Encoded | None = None
        shared_data: bytes | None = None
        if self._forwarded is None:
            shared_pcm: Pcm | None = None
            minus: dict[str, Pcm | None] = {}
            if contributions:
                total, minus = mix(contributions)
                shared_pcm = clip(total)
            shared = self._encode(self._shared, shared_pcm, pts)
            shared_data = None if shared is None else bytes(shared)
            for seat_id, pcm in minus.items():
                if seat_id in self._listeners:
                    if seat_id not in self._own:
                        self._own[seat_id] = _Stream()
                    own[seat_id] = self._encode(self._own[seat_id], pcm, pts)
        sent = False
        now = time.time()
        for seat_id, listener in self._listeners.items():
            packet, data = (own[seat_id], None) if seat_id in own else (shared, shared_data)
            if packet is not None and seat_id != self._forwarded:
                listener.push(packet, data, seq, now=now)
                sent = True
        if sent:
            self._timeline.mixed(pts)

    def _choose_forwarded(self) -> None:
        """Forward the one voice speaking, unchanged; mix when several are (or none is)."""
        speaking = [
            seat_id
            for seat_id, voice in self._voices.items()
            if seat_id in self._audible and voice.speaking(self._tick)
        ]
        chosen: str | None
        if self.shedding:
            # Mixing cannot keep up: the loudest voice goes on, forwarded (no codec work).
            chosen = loudest({s: self._voices[s].level for s in speaking}, self._forwarded)
        else:
            chosen = speaking[0] if self._forward_lone_voice and len(speaking) == 1 else None
        if chosen == self._forwarded:
            return
        self._forwarded = chosen
        self._timeline.switch()
        if chosen is not None:
            # The mix's streams stop here (they would delay the voice); what the voice had
            # buffered goes out at once. The lone speaker hears nobody while forwarded, so
            # no stream of the mix is kept for them either.
            self._shared.tail = 0
            self._own.clear()
            if chosen in self._listeners:
                self._listeners[chosen].skip_gap()
            for payload in self._voices[chosen].buffer.drain():
                self._forward(chosen, payload)

    def _forward(
        self, seat_id: str, payload: bytes, seq: int | None = None, timestamp: int | None = None
    ) -> None:
        """Send one packet of the lone voice to everyone else, placed on the circle's timeline
        by offset from its own numbering (signaling.rtp_rewriter); one without (drained from
        the voice's buffer) goes out next."""
        now_pts = self._tick * FRAME_SAMPLES
        placed = (
            self._timeline.mixed(now_pts)
            if seq is None or timestamp is None
            else self._timeline.forwarded(seq, timestamp, now_pts)
        )
        if placed is None:
            _dropped["late"] += 1
            return  # a duplicate, or older than this voice's first forwarded packet
        packet = av.Packet(payload)
        packet.pts = placed.pts
        packet.time_base = TIME_BASE
        now = time.time()
        for listener_id, listener in self._listeners.items():
            if listener_id != seat_id:
                listener.push(packet, payload, placed.seq, forwarded=True, now=now)

    def _encode(self, stream: _Stream, pcm: Pcm | None, pts: int) -> Encoded | None:
        if pcm is not None or stream.tail:
            self.encodes += 1
        return stream.encode(pcm, pts)

    def _ensure_ticking(self) -> None:
        if not self._run_clock:
            return
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                _tick_forever(self.mix_once, self.observe_tick)
            )

    def observe_tick(
        self, *, late: float, cost: float, now: float, skipped: int = 0, ran: int = 1
    ) -> None:
        """How late the clock woke, the ticks it skipped and ran, and what a tick cost:
        whether to shed the mix. The cost that counts is the whole process's: every
        circle's last tick, all on one loop."""
        _tick_costs[self] = cost
        self._load = observe_tick(
            self._load,
            self._shed_limits,
            late=late,
            cost=_process_tick_cost(),
            period=TICK_SECONDS,
            now=now,
            skipped=skipped,
            ran=ran,
        )
        if self._load.shedding != self.shedding:
            self.shedding = self._load.shedding
            state = "shed: forwarding the loudest voice" if self.shedding else "mixing again"
            log.info("audio mix %s", state)


def _process_tick_cost() -> float:
    """The CPU time one tick of every circle in this process takes (their last ticks)."""
    return sum(_tick_costs.values())


async def _tick_forever(tick: Callable[[int], None], observe: Callable[..., None]) -> None:
    """The circle's clock: one tick every TICK_SECONDS on a fixed grid; a late wake-up runs
    the ticks it missed back to back as far as the process can afford them and skips the
    rest, the oldest first (rooms.tick_schedule), and reports how late it was and what a
    tick cost, for the decision to shed the mix."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TICK_SECONDS
    while True:
        await asyncio.sleep(max(deadline - loop.time(), 0))
        woke = loop.time()
        plan = plan_tick(deadline, woke, TICK_SECONDS, tick_cost=_process_tick_cost())
        # The tick's CPU time, not its wall time: on a starved machine the wall time of even
        # a cheap tick grows with every preemption, and shedding a cheap mix helps nobody.
        cpu = time.thread_time()
        for skipped in (plan.skipped, *(0 for _ in range(plan.catch_up))):
            try:
                tick(skipped)
            except Exception:  # the mixer must outlive one bad frame
                log.exception("audio mix tick failed")
        ran = 1 + plan.catch_up
        cost = (time.thread_time() - cpu) / ran
        observe(late=woke - deadline, cost=cost, now=loop.time(), skipped=plan.skipped, ran=ran)
        deadline = plan.next_deadline
