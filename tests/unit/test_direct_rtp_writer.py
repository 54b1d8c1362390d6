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
