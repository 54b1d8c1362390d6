"""Opus tuned for voice, and the hook that takes a voice's packets before aiortc's pipeline.

aiortc's stock audio receiver holds every packet in a jitter buffer, decodes it on a thread of
its own and hops back to the event loop per frame (docs/performance.md has the cost). Hearth
takes the packets right after SRTP and RTP parsing instead and hands them to the audio path,
which keeps its own small buffer and decodes only the voices that may be heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import random
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import aioice.ice
import av
import pylibsrtp
from aiortc.codecs import CODECS
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (
    AnyRtcpPacket,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)

from rooms.tick_schedule import GRID_SECONDS, is_every_nth_instant
from signaling.grid_clock import sleep_to_grid
from signaling.rtcp_stats import NTP_UNIX_OFFSET, ReceptionStats, SendingStats, middle_32
from signaling.telemetry import dropped_packets as _dropped

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
VOICE_BITRATE = 32_000
# Mono, in-band FEC and DTX: a silent browser then sends a 1-3 byte packet every 400 ms.
VOICE_FMTP: dict[str, str | int | None] = {
    "minptime": 10,
    "useinbandfec": 1,
    "usedtx": 1,
    "stereo": 0,
    "sprop-stereo": 0,
    "maxaveragebitrate": VOICE_BITRATE,
}
# Packets this short carry no speech: DTX and comfort noise. They are never decoded.
DTX_MAX_BYTES = 3

# (sequence number, RTP timestamp, Opus payload, RFC 6464 level in -dBov or None)
# A voice's packets as they come in: sequence number, timestamp, Opus payload, RFC 6464
# level (None without the extension), and how long ago it arrived (s; 0 when read at once).
VoiceInlet = Callable[[int, int, bytes, int | None, float], None]

log = logging.getLogger(__name__)


def tune_opus_for_voice() -> None:
    """Make this process's peers negotiate Opus only, set up the way a voice needs it.

    aiortc answers with its own codec entry's parameters, so setting them here puts them in
    every answer. The other codecs go: the audio path neither decodes nor sends them.
    """
    opus = [c for c in CODECS["audio"] if c.mimeType.lower() == "audio/opus"]
    for codec in opus:
        codec.parameters = dict(VOICE_FMTP)
    CODECS["audio"][:] = opus


# The mean interval of this server's RTCP reports, as aiortc's. A browser reports on its audio
# streams every 5 s (libwebrtc); a server that reports each second lets the browser's Opus
# follow the loss on its uplink sooner (in-band FEC is tuned from these reports).
RTCP_MEAN_SECONDS = 1.0


def _rtcp_interval(mean: float = RTCP_MEAN_SECONDS) -> float:
    # RFC 3550 section 6.3.1: vary the interval over [0.5, 1.5] times its mean, so reports of
    # many streams do not synchronise.
    return mean * (0.5 + random.random())


# RTCP reports are sent on every RTCP_GRID_EVERY-th instant of the process's timer grid
# (rooms.tick_schedule): each stream still at its own randomised interval, rounded down to the
# grid's 100 ms, and all streams due then in one wake-up of the loop. A participant has a
# report loop per stream (their voice, each receive slot): waking for each was about 4 of a
# 12-person circle's wake-ups in 10 while nobody spoke (docs/performance.md).
RTCP_GRID_EVERY = 5


async def sleep_until_report(mean: float = RTCP_MEAN_SECONDS) -> None:
    """Until a stream's next RTCP report is due: a randomised interval around ``mean``
    seconds, on the grid (the grid instant just before the interval ends, so no report is
    later than aiortc's)."""
    await sleep_to_grid(RTCP_GRID_EVERY, _rtcp_interval(mean) - RTCP_GRID_EVERY * GRID_SECONDS)


# A packet read this many milliseconds or more after it arrived is said to have waited (the
# arrival time is in whole milliseconds: less is a reading error, not a wait).
WAITED_MS_MIN = 2


def bypass_receive_pipeline(
    receiver: RTCRtpReceiver,
    inlet: VoiceInlet,
    audible: Callable[[], bool] | None = None,
    report_every: float = RTCP_MEAN_SECONDS,
) -> None:
    """Send ``receiver``'s Opus packets to ``inlet`` instead of aiortc's jitter buffer.

    aiortc has no public hook here: the receiver's packet handler, its ``receive`` and its
    RTCP loop are replaced on this one instance. Receiver reports are built from counters
    kept here (signaling.rtcp_stats): aiortc's own count only what its handler saw, and go
    out every ``report_every`` seconds on average. With ``audible``, packets of a voice
    nobody may hear are dropped before SRTP (VoiceGate).
    """
    opus_types: set[int] = set()
    streams: dict[int, ReceptionStats] = {}

    def stats_for(ssrc: int) -> ReceptionStats:
        stats = streams.get(ssrc)
        if stats is None:
            stats = streams[ssrc] = ReceptionStats(SAMPLE_RATE)
        return stats

    def deliver(packet: RtpPacket, arrival_time_ms: int) -> None:
        stats_for(packet.ssrc).add(packet.sequence_number, packet.timestamp, arrival_time_ms)
        if packet.payload_type not in opus_types:
            return
        level = packet.extensions.audio_level
        # Read on the grid (QuietSockets), a packet waited up to an instant in its socket: a
        # jitter buffer must see when it arrived, not when it was read.
        waited_ms = arrival_now_ms() - arrival_time_ms
        inlet(
            packet.sequence_number,
            packet.timestamp,
            packet.payload,
            None if level is None else level[1],
            waited_ms / 1000 if waited_ms >= WAITED_MS_MIN else 0.0,
        )

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        deliver(packet, arrival_time_ms)

    stock_receive = receiver.receive

    async def receive(parameters: Any) -> None:
        opus_types.update(
            c.payloadType for c in parameters.codecs if c.mimeType.lower() == "audio/opus"
        )
        await stock_receive(parameters)
        # The stock receive starts a decoder thread that will never be fed: let it end.
        receiver._RTCRtpReceiver__decoder_queue.put(None)  # type: ignore[attr-defined]
        if audible is not None:
            dtls = receiver.transport
            gate_voice(dtls.transport._connection, VoiceGate(audible, stats_for), dtls)

    stock_handle_rtcp = receiver._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            stats_for(packet.ssrc).sender_report(packet.sender_info.ntp_timestamp, time.time())
        await stock_handle_rtcp(packet)

    async def run_rtcp() -> None:
        # aiortc's loop, reporting from ``streams``; its stop() waits on these two events.
        receiver._RTCRtpReceiver__rtcp_started.set()  # type: ignore[attr-defined]
        try:
            while True:
                await sleep_until_report(report_every)
                now = time.time()
                blocks = []
                for ssrc, stats in streams.items():
                    report = stats.report(now)
                    if report is not None:
                        blocks.append(RtcpReceiverInfo(ssrc=ssrc, **vars(report)))
                own_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
                if own_ssrc is not None and blocks:
                    await receiver._send_rtcp(RtcpRrPacket(ssrc=own_ssrc, reports=blocks))
        except asyncio.CancelledError:
            pass
        receiver._RTCRtpReceiver__rtcp_exited.set()  # type: ignore[attr-defined]

    receiver._hearth_deliver = deliver  # type: ignore[attr-defined]
    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    receiver._run_rtcp = run_rtcp  # type: ignore[method-assign]
    receiver.receive = receive  # type: ignore[method-assign]


# An inaudible voice's packet is unprotected once this many sequence numbers after the last
# one that was, so that SRTP's rollover counter follows the stream through a long mute: libsrtp
# guesses the counter from how far a sequence number is from the last it saw, and guesses
# wrong past 2^15 (11 minutes at 50 packets a second).
ROC_REFRESH_PACKETS = 512
_RTP_FIXED = struct.Struct("!HHLL")  # flags and type, seq, timestamp, ssrc


class VoiceGate:
    """Drops a voice nobody may hear as its packets come off the ICE connection: before
    aioice's queue, aiortc's DTLS dispatch, SRTP and RTP parsing.

    The RTP header is in the clear, so sequence number and timestamp still go to the
    reception counters (receiver reports stay true through a mute) without any SRTP work.
    One packet in ROC_REFRESH_PACKETS goes through, to keep SRTP's rollover counter right.
    Measured: docs/performance.md (muted listeners).
    """

    def __init__(
        self, audible: Callable[[], bool], stats_for: Callable[[int], ReceptionStats]
    ) -> None:
        self._audible = audible
        self._stats_for = stats_for
        self._last_passed = -1  # sequence number of the last RTP packet let through
        self.dropped = 0
        self.passed = 0  # packets let through while audible (is this voice talking?)

    def mode(self, paced: bool = False) -> str:
        """How this voice's sockets are read (QuietSockets): if it may be heard, promptly, or
        on every grid instant while the process is ``paced``; if not, on the slow clock.
        Until media has arrived (ICE and DTLS are under way, their flights must not wait)
        always promptly."""
        if self._last_passed < 0:
            return PROMPT
        if self._audible():
            return PACED if paced else PROMPT
        return QUIET

    def drops(self, data: bytes, arrival_ms: int | None = None) -> bool:
        # SRTP only (first byte 128-191), and not SRTCP (RFC 5761: second byte 192-223).
        if len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 224:
            return False
        if self._audible():
            self._last_passed = data[2] << 8 | data[3]
            self.passed += 1
            return False
        _, seq, timestamp, ssrc = _RTP_FIXED.unpack_from(data)
        if self._last_passed < 0 or (seq - self._last_passed) & 0xFFFF >= ROC_REFRESH_PACKETS:
            self._last_passed = seq
            return False
        if arrival_ms is None:
            arrival_ms = arrival_now_ms()
        self._stats_for(ssrc).add(seq, timestamp, arrival_ms)
        self.dropped += 1
        _dropped["inaudible"] += 1
        return True


def arrival_now_ms() -> int:
    """Now in aiortc's arrival clock (milliseconds since 1900), as the packets it passes on."""
    return int((time.time() + NTP_UNIX_OFFSET) * 1000)


def gate_voice(ice_connection: Any, gate: VoiceGate, dtls: Any = None) -> None:
    """Put ``gate`` in front of an aioice connection's incoming datagrams (once).

    With ``dtls`` (the connection's aiortc DTLS transport), an audible voice's RTP is also
    taken here: decrypted, parsed and handed to its receiver's handler in this same call.
    aiortc's way queues each datagram for the DTLS transport's task and runs four nested
    coroutines per packet after a task switch; a voice's packets need none of that.
    """
    if getattr(ice_connection, "_hearth_voice_gate", None) is not None:
        return
    stock = ice_connection.data_received

    def receive(data: bytes, arrival_ms: int | None = None) -> bool:
        """Whether ``data`` was handled here (dropped, or delivered); else aioice's turn."""
        if gate.drops(data, arrival_ms):
            return True
        return dtls is not None and _deliver_rtp(dtls, data, arrival_ms)

    def data_received(data: bytes, component: int) -> None:
        if not receive(data):
            stock(data, component)

    def datagram(data: bytes, arrival_ms: int | None) -> None:
        # An RTP or RTCP datagram read in a batch (QuietSockets), with its receive time.
        if not receive(data, arrival_ms):
            stock(data, 1)

    ice_connection.data_received = data_received
    ice_connection._hearth_voice_gate = gate
    ice_connection._hearth_datagram = datagram
    quiet_sockets.watch(ice_connection, gate)


def _deliver_rtp(dtls: Any, data: bytes, arrival_ms: int | None) -> bool:
    # SRTP, not SRTCP (RFC 5761), once DTLS has given the keys; the rest goes aiortc's way.
    if len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 224:
        return False
    srtp = dtls._rx_srtp
    if srtp is None or dtls._state is not DtlsState.CONNECTED:
        return False
    dtls._RTCDtlsTransport__rx_bytes += len(data)
    dtls._RTCDtlsTransport__rx_packets += 1
    try:
        packet = RtpPacket.parse(srtp.unprotect(data), dtls._rtp_header_extensions_map)
    except (pylibsrtp.Error, ValueError):
        return True  # as aiortc: a packet that fails authentication or parsing is dropped
    receiver = dtls._rtp_router.route_rtp(packet)
    deliver = getattr(receiver, "_hearth_deliver", None)
    if deliver is not None:
        deliver(packet, arrival_now_ms() if arrival_ms is None else arrival_ms)
    return True


# How often the sockets of voices nobody may hear are read, in instants of the process's timer
# grid: every 100 ms, the instants the RTCP reports are sent on (RTCP_GRID_EVERY), so the two
# share their wake-ups of the loop. A consent check or RTCP report from such a peer waits at
# most this long (consent allows 30 s); the socket holds 5 packets of a voice meanwhile.
QUIET_POLL_EVERY = RTCP_GRID_EVERY
# Every this many polls (1 s) every watched voice's mode is looked at again, for what changes
# without the audible set changing: a voice's first media (until then it is read promptly), a
# connection closed, who is talking.
QUIET_SWEEP_EVERY = 10
# Datagrams read from one socket per poll, at most (100 ms of a voice is 5 packets): a socket
# flooded by a stranger is read on at the next polls, after the others.
QUIET_READS_PER_POLL = 64
# A voice is talking while it sends at least this many packets a second: speech is 50 a
# second, a browser's silence in DTX 2.5.
TALKING_PACKETS_PER_SECOND = 25
# From this many talking voices in the process on, the voices that may be heard are read on
# every instant of the grid (PACED), all in one wake-up of the loop, instead of each packet
# waking it: three speakers' packets arrive at three moments of each 20 ms. A lone talker is
# read promptly: there is nothing to batch, and its listeners hear it up to 20 ms sooner.
# Measured: docs/performance.md ("several talkers, one wake-up").
PACED_FROM_TALKERS = 2
# Talkers are counted over at least this long (a sweep comes every second).
TALK_WINDOW_SECONDS = 0.5
# The kernel's receive time of each datagram read later (SO_TIMESTAMP, a struct timeval),
# so reception statistics (RTCP jitter) stay true however late it is read.
_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
_TIMEVAL = struct.Struct("@ll")
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMEVAL.size)

