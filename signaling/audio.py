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

from rooms.slots import assign_slots
from rooms.tick_schedule import (
    MixLoad,
    ShedLimits,
    loudest,
    next_grid_time,
    observe_tick,
    plan_tick,
)
from signaling.grid_clock import sleep_until
from signaling.jitter_buffer import JitterBuffer
from signaling.opus_codec import silk_flags
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
# Receive slots a listener's connection may have (docs/architecture.md): while no more voices
# speak than the circle's listeners all have slots for, each goes to its own slot unchanged.
MAX_SLOTS = 3
# A packet whose RFC 6464 level is below -SILENT_LEVEL dBov is background, not speech.
SILENT_LEVEL = 60
# A voice without levels that was heard speaking is judged again only once this many ticks
# have passed since; its packets in between count as speech as long as its own encoder says
# they carry voice. A forwarded voice's packets are not each decoded for the speech detector.
JUDGE_EVERY_TICKS = 5

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

    def listener_tracks(self, seat_id: str, slots: int) -> list[MediaStreamTrack]:
        """New outbound tracks for a connection that offered ``slots`` receive tracks: the
        first carries the mix or a voice, the others (at most MAX_SLOTS in all) one voice
        each while several speak."""
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
        self.judged_seq: int | None = None  # the last forwarded packet decoded to be judged
        self.judged_at = -(10**9)  # tick of the last frame judged
        self.judged_speech = False  # and whether it was speech
        self.previous: tuple[int, bytes] | None = None  # the last packet heard (seq, payload)

    def speaking(self, tick: int) -> bool:
        return tick - self.last_speech <= FORWARD_HOLD_TICKS

    def judged_lately(self, tick: int) -> bool:
        """Judged speaking so recently that the next verdict can wait (JUDGE_EVERY_TICKS):
        until then what it sends is taken as speech, as the last verdict said."""
        return self.judged_speech and tick - self.judged_at < JUDGE_EVERY_TICKS

    def hear(self, payload: bytes, seq: int, tick: int) -> None:
        """A packet of a forwarded voice without levels: whether it still speaks, decoding
        only when that is in question (its packets skip the jitter buffer and its decoder)."""
        previous, self.previous = self.previous, (seq, payload)
        if encoder_says_silent(payload):
            return
        if self.judged_lately(tick):
            self.last_speech = tick
            return
        decoder = self.buffer.decoder
        with contextlib.suppress(ValueError):
            if self.judged_seq is None or (seq - self.judged_seq) & 0xFFFF != 1:
                # Not the packet after the last one decoded: start afresh, from the packet
                # before if it is at hand (a decoder's first frame is not yet the voice's).
                decoder.reset()
                if previous is not None and (seq - previous[0]) & 0xFFFF == 1:
                    decoder.decode(previous[1])
            self.judged_seq = seq
            self.judge(decoder.decode(payload), tick)

    def judge(self, pcm: Pcm, tick: int) -> None:
        """A decoded frame of a voice without levels: is it speech, and how loud."""
        if self.detector is None:
            self.detector = SpeechDetector()
        self.judged_at = tick
        self.judged_speech = self.detector.is_speech(pcm)
        if self.judged_speech:
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


