"""A process of bench bots: many participants on one event loop, with cheap media.

Run by bench/run.py (``python -m bench.bots`` with a JSON plan on stdin; a JSON report on
stdout). Each bot joins through its target's real signalling (Hearth's WebSocket protocol or
Janus's HTTP API), and holds an aiortc peer connection for ICE, DTLS and SRTP only:

- what it sends is pre-encoded (bench.media): no encoder runs;
- what it receives never enters aiortc's jitter buffer or decoder (the same hook as the
  server's); most bots even skip SRTP decryption and read only the clear RTP header, to
  count packets and losses. A few sampled listeners decrypt and decode, to detect each
  speaker's tone (delivery) and the start of each marked burst (latency). They also keep
  what they received and, after the window, play it out through a model jitter buffer
  (bench.playout): continuity (frames with the tone at its level) and mouth-to-ear delay.

Listeners send what a browser sends while its person is silent: with DTX a tiny packet every
400 ms, without it a silence packet every 20 ms (``listener_pps`` in the plan). With
``impairment`` in the plan, every bot's link loses, delays and reorders RTP both ways
(bench.impairment).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiortc.rtcrtpsender
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench import media
from bench.concealing_decoder import ConcealingDecoder
from bench.impairment import ImpairedLink, Impairment, impair_rtp_sending
from bench.playout import Received, play_out
from bench.targets import signaller_for
from signaling.peer import restrict_ice_addresses
from signaling.voice import bypass_receive_pipeline

TIME_BASE = fractions.Fraction(1, media.SAMPLE_RATE)
LOUD = 0.1  # a tone at least this loud (of full scale) is heard
# A frame continues the voice if its tone is within 6 dB of the level sent.
AT_LEVEL = media.AMPLITUDE / 2
QUIET_BEFORE_ONSET = 3


class PacedPackets(MediaStreamTrack):
    """A microphone that plays back pre-encoded packets on a real-time schedule."""

    kind = "audio"

    def __init__(self, bot: Bot) -> None:
        super().__init__()
        self.bot = bot
        self.sent = 0
        self.start: float | None = None
        # The RFC 6464 level of the packet last returned (None: the client sends none).
        self.level: int | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        bot = self.bot
        if self.start is None:
            # Speakers start their cycle at a phase of their own, so marks do not coincide.
            self.start = time.monotonic() + bot.phase
        if bot.cycle is not None:
            due = self.start + self.sent * media.FRAME_SECONDS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            index = self.sent % media.CYCLE_FRAMES
            payload = bot.cycle[index]
            self.level = media.cycle_level(index)
            if index == 0 and bot.measuring():
                bot.marks_sent.append(time.monotonic())
            pts = self.sent * media.FRAME_SAMPLES
        else:
            interval = 1 / bot.listener_pps
            due = self.start + self.sent * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            payload = bot.noise[self.sent % len(bot.noise)] if bot.noise else bot.dtx
            # A client sending noise models one without DTX and without levels.
            self.level = None if bot.noise else media.SILENCE_LEVEL
            pts = int(self.sent * interval * media.SAMPLE_RATE)
        self.sent += 1
        packet = av.Packet(payload)
        packet.pts = pts
        packet.time_base = TIME_BASE
        return packet


class _ReportPace:
    """Stands in for the ``random`` module in aiortc's sender, whose RTCP loop sleeps
    ``0.5 + random.random()`` seconds between reports (1 s on average): the sleeps become
    ``mean * (0.5 + U)``, the same spread around another mean. aiortc has no setting for it,
    and the loop is otherwise the stock one (its sender reports count what it sent)."""

    def __init__(self, mean: float) -> None:
        self._mean = mean

    def random(self) -> float:
        return self._mean * (0.5 + random.random()) - 0.5


def report_like_a_browser(mean: float) -> None:
    """The bots' RTCP reports every ``mean`` seconds on average on each stream, as Chromium's
    on audio (libwebrtc's default audio report interval is 5 s; aiortc's is 1 s). Every
    target of a run gets the same: this is the load of browsers, not a server's choice."""
    aiortc.rtcrtpsender.random = _ReportPace(mean)  # type: ignore[attr-defined]