# How a voice's sockets are read: by the event loop as each datagram arrives, on every
# instant of the grid (QuietSockets, with other talkers'), or on its slow clock.
PROMPT, PACED, QUIET = "prompt", "paced", "quiet"


class _QuietSocket(NamedTuple):
    """A socket read on a clock: its ICE connection, aioice's protocol, asyncio's
    transport."""

    connection: Any
    protocol: Any
    transport: Any


class _SocketSet:
    """Sockets out of the loop's selector, and the epoll set that says which of them have
    anything queued: one system call for all of them."""

    def __init__(self) -> None:
        self.sockets: dict[int, _QuietSocket] = {}
        self.ready = select.epoll()

    def add(self, fd: int, entry: _QuietSocket) -> None:
        self.sockets[fd] = entry
        try:
            self.ready.register(fd, select.EPOLLIN)
        except FileExistsError:  # a number reused since a socket closed
            self.ready.modify(fd, select.EPOLLIN)

    def discard(self, fd: int) -> None:
        if self.sockets.pop(fd, None) is not None:
            # Closed already, and epoll let go of it itself.
            with contextlib.suppress(OSError, ValueError):
                self.ready.unregister(fd)

    def holds(self, fd: int, transport: Any) -> bool:
        entry = self.sockets.get(fd)
        return entry is not None and entry.transport is transport

    def close(self) -> None:
        self.ready.close()


