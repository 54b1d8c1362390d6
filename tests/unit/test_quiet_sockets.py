"""The sockets of voices nobody may hear are read on a slow clock (signaling.voice.QuietSockets):
only a socket with something queued is read, what was queued is delivered whole, and a voice
that may be heard again is read by the event loop at once. Real UDP sockets and asyncio's own
datagram transports; the ICE connection and the gate are stand-ins for what the class reads
of them."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from signaling import voice
from signaling.rtcp_stats import ReceptionStats
from signaling.voice import QuietSockets, VoiceGate


class Protocol(asyncio.DatagramProtocol):
    """A socket's protocol: what the event loop delivers while the socket is read promptly."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.promptly: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.promptly.append(data)


class Connection:
    """An aioice connection as QuietSockets reads it: its sockets, and where media goes."""

    def __init__(self, protocol: Protocol) -> None:
        self._protocols = [protocol]
        self.batched: list[bytes] = []

    def _hearth_datagram(self, data: bytes, arrival_ms: int | None) -> None:
        assert arrival_ms is not None  # the kernel's receive time comes with each one
        self.batched.append(data)


class Gate:
    """A voice's gate, its first packet through (until then it is read promptly)."""

    def __init__(self) -> None:
        self.quiet = False
        self.gate = VoiceGate(lambda: not self.quiet, lambda ssrc: ReceptionStats(48_000))
        self.gate.drops(rtp(0))
        self.quiet = True


def rtp(seq: int) -> bytes:
    return struct.pack("!BBHLL", 0x80, 111, seq, seq * 960, 7) + b"opus"


async def test_only_a_quiet_socket_with_something_queued_is_read() -> None:
    loop = asyncio.get_running_loop()
    quiet = QuietSockets()
    people = []
    for _ in range(3):
        _, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        connection, gate = Connection(protocol), Gate()
        quiet.watch(connection, gate.gate)
        people.append((connection, protocol, gate))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        quiet.wake()  # all three muted: out of the loop's selector
        assert all(not p.transport.is_reading() for _, p, _ in people)

        quiet.poll()
        assert quiet.drains == 0  # nothing queued anywhere: no socket read

        muted_sam, protocol, _ = people[1]
        address = protocol.transport.get_extra_info("sockname")
        for seq in (1, 2, 3):
            sender.sendto(rtp(seq), address)
        await asyncio.sleep(0.05)  # the loop runs: a quiet socket is not read by it
        assert protocol.promptly == []
        quiet.poll()
        assert muted_sam.batched == [rtp(1), rtp(2), rtp(3)]
        assert quiet.drains == 1  # only Sam's socket was read
        quiet.poll()
        assert quiet.drains == 1  # and not again while nothing more came
    finally:
        sender.close()
        for _, protocol, _ in people:
            protocol.transport.close()


async def test_a_voice_that_may_be_heard_again_is_read_by_the_loop_at_once() -> None:
    loop = asyncio.get_running_loop()
    quiet = QuietSockets()
    _, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    connection, gate = Connection(protocol), Gate()
    quiet.watch(connection, gate.gate)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        quiet.wake()
        address = protocol.transport.get_extra_info("sockname")
        sender.sendto(rtp(1), address)
        await asyncio.sleep(0.05)
        gate.quiet = False
        quiet.wake()  # unmuted: back in the loop's selector
        sender.sendto(rtp(2), address)
        await asyncio.sleep(0.05)
        # What waited was read once, on the slow clock or by the loop; what came after the
        # unmute, by the loop.
        assert connection.batched + protocol.promptly == [rtp(1), rtp(2)]
        assert protocol.promptly[-1] == rtp(2)
        drains = quiet.drains
        sender.sendto(rtp(3), address)
        await asyncio.sleep(0.05)
        quiet.poll()
        assert protocol.promptly[-1] == rtp(3)
        assert quiet.drains == drains  # a prompt socket is never read on the slow clock

        gate.quiet = True  # muted again, then the connection closes
        quiet.wake()
        protocol.transport.close()
        await asyncio.sleep(0)
        for _ in range(voice.QUIET_SWEEP_EVERY):
            quiet.poll()
        assert quiet.drains == drains
        assert connection not in quiet._watched
    finally:
        sender.close()
        protocol.transport.close()