def encoder_says_silent(payload: bytes) -> bool:
    """Whether the sender's own encoder marked the packet as without voice activity: DTX,
    or the SILK layer's VAD flags all clear (read without decoding, signaling.opus_codec).
    Such a packet is never speech; one that claims voice (or carries no SILK layer) still
    has to be judged from its audio."""
    if len(payload) <= DTX_MAX_BYTES:
        return True
    flags = silk_flags(payload)
    return flags is not None and not flags[0]


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
        # Each listener's tracks, one per receive slot (the first also carries the mix).
        self._listeners: dict[str, list[ListenerTrack]] = {}
        self._audible: frozenset[str] = frozenset()
        self._shared = _Stream()
        self._own: dict[str, _Stream] = {}  # mix-minus streams of the voices in the mix
        self._tick = 0
        # The circle's outbound sequence numbers and timestamps (forwarded packets by offset).
        self._timeline = OutboundTimeline(FRAME_SAMPLES, SAMPLE_RATE)
        # The voices forwarded unchanged, each in its slot (rooms.slots); empty while mixing.
        self._slots: dict[str, int] = {}
        self._last_slot: dict[str, int] = {}
        # Slots 1.. have timelines of their own (slot 0 shares the mix's).
        self._slot_timelines: list[OutboundTimeline] = []
        self._ticker: asyncio.Task[None] | None = None
        # While the clock sleeps (nothing for a tick to do): when it stopped, and the tick
        # then. The tick count runs on from these (``_sync_tick``), so a voice's hold and a
        # forwarded packet's place on the timeline stay true without ticks.
        self._paused_at: tuple[float, int] | None = None
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

        def inlet(
            seq: int, timestamp: int, payload: bytes, level: int | None, waited: float = 0.0
        ) -> None:
            if seat_id not in self._audible or self._voices.get(seat_id) is not voice:
                _dropped["inaudible"] += 1
                return  # muted, without the floor, or replaced: dropped right here
            if self._paused_at is not None:
                self._sync_tick()
            forwarded = seat_id in self._slots
            voice.level_from_header = level is not None
            if level is not None:
                if is_speech(payload, level):
                    voice.last_speech = self._tick
                    voice.level = -float(level)
                elif not forwarded and not voice.speaking(self._tick):
                    return  # background between talkspurts: never decoded, never mixed
            elif forwarded:
                # No level in the header: whether the lone voice still speaks is heard from
                # its audio, decoded here (its packets skip the jitter buffer) when in doubt.
                voice.hear(payload, seq, self._tick)
            elif not voice.speaking(self._tick) and encoder_says_silent(payload):
                return  # background its own encoder calls silent: never decoded, never mixed
            if forwarded:
                self._forward(seat_id, payload, seq, timestamp)
            else:
                # When it arrived: it may have waited in its socket for an instant of the grid.
                voice.buffer.put(seq, timestamp, payload, self._clock() - waited)
                if self._paused_at is not None:
                    self._ensure_ticking()  # a voice to mix, or to give a slot

        self._ensure_ticking()
        return inlet

    def listener_track(self, seat_id: str) -> MediaStreamTrack:
        return self.listener_tracks(seat_id, 1)[0]

    def listener_tracks(self, seat_id: str, slots: int) -> list[MediaStreamTrack]:
        for old in self._listeners.pop(seat_id, []):
            old.stop()
        tracks = [ListenerTrack() for _ in range(max(1, min(slots, MAX_SLOTS)))]
        self._listeners[seat_id] = tracks
        self._ensure_ticking()
        return list(tracks)

    @property
    def forwarded(self) -> dict[str, int]:
        """The voices forwarded unchanged now, and the slot each is in."""
        return dict(self._slots)

    def set_audible(self, seat_ids: frozenset[str]) -> None:
        # The hub says so after every decision, most of which change nobody's audibility; a
        # change is rare, and the sockets' modes are looked at again only then.
        if seat_ids == self._audible:
            return
        self._audible = seat_ids
        for seat_id, voice in self._voices.items():
            if seat_id not in seat_ids:
                voice.clear()
        # A voice that may be heard again is read promptly from now on, not on the slow clock;
        # one that may not, on it.
        quiet_sockets.wake()

    def levels(self) -> Levels:
        return {seat_id: voice.level for seat_id, voice in self._voices.items()}

    def detach(self, seat_id: str) -> None:
        self._voices.pop(seat_id, None)
        self._own.pop(seat_id, None)
        for listener in self._listeners.pop(seat_id, []):
            listener.stop()
        self._last_slot.pop(seat_id, None)

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
        are dropped undecoded (JitterBuffer.skip), so what is mixed stays as recent as it
        would have been on time, and a late tick costs no more than one on time.
        """
        now = self._clock()
        if skipped:
            self._tick += skipped
            self.skipped_ticks += skipped
            for seat_id, voice in self._voices.items():
                if seat_id not in self._slots and seat_id in self._audible:
                    voice.buffer.skip(skipped, now)
        self._tick += 1
        tick_pts = self._tick * FRAME_SAMPLES
        self._choose_forwarded()
        contributions: dict[str, Pcm] = {}
        for seat_id, voice in self._voices.items():
            if seat_id in self._slots:
                continue
            if self._slots and self.shedding:
                # Shedding: only the forwarded voice is heard; the others are not decoded
                # (what they had waiting is let go, so they start fresh when mixing resumes).
                voice.buffer.clear()
                if not voice.speaking(self._tick):
                    voice.level = -127.0
                continue
            pcm = voice.buffer.pull(now) if seat_id in self._audible else None
            if pcm is not None and not voice.level_from_header:
                if voice.judged_lately(self._tick):
                    voice.last_speech = self._tick
                else:
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
        if not self._slots:
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
        for seat_id, tracks in self._listeners.items():
            packet, data = (own[seat_id], None) if seat_id in own else (shared, shared_data)
            if packet is not None and seat_id not in self._slots:
                tracks[0].push(packet, data, seq, now=now)
                sent = True
        if sent:
            self._timeline.mixed(pts)

    def _choose_forwarded(self) -> None:
        """Forward the voices speaking unchanged, each in a slot of its own, while they fit in
        every listener's slots (rooms.slots); mix when more speak (or none does)."""
        speaking = [
            seat_id
            for seat_id, voice in self._voices.items()
            if seat_id in self._audible and voice.speaking(self._tick)
        ]
        chosen: dict[str, int] | None
        if self.shedding:
            # Mixing cannot keep up: the loudest voice goes on, forwarded (no codec work).
            current = next((s for s, slot in self._slots.items() if slot == 0), None)
            voice = loudest({s: self._voices[s].level for s in speaking}, current)
            chosen = None if voice is None else {voice: 0}
        elif not self._forward_lone_voice:
            chosen = None
        else:
            slots = min((len(tracks) for tracks in self._listeners.values()), default=1)
            chosen = assign_slots(speaking, slots, self._slots, self._last_slot)
        chosen = chosen or {}
        if chosen == self._slots:
            return
        if not self._slots:
            # The mix's streams stop here (they would delay the voices). A speaker forwarded
            # hears the others in their slots, so no stream of the mix is kept for them either.
            self._shared.tail = 0
            self._own.clear()
        previous, self._slots = self._slots, chosen
        changed = {slot for voice, slot in chosen.items() if previous.get(voice) != slot}
        changed |= {slot for voice, slot in previous.items() if chosen.get(voice) != slot}
        for slot in sorted(changed):
            # Another voice (or none) in this slot: its timeline anchors afresh on the next
            # packet, and every listener's stream in it goes on without a gap.
            self._timeline_for(slot).switch()
            for tracks in self._listeners.values():
                if slot < len(tracks):
                    tracks[slot].skip_gap()
        for voice, slot in chosen.items():
            self._last_slot[voice] = slot
            if previous.get(voice) != slot:
                # What the voice had buffered goes out at once.
                for payload in self._voices[voice].buffer.drain():
                    self._forward(voice, payload)

    def _timeline_for(self, slot: int) -> OutboundTimeline:
        if slot == 0:
            return self._timeline
        while len(self._slot_timelines) < slot:
            self._slot_timelines.append(OutboundTimeline(FRAME_SAMPLES, SAMPLE_RATE))
        return self._slot_timelines[slot - 1]

    def _forward(
        self, seat_id: str, payload: bytes, seq: int | None = None, timestamp: int | None = None
    ) -> None:
        """Send one packet of a forwarded voice to everyone else, in the voice's slot, placed
        on that slot's timeline by offset from its own numbering (signaling.rtp_rewriter);
        one without (drained from the voice's buffer) goes out next."""
        slot = self._slots[seat_id]
        timeline = self._timeline_for(slot)
        now_pts = self._tick * FRAME_SAMPLES
        placed = (
            timeline.mixed(now_pts)
            if seq is None or timestamp is None
            else timeline.forwarded(seq, timestamp, now_pts)
        )
        if placed is None:
            _dropped["late"] += 1
            return  # a duplicate, or older than this voice's first forwarded packet
        packet = av.Packet(payload)
        packet.pts = placed.pts
        packet.time_base = TIME_BASE
        now = time.time()
        for listener_id, tracks in self._listeners.items():
            if listener_id != seat_id and slot < len(tracks):
                tracks[slot].push(packet, payload, placed.seq, forwarded=True, now=now)

    def _encode(self, stream: _Stream, pcm: Pcm | None, pts: int) -> Encoded | None:
        if pcm is not None or stream.tail:
            self.encodes += 1
        return stream.encode(pcm, pts)

    def _ensure_ticking(self) -> None:
        if not self._run_clock:
            return
        if self._ticker is None or self._ticker.done():
            self._sync_tick()
            self._paused_at = None
            self._ticker = asyncio.get_running_loop().create_task(
                _tick_forever(self.mix_once, self.observe_tick, self._pause_if_idle)
            )

    def _pause_if_idle(self) -> bool:
        """After a tick: whether the clock may sleep, because the next tick would do nothing.

        That is while every voice that may be heard is either forwarded in a slot (its
        packets go out as they arrive) or has nothing buffered and is not being played, no
        stream has a silence tail to finish, and the mix is not shed. A lone speaker is
        then forwarded with no clock running at all: a wake-up of the loop every 20 ms per
        circle saved (docs/performance.md). The first packet put in a voice's buffer
        starts the clock again (``inlet``)."""
        if self.shedding or self._shared.tail or self._own:
            return False
        for seat_id, voice in self._voices.items():
            if seat_id in self._slots or seat_id not in self._audible:
                continue
            if voice.buffer.playing or voice.buffer.waiting:
                return False
        self._paused_at = (self._clock(), self._tick)
        _tick_costs.pop(self, None)  # this circle's ticks cost nothing while paused
        return True

    def _sync_tick(self) -> None:
        """While the clock sleeps, the tick count follows the time that passed."""
        if self._paused_at is not None:
            since, tick = self._paused_at
            self._tick = tick + int((self._clock() - since) / TICK_SECONDS)

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


async def _tick_forever(
    tick: Callable[[int], None], observe: Callable[..., None], pause: Callable[[], bool]
) -> None:
    """The circle's clock: one tick every TICK_SECONDS on a fixed grid; a late wake-up runs
    the ticks it missed back to back as far as the process can afford them and skips the
    rest, the oldest first (rooms.tick_schedule), and reports how late it was and what a
    tick cost, for the decision to shed the mix. It ends when ``pause`` says the next tick
    would have nothing to do (it is started again when there is)."""
    loop = asyncio.get_running_loop()
    # On the process's grid: every circle ticks at the same instants, one wake-up for all.
    deadline = next_grid_time(loop.time())
    while True:
        await sleep_until(deadline)
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
        if pause():
            return
        deadline = plan.next_deadline