class QuietSockets:
    """Reads voices' sockets in batches on the process's timer grid, not per packet.

    Every datagram that arrives wakes the event loop, and a wake-up costs far more than what
    is done with a packet (measured in docs/performance.md, "A muted voice nearly free"). So
    a voice nobody may hear (a muted browser without DTX still sends 50 packets a second) has
    its connection's sockets taken out of the loop's selector (``pause_reading``) and put in
    an epoll set of their own, which is asked every QUIET_POLL_EVERY instants of the
    process's timer grid which of them have anything queued: one system call for all quiet
    sockets of the process, and only those are read (a DTX listener sends a packet in 400 ms,
    so most polls find nothing). What was queued takes the same path as before (STUN and
    DTLS to aioice, RTP through the gate, RTCP to aiortc), with the kernel's receive time.

    While several voices talk (PACED_FROM_TALKERS), the voices that may be heard are read
    the same way on every instant, ahead of the ticks that mix them: one wake-up for every
    talker in every circle, where each packet woke the loop before. A forwarded packet waits
    0-20 ms for its instant; a mixed one was waiting for the tick anyway.

    The moment a voice's audibility changes (``wake``, called when the audible set changes)
    its sockets are read the way it now needs.
    """

    def __init__(self) -> None:
        self._watched: dict[Any, VoiceGate] = {}
        self._task: asyncio.Task[None] | None = None
        # The sockets read on a clock, by file descriptor (a new set for each event loop the
        # process runs, as in tests): voices nobody may hear, and the audible while paced.
        self._quiet = _SocketSet()
        self._paced = _SocketSet()
        self._polls = 0
        # Whether audible voices are read on the grid, and the talk counts that decided it.
        self.paced = False
        self._counted: dict[VoiceGate, int] = {}
        self._counted_at: float | None = None
        self.reads = {PACED: 0, QUIET: 0}  # datagrams read in batches, by clock (metrics)
        self.drains = 0  # sockets read, each until empty (tests)

    def watch(self, ice_connection: Any, gate: VoiceGate) -> None:
        self._watched[ice_connection] = gate
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._quiet.close()
            self._paced.close()
            self._quiet, self._paced = _SocketSet(), _SocketSet()
            self._task = loop.create_task(self._poll_forever())

    def wake(self) -> None:
        """The audible set changed: each voice is read the way it now needs, at once."""
        self._sweep()

    def poll(self, now: float | None = None) -> None:
        """The slow clock: read every quiet socket that has something queued; every
        QUIET_SWEEP_EVERY polls, count who talks and look at every voice's mode again."""
        self._polls += 1
        if self._polls % QUIET_SWEEP_EVERY == 0:
            self.count_talkers(time.monotonic() if now is None else now)
            self._sweep()
        self._read_ready(self._quiet, QUIET)

    def poll_paced(self) -> None:
        """An instant of the grid while paced: read every audible voice with anything queued."""
        self._read_ready(self._paced, PACED)

    def count_talkers(self, now: float) -> None:
        """Whether the process is paced from now on: how many voices talked since the last
        count (at least TALK_WINDOW_SECONDS ago, else the last verdict stands)."""
        counted_at = self._counted_at
        if counted_at is not None and now - counted_at < TALK_WINDOW_SECONDS:
            return
        if counted_at is not None:
            enough = TALKING_PACKETS_PER_SECOND * (now - counted_at)
            talkers = sum(
                1
                for gate in self._watched.values()
                if gate.passed - self._counted.get(gate, gate.passed) >= enough
            )
            self.paced = talkers >= PACED_FROM_TALKERS
        self._counted = {gate: gate.passed for gate in self._watched.values()}
        self._counted_at = now

    def _read_ready(self, sockets: _SocketSet, clock: str) -> None:
        for fd, _ in sockets.ready.poll(0):
            entry = sockets.sockets.get(fd)
            if entry is None or entry.transport.is_closing():
                self._forget(fd)
                continue
            self.drains += 1
            self.reads[clock] += _drain(entry.connection, entry.protocol, entry.transport)

    def _sweep(self) -> None:
        for connection, gate in list(self._watched.items()):
            self._read(connection, gate, gate.mode(self.paced))

    def _read(self, connection: Any, gate: VoiceGate, mode: str) -> None:
        transports = _socket_transports(connection)
        if transports is None:
            del self._watched[connection]  # closed
            self._counted.pop(gate, None)
            for fd in [
                fd
                for sockets in (self._quiet, self._paced)
                for fd, entry in sockets.sockets.items()
                if entry.connection is connection
            ]:
                self._forget(fd)
            return
        for protocol, transport in transports:
            sock = transport._sock
            fd = sock.fileno()
            if mode == PROMPT:
                if not transport.is_reading():
                    self._forget(fd)
                    transport.resume_reading()
                continue
            there, elsewhere = (
                (self._quiet, self._paced) if mode == QUIET else (self._paced, self._quiet)
            )
            if there.holds(fd, transport):
                continue
            if elsewhere.holds(fd, transport):
                elsewhere.discard(fd)  # from one clock to the other
            elif transport.is_reading():
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
                transport.pause_reading()
            else:
                continue  # not ours to read (asyncio paused it)
            there.add(fd, _QuietSocket(connection, protocol, transport))

    def _forget(self, fd: int) -> None:
        self._quiet.discard(fd)
        self._paced.discard(fd)

    async def _poll_forever(self) -> None:
        while self._watched:
            # Ahead of the instant's ticks (a mixed voice's packet is in the tick's mix).
            every = 1 if self._paced.sockets else QUIET_POLL_EVERY
            instant = await sleep_to_grid(every, first=True)
            try:
                if self._paced.sockets:
                    self.poll_paced()
                if is_every_nth_instant(instant, QUIET_POLL_EVERY):
                    self.poll(instant)
            except Exception:  # one odd datagram or socket must not stop every quiet voice
                log.exception("reading quiet voices failed")


