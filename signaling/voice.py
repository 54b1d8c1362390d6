"""Opus tuned for voice, and the hook that takes a voice's packets before aiortc's pipeline.

aiortc's stock audio receiver holds every packet in a jitter buffer, decodes it on a thread of
its own and hops back to the event loop per frame (docs/performance.md has the cost). Hearth
takes the packets right after SRTP and RTP parsing instead and hands them to the audio path,
which keeps its own small buffer and decodes only the voices that may be heard.
"""

from __future__ import annotations

import fractions
import secrets
import struct
from collections.abc import Callable
from typing import Any

import av
from aiortc.codecs import CODECS
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

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
VoiceInlet = Callable[[int, int, bytes, int | None], None]


def tune_opus_for_voice() -> None:
    """Make this process's peers negotiate Opus only, set up the way a voice needs it.

    aiortc answers with its own codec entry's parameters, so setting them here puts them in
    every answer. The other codecs go: the audio path neither decodes nor sends them.
    """
    opus = [c for c in CODECS["audio"] if c.mimeType.lower() == "audio/opus"]
    for codec in opus:
        codec.parameters = dict(VOICE_FMTP)
    CODECS["audio"][:] = opus


def bypass_receive_pipeline(receiver: RTCRtpReceiver, inlet: VoiceInlet) -> None:
    """Send ``receiver``'s Opus packets to ``inlet`` instead of aiortc's jitter buffer.

    aiortc has no public hook here: the receiver's packet handler and its ``receive`` are
    replaced on this one instance. RTCP (receiver reports, SR) keeps running as before.
    """
    opus_types: set[int] = set()

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type not in opus_types:
            return
        level = packet.extensions.audio_level
        inlet(
            packet.sequence_number,
            packet.timestamp,
            packet.payload,
            None if level is None else level[1],
        )

    stock_receive = receiver.receive

    async def receive(parameters: Any) -> None:
        opus_types.update(
            c.payloadType for c in parameters.codecs if c.mimeType.lower() == "audio/opus"
        )
        await stock_receive(parameters)
        # The stock receive starts a decoder thread that will never be fed: let it end.
        receiver._RTCRtpReceiver__decoder_queue.put(None)  # type: ignore[attr-defined]

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver.receive = receive  # type: ignore[method-assign]


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


class DirectRtpWriter:
    """Writes a listener's RTP itself, in the caller's turn of the loop.

    aiortc's sender takes each packet from its track in a task of its own: a queue, a
    wake-up, an ``RtpPacket`` with an NTP clock read, per listener per packet, which was the
    largest cost left (docs/performance.md). This writer is called by the audio path with
    the packet and sends it at once: one RTP header, SRTP, ``sendto``. aiortc's sender keeps
    running for RTCP; its track is left empty once this writer has the parameters, so the two
    never both send.
    """

    def __init__(self, sender: RTCRtpSender, on_ready: Callable[[], None]) -> None:
        self._sender = sender
        self._payload_type: int | None = None
        # What never changes in this stream's RTP headers, worked out once: the first byte
        # (version, extension bit) and the header extension carrying the mid.
        self._first_byte = RTP_VERSION_BITS
        self._extension = b""
        self._seq = secrets.randbelow(1 << 16)
        self._origin = secrets.randbelow(1 << 32)
        self._last_pts: int | None = None
        stock_send = sender.send

        async def send(parameters: Any) -> None:
            extensions = HeaderExtensionsMap()
            extensions.configure(parameters)
            profile, value = extensions.set(HeaderExtensions(mid=parameters.muxId))
            if value:
                self._first_byte = RTP_VERSION_BITS | RTP_EXTENSION_BIT
                self._extension = struct.pack("!HH", profile, len(value) >> 2) + value
            self._payload_type = parameters.codecs[0].payloadType
            on_ready()
            await stock_send(parameters)

        sender.send = send  # type: ignore[method-assign]

    @property
    def ready(self) -> bool:
        return self._payload_type is not None

    def write(self, payload: bytes, pts: int) -> None:
        assert self._payload_type is not None
        dtls = self._sender.transport
        # The enum itself: `dtls.state` builds a string on every call, per listener per packet.
        if dtls is None or dtls._state is not DtlsState.CONNECTED:
            return  # audio from before the connection is of no use to anyone
        # The first packet after a gap starts a talkspurt (RFC 3551 section 4.1).
        marker = 0x80 if self._last_pts is None or pts - self._last_pts != FRAME_SAMPLES else 0
        header = _RTP_HEADER.pack(
            self._first_byte,
            marker | self._payload_type,
            self._seq,
            (self._origin + pts) & 0xFFFFFFFF,
            self._sender._ssrc,
        )
        self._seq = (self._seq + 1) & 0xFFFF
        self._last_pts = pts
        sending = dtls._send_rtp(header + self._extension + payload)
        try:
            # SRTP and sendto never wait; driving the coroutine here saves a task per packet.
            sending.send(None)
        except StopIteration:
            return
        except ConnectionError:
            return
        sending.close()  # it would have waited: drop this one packet rather than block
