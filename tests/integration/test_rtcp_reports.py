"""RTCP both ways between the server and real aiortc peers, with loss on one upload.

The speaker's upload loses every tenth RTP packet. The server's receiver reports tell the
speaker so (and give it a round trip); a muted person's reports stay true although the
server drops their packets before decrypting them; the server's sender reports count what a
listener got, and the listener sees the speaker's upload loss as loss (the forwarded voice
keeps its gaps).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.rtp import is_rtcp

from tests.support.peer import ScriptedParticipant, seat_with_audio
from tests.support.server import ServerProcess, link_token


def drop_every_tenth_rtp_packet(person: ScriptedParticipant) -> None:
    assert person.pc is not None
    dtls = person.pc.getTransceivers()[0].sender.transport
    stock = dtls._send_rtp
    count = 0

    async def send_rtp(data: bytes) -> None:
        nonlocal count
        if not is_rtcp(data):
            count += 1
            if count % 10 == 0:
                return
        await stock(data)

    dtls._send_rtp = send_rtp


async def stats_of(person: ScriptedParticipant) -> dict[str, Any]:
    assert person.pc is not None
    report = await person.pc.getStats()
    return {s.type: s for s in report.values()}


async def test_receiver_and_sender_reports_tell_the_peers_what_happened(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    # One receive track each: the reports of one stream each way (every slot has its own).
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", 500.0, slots=1)
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", 850.0, slots=1)
    kim = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Kim", None, slots=1)
    people = [host, sam, kim]
    try:
        # Sam hums into a muted microphone.
        await seat_with_audio((host, False), (sam, True), (kim, True))
        drop_every_tenth_rtp_packet(host)
        await asyncio.sleep(6)

        up = await stats_of(host)
        remote_in, outbound = up["remote-inbound-rtp"], up["outbound-rtp"]
        # Losses counted from when the drop began: a little under a tenth of all sent.
        assert 0.05 <= remote_in.packetsLost / outbound.packetsSent <= 0.12, (
            remote_in,
            outbound,
        )
        assert remote_in.roundTripTime is not None and 0 < remote_in.roundTripTime < 1

        muted = await stats_of(sam)
        assert muted["outbound-rtp"].packetsSent > 100
        # Dropped unread by the server, yet counted: no loss reported.
        assert muted["remote-inbound-rtp"].packetsLost <= 0.02 * muted["outbound-rtp"].packetsSent

        down = await stats_of(kim)
        inbound, remote_out = down["inbound-rtp"], down["remote-outbound-rtp"]
        assert remote_out.packetsSent > 100 and remote_out.bytesSent > 0
        # A sender report is up to 1.5 s older than the count it is compared with.
        assert 0.8 <= inbound.packetsReceived / remote_out.packetsSent <= 1.3, (
            inbound,
            remote_out,
        )
        # The upload's losses reach the listener as gaps, not renumbered away.
        expected = inbound.packetsReceived + inbound.packetsLost
        assert 0.05 <= inbound.packetsLost / expected <= 0.12, inbound
    finally:
        for person in people:
            await person.close()