def _socket_transports(connection: Any) -> list[tuple[Any, Any]] | None:
    """(protocol, transport) of each of the connection's own UDP sockets; None once closed."""
    found = []
    for protocol in connection._protocols:
        transport = getattr(protocol, "transport", None)
        if transport is None or transport.is_closing():
            continue
        if getattr(transport, "_sock", None) is not None:  # not a TURN relay
            found.append((protocol, transport))
    return found or None


def _drain(connection: Any, protocol: Any, transport: Any) -> int:
    sock = transport._sock
    datagram = connection._hearth_datagram
    for read in range(QUIET_READS_PER_POLL):
        try:
            data, ancillary, _, addr = sock.recvmsg(2048, _ANCILLARY_SPACE)
        except OSError:  # BlockingIOError: nothing more queued
            return read
        if not data:
            continue  # an empty datagram (anyone can send one to a media port): nothing in it
        if 127 < data[0] < 192:  # RTP or RTCP (RFC 7983): aioice would pass it on unread
            datagram(data, _arrival_ms(ancillary))
        else:  # STUN (consent), DTLS
            protocol.datagram_received(data, addr)
    return QUIET_READS_PER_POLL


def _arrival_ms(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP and len(value) >= _TIMEVAL.size:
            seconds, micros = _TIMEVAL.unpack_from(value)
            return int((seconds + micros / 1e6 + NTP_UNIX_OFFSET) * 1000)
    return None


quiet_sockets = QuietSockets()


def opus_decoder() -> Any:
    decoder = av.CodecContext.create("libopus", "r")
    decoder.format = "s16"
    decoder.layout = "mono"
    decoder.sample_rate = SAMPLE_RATE
    return decoder


def opus_encoder() -> Any:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.bit_rate = VOICE_BITRATE
    encoder.format = "s16"
    encoder.layout = "mono"
    encoder.sample_rate = SAMPLE_RATE
    encoder.time_base = TIME_BASE
    encoder.options = {"application": "voip"}
    return encoder


# RTP's fixed header (RFC 3550 section 5.1), written by hand: aiortc's RtpPacket.serialize
# rebuilt the same extension bytes for every listener and packet (3.7 us against 0.4 us).
_RTP_HEADER = struct.Struct("!BBHLL")
RTP_VERSION_BITS = 0x80  # version 2, no padding, no CSRC
RTP_EXTENSION_BIT = 0x10


def send_srtp(dtls: Any, packet: bytes) -> None:
    """Protect one RTP packet and send it on the connection's selected pair, in this turn.

    What aiortc's ``_send_rtp`` does, without its four nested coroutines (DTLS, ICE
    transport, aioice connection, STUN protocol) per listener per packet: the profile of a
    forwarded voice had them at a third of the writer's time (docs/performance.md). Through a
    TURN relay (not a plain UDP socket of our own), aiortc's path is kept.
    """
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        _dropped["send_error"] += 1
        return  # not connected (any more)
    protocol = pair.protocol
    if type(protocol) is not aioice.ice.StunProtocol:
        sending = dtls._send_rtp(packet)
        try:
            sending.send(None)
        except StopIteration:
            return
        except ConnectionError:
            _dropped["send_error"] += 1
            return
        sending.close()  # it would have waited: drop this one packet rather than block
        _dropped["send_blocked"] += 1
        return
    data = dtls._tx_srtp.protect(packet)
    # asyncio's datagram transport: sent at once, or queued if the socket is full.
    protocol.transport.sendto(data, pair.remote_addr)
    # aiortc's own counters (the metrics' packet totals read them).
    dtls._RTCDtlsTransport__tx_bytes += len(data)
    dtls._RTCDtlsTransport__tx_packets += 1


class DirectRtpWriter:
    """Writes a listener's RTP itself, in the caller's turn of the loop.

    aiortc's sender takes each packet from its track in a task of its own: a queue, a
    wake-up, an ``RtpPacket`` with an NTP clock read, per listener per packet, which was the
    largest cost left (docs/performance.md). This writer is called by the audio path with
    the packet and sends it at once: one RTP header, SRTP, ``sendto``. aiortc's sender keeps
    its track empty once this writer has the parameters, so the two never both send; its RTCP
    loop is replaced by one whose sender reports carry this writer's counts.

    The caller gives each packet its place in the circle's sequence (signaling.rtp_rewriter).
    A forwarded packet keeps its gap (``keep_gap``): the listener's browser sees upstream loss
    as loss. Before one the server made, a gap is closed: a tick this listener got nothing in
    (their own mix had not started) is no loss, and a receiver that waits for missing
    packets (aiortc's does) would fall behind for good.
    """

    def __init__(self, sender: RTCRtpSender, on_ready: Callable[[], None]) -> None:
        self._sender = sender
        self._payload_type: int | None = None
        # What never changes in this stream's RTP headers, worked out once: the first byte
        # (version, extension bit) and the header extension carrying the mid.
        self._first_byte = RTP_VERSION_BITS
        self._extension = b""
        self._seq_offset = secrets.randbelow(1 << 16)
        self._auto_seq = 0  # for callers that give no sequence number
        self._last_seq: int | None = None  # the newest sequence number written (unmasked)
        self._skip_gap = False
        self._origin = secrets.randbelow(1 << 32)
        self._last_pts: int | None = None
        self.stats = SendingStats(SAMPLE_RATE)
        self._cname: str | None = None
        stock_send = sender.send

        async def send(parameters: Any) -> None:
            extensions = HeaderExtensionsMap()
            extensions.configure(parameters)
            profile, value = extensions.set(HeaderExtensions(mid=parameters.muxId))
            if value:
                self._first_byte = RTP_VERSION_BITS | RTP_EXTENSION_BIT
                self._extension = struct.pack("!HH", profile, len(value) >> 2) + value
            self._payload_type = parameters.codecs[0].payloadType
            self._cname = parameters.rtcp.cname
            on_ready()
            await stock_send(parameters)

        sender.send = send  # type: ignore[method-assign]
        sender._run_rtcp = self._run_rtcp  # type: ignore[method-assign]

    @property
    def ready(self) -> bool:
        return self._payload_type is not None

    def skip_gap(self) -> None:
        """The next packet follows the last one written without a gap in sequence (this
        listener was left out of a stretch of the circle's stream, nothing was lost)."""
        self._skip_gap = True

    def write(
        self,
        payload: bytes,
        pts: int,
        seq: int | None = None,
        keep_gap: bool = False,
        now: float | None = None,
    ) -> None:
        """Send one packet now; ``now`` is the wall clock (``time.time()``) if the caller
        read it already (once per packet, not once per listener)."""
        assert self._payload_type is not None
        dtls = self._sender.transport
        # The enum itself: `dtls.state` builds a string on every call, per listener per packet.
        if dtls is None or dtls._state is not DtlsState.CONNECTED:
            return  # audio from before the connection is of no use to anyone
        if seq is None:
            seq = self._auto_seq
            self._auto_seq += 1
        last_seq = self._last_seq
        closes_gap = self._skip_gap or not keep_gap
        if closes_gap and last_seq is not None and seq + self._seq_offset > last_seq + 1:
            self._seq_offset = last_seq + 1 - seq
        self._skip_gap = False
        seq += self._seq_offset
        last_pts = self._last_pts
        # A talkspurt starts where time jumps but the sequence does not (RFC 3551 section
        # 4.1): after silence, not after a loss.
        if last_seq is None or last_pts is None:
            marker = 0x80
        else:
            marker = 0x80 if seq == last_seq + 1 and pts - last_pts != FRAME_SAMPLES else 0
        if last_seq is None or seq > last_seq:
            self._last_seq = seq
            self._last_pts = pts
        timestamp = (self._origin + pts) & 0xFFFFFFFF
        header = _RTP_HEADER.pack(
            self._first_byte,
            marker | self._payload_type,
            seq & 0xFFFF,
            timestamp,
            self._sender._ssrc,
        )
        self.stats.sent(timestamp, len(payload), time.time() if now is None else now)
        send_srtp(dtls, header + self._extension + payload)

    async def _run_rtcp(self) -> None:
        """aiortc's sender RTCP loop, with sender reports from this writer's counts."""
        sender = self._sender
        sender._RTCRtpSender__rtcp_started.set()  # type: ignore[attr-defined]
        try:
            while True:
                await sleep_until_report()
                now = time.time()
                info = self.stats.sender_info(now)
                if info is None:
                    continue
                packets: list[AnyRtcpPacket] = [
                    RtcpSrPacket(ssrc=sender._ssrc, sender_info=RtcpSenderInfo(**vars(info)))
                ]
                # What aiortc's receiver-report handler matches to estimate the round trip.
                sender._RTCRtpSender__lsr = middle_32(info.ntp_timestamp)  # type: ignore[attr-defined]
                sender._RTCRtpSender__lsr_time = now  # type: ignore[attr-defined]
                if self._cname is not None:
                    item = (1, self._cname.encode("utf8"))
                    packets.append(
                        RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[item])])
                    )
                await sender._send_rtcp(packets)
        except asyncio.CancelledError:
            pass
        await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        sender._RTCRtpSender__rtcp_exited.set()  # type: ignore[attr-defined]
