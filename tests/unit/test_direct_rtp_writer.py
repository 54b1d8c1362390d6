"""The direct RTP writer's hand-built headers are exactly what aiortc would have sent."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from signaling.voice import FRAME_SAMPLES, DirectRtpWriter

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


class FakeDtls:
    def __init__(self) -> None:
        self._state = State.CONNECTED
        self.sent: list[bytes] = []
        # A selected pair whose protocol is not a plain UDP socket of the server (as through
        # a TURN relay): the writer hands the packet to aiortc's ``_send_rtp``, kept here.
        pair = SimpleNamespace(protocol=object(), remote_addr=("127.0.0.1", 9))
        self.transport = SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair}))

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)


def parameters(with_mid: bool) -> RTCRtpSendParameters:
    return RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111)],
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=4, uri=MID_URI)] if with_mid else [],
        muxId="0",
    )


@pytest.mark.parametrize("with_mid", [True, False])
async def test_headers_match_aiortc_serialisation(with_mid: bool) -> None:
    dtls = FakeDtls()

    async def stock_send(_parameters: Any) -> None:
        return None

    sender: Any = SimpleNamespace(transport=dtls, _ssrc=0x1234ABCD, send=stock_send)
    writer = DirectRtpWriter(sender, on_ready=lambda: None)
    params = parameters(with_mid)
    await sender.send(params)
    assert writer.ready

    pts_list = [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES, 10 * FRAME_SAMPLES]  # a gap before the last
    for pts in pts_list:
        writer.write(b"opus-" + str(pts).encode(), pts)

    extensions = HeaderExtensionsMap()
    extensions.configure(params)
    assert len(dtls.sent) == len(pts_list)
    first = RtpPacket.parse(dtls.sent[0], extensions)
    for i, (data, pts) in enumerate(zip(dtls.sent, pts_list, strict=True)):
        expected = RtpPacket(
            payload_type=111,
            marker=int(i in (0, 3)),  # talkspurt starts: the first packet and after the gap
            sequence_number=(first.sequence_number + i) & 0xFFFF,
            timestamp=(first.timestamp - pts_list[0] + pts) & 0xFFFFFFFF,
            ssrc=0x1234ABCD,
            payload=b"opus-" + str(pts).encode(),
        )
        if with_mid:
            expected.extensions.mid = "0"
        assert data == expected.serialize(extensions)


async def test_nothing_is_written_before_the_connection_is_up() -> None:
    dtls = FakeDtls()
    dtls._state = State.CONNECTING

    async def stock_send(_parameters: Any) -> None:
        return None

    sender: Any = SimpleNamespace(transport=dtls, _ssrc=1, send=stock_send)
    writer = DirectRtpWriter(sender, on_ready=lambda: None)
    await sender.send(parameters(True))
    writer.write(b"x", 0)
    assert dtls.sent == []


async def writer_and_dtls() -> tuple[DirectRtpWriter, FakeDtls]:
    dtls = FakeDtls()

    async def stock_send(_parameters: Any) -> None:
        return None

    sender: Any = SimpleNamespace(transport=dtls, _ssrc=7, send=stock_send)
    writer = DirectRtpWriter(sender, on_ready=lambda: None)
    await sender.send(parameters(False))
    return writer, dtls


def sent_headers(dtls: FakeDtls) -> list[tuple[int, int, int]]:
    """(sequence number relative to the first, timestamp relative to the first, marker)."""
    packets = [RtpPacket.parse(data) for data in dtls.sent]
    seq0, ts0 = packets[0].sequence_number, packets[0].timestamp
    return [
        ((p.sequence_number - seq0) & 0xFFFF, (p.timestamp - ts0) & 0xFFFFFFFF, p.marker)
        for p in packets
    ]


async def test_the_circles_sequence_gaps_and_order_reach_the_listener() -> None:
    writer, dtls = await writer_and_dtls()
    frame = FRAME_SAMPLES
    # seq 12 lost upstream; 14 arrives before 13.
    for seq, pts in [(10, 0), (11, frame), (13, 3 * frame), (15, 5 * frame), (14, 4 * frame)]:
        writer.write(b"x", pts, seq, keep_gap=True)
    assert sent_headers(dtls) == [
        (0, 0, 1),
        (1, frame, 0),
        (3, 3 * frame, 0),  # a gap after a loss: no new talkspurt
        (5, 5 * frame, 0),
        (4, 4 * frame, 0),  # the late one in its own place
    ]


async def test_a_listener_left_out_for_a_while_sees_no_gap() -> None:
    writer, dtls = await writer_and_dtls()
    frame = FRAME_SAMPLES
    writer.write(b"x", 0, 10, keep_gap=True)
    writer.write(b"x", frame, 11, keep_gap=True)
    writer.skip_gap()  # their own voice was forwarded to the others: seq 12..60 not for them
    writer.write(b"x", 60 * frame, 61, keep_gap=True)
    writer.write(b"x", 61 * frame, 62, keep_gap=True)
    assert sent_headers(dtls) == [(0, 0, 1), (1, frame, 0), (2, 60 * frame, 1), (3, 61 * frame, 0)]


async def test_a_tick_a_listener_got_nothing_in_is_no_loss() -> None:
    # The server's own packets (the mix) close a gap: nothing was lost upstream.
    writer, dtls = await writer_and_dtls()
    frame = FRAME_SAMPLES
    writer.write(b"x", 0, 10)
    writer.write(b"x", 2 * frame, 12)
    writer.write(b"x", 3 * frame, 13)
    assert sent_headers(dtls) == [(0, 0, 1), (1, 2 * frame, 1), (2, 3 * frame, 0)]


async def test_sender_report_counts_are_what_was_written() -> None:
    writer, _ = await writer_and_dtls()
    for i in range(5):
        writer.write(b"abc" * (i + 1), i * FRAME_SAMPLES, i)
    assert (writer.stats.packets, writer.stats.octets) == (5, 3 * (1 + 2 + 3 + 4 + 5))