def send_levels(sender: Any, track: PacedPackets) -> None:
    """Put each packet's RFC 6464 level in its RTP header, as a browser does (aiortc's sender
    computes levels only for frames it encodes itself; these packets come encoded)."""
    stock = sender._next_encoded_frame

    async def next_encoded_frame(codec: Any) -> Any:
        frame = await stock(codec)
        if frame is not None and track.level is not None:
            frame.audio_level = -track.level  # aiortc's sign: dBov, 0 to -127
        return frame

    sender._next_encoded_frame = next_encoded_frame


class _HeaderOnly:
    """SRTP for a bot that only counts: RTP headers are in the clear, so skip decryption."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def unprotect(self, data: bytes) -> bytes:
        return data

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return bytes(self._session.unprotect_rtcp(data))

    def protect(self, data: bytes) -> bytes:
        return bytes(self._session.protect(data))

    def protect_rtcp(self, data: bytes) -> bytes:
        return bytes(self._session.protect_rtcp(data))


@dataclass
class Slot:
    """One receive track: its packets, and for a sampled bot its own decoder and meter."""

    seqs: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    decoder: Any = None
    meter: media.ToneMeter | None = None
    quiet_frames: list[int] = field(default_factory=lambda: [0, 0, 0])
    downlink: ImpairedLink | None = None


@dataclass
class Bot:
    spec: dict[str, Any]
    window: tuple[float, float]
    cycle: list[bytes] | None
    dtx: bytes
    phase: float
    sampled: bool
    listener_pps: float = 1 / media.DTX_INTERVAL
    slots: int = 1  # receive tracks offered (Hearth's page offers several)
    noise: list[bytes] | None = None  # a silent listener's background noise, if not DTX
    levels: bool = False  # RFC 6464 levels in the packets sent, as a browser's
    rtcp_seconds: float = 1.0  # the mean interval of the bot's RTCP reports, every stream
    impairment: Impairment = field(default_factory=Impairment)
    marks_sent: list[float] = field(default_factory=list)
    receiving: list[Slot] = field(default_factory=list)
    onsets: list[tuple[int, float]] = field(default_factory=list)  # (tone index, time)
    loud_frames: list[int] = field(default_factory=lambda: [0, 0, 0])
    frames: int = 0
    join_seconds: float | None = None
    joined_at: float | None = None
    error: str | None = None
    pc: RTCPeerConnection | None = None
    uplink: ImpairedLink | None = None

    def __post_init__(self) -> None:
        self.receiving = [Slot() for _ in range(max(1, self.slots))]

    def arriving(self, slot: int) -> Any:
        """The receive hook of one receive track."""

        def arrive(
            seq: int, timestamp: int, payload: bytes, level: int | None, waited: float = 0.0
        ) -> None:
            """A packet off the wire: through the impaired link, if any, to the inlet (a
            bot's sockets are read as each packet arrives: nothing ``waited``)."""
            link = self.receiving[slot].downlink
            if link is None:
                self.inlet(slot, seq, timestamp, payload, level)
            else:
                link.put(slot, seq, timestamp, payload, level)

        return arrive

    def measuring(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.window[0] <= now < self.window[1]

    def inlet(self, slot: int, seq: int, timestamp: int, payload: bytes, level: int | None) -> None:
        now = time.monotonic()
        if not self.measuring(now):
            return
        receiving = self.receiving[slot]
        receiving.seqs.append(seq)
        if not self.sampled:
            return
        receiving.received.append((now, seq, timestamp, payload))
        if receiving.decoder is None:
            receiving.decoder = av.CodecContext.create("libopus", "r")
            receiving.decoder.format = "s16"
            receiving.decoder.layout = "mono"
            receiving.decoder.sample_rate = media.SAMPLE_RATE
            receiving.meter = media.ToneMeter()
        assert receiving.meter is not None
        try:
            decoded = receiving.decoder.decode(av.Packet(payload))
        except av.error.FFmpegError:
            return
        quiet_frames = receiving.quiet_frames
        for frame in decoded:
            amplitudes = receiving.meter.amplitudes(frame.to_ndarray().reshape(-1))
            if slot == 0:
                self.frames += 1
            for i, amplitude in enumerate(amplitudes):
                if amplitude < LOUD:
                    quiet_frames[i] += 1
                    continue
                self.loud_frames[i] += 1
                # A burst starts after a few quiet frames (counted in frames, not time, so
                # late arrivals do not look like new bursts).
                if quiet_frames[i] >= QUIET_BEFORE_ONSET:
                    self.onsets.append((i, now))
                quiet_frames[i] = 0

    def play_out(self) -> tuple[list[int], list[tuple[int, float]]]:
        """Frames at level per tone, and each burst's start as played (tone, time), over
        every receive track (each through a receiver of its own, as a page plays them)."""
        at_level = [0, 0, 0]
        onsets: list[tuple[int, float]] = []
        for receiving in self.receiving:
            levels, starts = self._play_out(receiving.received)
            at_level = [a + b for a, b in zip(at_level, levels, strict=True)]
            onsets += starts
        return at_level, sorted(onsets, key=lambda o: o[1])

    def _play_out(self, received: list[Received]) -> tuple[list[int], list[tuple[int, float]]]:
        at_level = [0, 0, 0]
        onsets: list[tuple[int, float]] = []
        if not received:
            return at_level, onsets
        # A browser's receiver: a lost frame comes back from the next packet's FEC copy if it
        # has one, or is concealed (NetEq does the same with libopus).
        decoder = ConcealingDecoder()
        meter = media.ToneMeter()
        quiet = [QUIET_BEFORE_ONSET] * 3
        previous: int | None = None
        for played_at, seq, payload in play_out(received):
            frames = []
            if previous is not None and seq - previous > 1:
                missing = seq - previous - 1
                frames += [decoder.conceal(media.FRAME_SAMPLES) for _ in range(missing - 1)]
                frames.append(decoder.recover(payload, media.FRAME_SAMPLES))
            previous = seq
            frames.append(decoder.decode(payload))
            for pcm in frames:
                if len(pcm) < media.FRAME_SAMPLES:
                    continue
                for i, amplitude in enumerate(meter.amplitudes(pcm[: media.FRAME_SAMPLES])):
                    if amplitude >= AT_LEVEL:
                        at_level[i] += 1
                    if amplitude < LOUD:
                        quiet[i] += 1
                        continue
                    if quiet[i] >= QUIET_BEFORE_ONSET:
                        onsets.append((i, played_at))
                    quiet[i] = 0
        return at_level, onsets

    def report(self) -> dict[str, Any]:
        at_level, played_onsets = self.play_out() if self.sampled else ([0, 0, 0], [])
        return {
            "circle": self.spec["circle"],
            "newcomer": self.spec.get("newcomer", False),
            "tone": self.spec.get("tone"),
            "sampled": self.sampled,
            "join_seconds": self.join_seconds,
            "joined_at": self.joined_at,
            # Each refusal met on the way in (server_busy, circle_not_open), in order.
            "refusals": self.spec.get("refusals", []),
            "error": self.error,
            "received": sum(len(set(r.seqs)) for r in self.receiving),
            "expected": sum(_expected(r.seqs) for r in self.receiving),
            "marks_sent": self.marks_sent,
            "onsets": self.onsets,
            "loud_frames": self.loud_frames,
            "frames": self.frames,
            "at_level_frames": at_level,
            "played_onsets": played_onsets,
            "uplink_dropped": self.uplink.dropped if self.uplink else 0,
            "downlink_dropped": sum(r.downlink.dropped for r in self.receiving if r.downlink),
        }


def _expected(seqs: list[int]) -> int:
    if not seqs:
        return 0
    extended = [seqs[0]]
    for seq in seqs[1:]:
        near = extended[-1]
        extended.append(near + ((seq - near + 0x8000) & 0xFFFF) - 0x8000)
    return max(extended) - min(extended) + 1


async def run_bot(bot: Bot, signaller: Any, http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    # Like a page, a refused bot knocks again (bench.targets), until the window is nearly over.
    bot.spec.setdefault("give_up_at", bot.window[1] - 1.0)
    try:
        async with signaller.session(http, bot.spec) as session:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            bot.pc = pc
            track = PacedPackets(bot)
            sender = pc.addTrack(track)
            if bot.levels:
                send_levels(sender, track)
            for _ in range(bot.slots - 1):  # more receive tracks, as Hearth's page offers
                pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            for slot, transceiver in enumerate(pc.getTransceivers()):
                bypass_receive_pipeline(
                    transceiver.receiver, bot.arriving(slot), report_every=bot.rtcp_seconds
                )
            answer = await session.exchange(pc.localDescription.sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            async with asyncio.timeout(30):
                while pc.connectionState != "connected":
                    if pc.connectionState in ("failed", "closed"):
                        raise ConnectionError(pc.connectionState)
                    await asyncio.sleep(0.01)
            bot.joined_at = time.monotonic()
            bot.join_seconds = bot.joined_at - started
            dtls = pc.getTransceivers()[0].receiver.transport
            if not bot.sampled:
                dtls._rx_srtp = _HeaderOnly(dtls._rx_srtp)
            if bot.impairment.active:
                rng = random.Random(bot.spec["name"])  # the same network in every run
                bot.uplink = impair_rtp_sending(dtls, bot.impairment, rng)
                for receiving in bot.receiving:
                    receiving.downlink = ImpairedLink(bot.impairment, bot.inlet, rng)
            await asyncio.sleep(max(0.0, bot.window[1] - time.monotonic()))
            await session.leave()
    except Exception as exc:
        bot.error = f"{type(exc).__name__}: {exc}"
    finally:
        if bot.pc is not None:
            with contextlib.suppress(Exception):
                await bot.pc.close()


async def main_async(plan: dict[str, Any]) -> list[dict[str, Any]]:
    restrict_ice_addresses((plan["ice_address"],))
    window = (plan["window"][0], plan["window"][1])
    impairment = Impairment.from_plan(plan.get("impairment"))
    cycles = {i: media.speech_cycle(f, impairment.loss) for i, f in enumerate(media.TONES)}
    dtx = media.dtx_packet()
    noise = (
        [media.noise_cycle(seed) for seed in range(4)]
        if plan.get("listener_sound") == "noise"
        else None
    )
    signaller = signaller_for(plan["target"])
    rtcp_seconds = plan.get("rtcp_seconds", 1.0)
    report_like_a_browser(rtcp_seconds)
    bots = [
        Bot(
            spec=spec,
            window=window,
            cycle=cycles[spec["tone"]] if spec.get("tone") is not None else None,
            dtx=dtx,
            phase=(spec.get("tone") or 0) * media.CYCLE_FRAMES * media.FRAME_SECONDS / 3,
            sampled=spec.get("sampled", False),
            listener_pps=plan.get("listener_pps", 1 / media.DTX_INTERVAL),
            slots=plan.get("slots", 1),
            noise=noise[j % len(noise)] if noise else None,
            levels=plan.get("levels", False),
            rtcp_seconds=rtcp_seconds,
            impairment=impairment,
        )
        for j, spec in enumerate(plan["bots"])
    ]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = []
        for bot in bots:
            await asyncio.sleep(max(0.0, bot.spec["start_at"] - time.monotonic()))
            tasks.append(asyncio.create_task(run_bot(bot, signaller, http)))
        await asyncio.gather(*tasks)
    return [bot.report() for bot in bots]


def main() -> None:
    plan = json.load(sys.stdin)
    reports = asyncio.run(main_async(plan))
    json.dump(reports, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
