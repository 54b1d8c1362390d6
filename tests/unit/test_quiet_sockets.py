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


async def test_a_stranger_s_flood_on_one_quiet_socket_does_not_hold_back_another() -> None:
    """Anyone may send datagrams to a media port. 5,000 sent at a muted voice's socket are
    read a bounded batch per poll (the kernel drops what its buffer cannot hold), and
    another muted voice's socket is read in the same poll all the same."""
    loop = asyncio.get_running_loop()
    quiet = QuietSockets()
    people = []
    for _ in range(2):
        _, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        connection, gate = Connection(protocol), Gate()
        quiet.watch(connection, gate.gate)
        people.append((connection, protocol))
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.setblocking(False)
    try:
        quiet.wake()
        (flooded, flooded_protocol), (kim, kim_protocol) = people
        for seq in range(5000):
            stranger.sendto(rtp(seq), flooded_protocol.transport.get_extra_info("sockname"))
        stranger.sendto(rtp(7), kim_protocol.transport.get_extra_info("sockname"))
        quiet.poll()
        assert kim.batched == [rtp(7)]
        assert 0 < len(flooded.batched) <= voice.QUIET_READS_PER_POLL
        for _ in range(200):  # what the kernel kept is read on at the next polls
            quiet.poll()
        assert len(flooded.batched) > voice.QUIET_READS_PER_POLL
        drains = quiet.drains
        quiet.poll()
        assert quiet.drains == drains  # and then nothing is left to read
    finally:
        stranger.close()
        for _, protocol in people:
            protocol.transport.close()


async def test_a_socket_that_takes_a_closed_one_s_number_is_read_on_the_slow_clock() -> None:
    """A person leaves (their sockets close) and another joins muted: the kernel may give
    the new socket the old one's number. It is read on the slow clock as any other."""
    loop = asyncio.get_running_loop()
    quiet = QuietSockets()
    _, leaving = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    quiet.watch(Connection(leaving), Gate().gate)
    quiet.wake()
    old_number = leaving.transport.get_extra_info("socket").fileno()
    leaving.transport.close()
    await asyncio.sleep(0)  # asyncio closes the socket on the next turn
    _, joining = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    newcomer = Connection(joining)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert joining.transport.get_extra_info("socket").fileno() == old_number
        quiet.watch(newcomer, Gate().gate)
        quiet.wake()
        assert not joining.transport.is_reading()
        sender.sendto(rtp(1), joining.transport.get_extra_info("sockname"))
        await asyncio.sleep(0.01)
        quiet.poll()
        assert newcomer.batched == [rtp(1)]
    finally:
        sender.close()
        joining.transport.close()


async def test_while_two_voices_talk_the_audible_are_read_on_every_instant_together() -> None:
    """Two people talk: their sockets leave the loop's selector and are read on the grid,
    with what arrived, when it arrived. One stops (sends only its silence): both are read
    by the loop again as each packet comes."""
    loop = asyncio.get_running_loop()
    quiet = QuietSockets()
    people = []
    for _ in range(2):
        _, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        connection, gate = Connection(protocol), Gate()
        gate.quiet = False  # unmuted
        quiet.watch(connection, gate.gate)
        people.append((connection, protocol, gate))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        quiet.count_talkers(now=100.0)
        for _, _, gate in people:  # one second of speech each: 50 packets
            for seq in range(1, 51):
                gate.gate.drops(rtp(seq))
        quiet.count_talkers(now=101.0)
        quiet.wake()
        assert quiet.paced
        assert all(not protocol.transport.is_reading() for _, protocol, _ in people)

        (ana, ana_protocol, _), (sam, sam_protocol, sam_gate) = people
        sender.sendto(rtp(51), ana_protocol.transport.get_extra_info("sockname"))
        sender.sendto(rtp(52), sam_protocol.transport.get_extra_info("sockname"))
        await asyncio.sleep(0.01)
        assert ana_protocol.promptly == sam_protocol.promptly == []  # not by the loop
        quiet.poll_paced()  # (or the instant's own poll, running meanwhile)
        assert ana.batched == [rtp(51)] and sam.batched == [rtp(52)]
        assert quiet.reads == {voice.PACED: 2, voice.QUIET: 0}

        # The next second Ana goes on talking, Sam only sends DTX silence (2.5 a second).
        for seq in range(53, 103):
            people[0][2].gate.drops(rtp(seq))
        for seq in (103, 104):
            sam_gate.gate.drops(rtp(seq))
        quiet.count_talkers(now=102.0)
        quiet.wake()
        assert not quiet.paced
        assert all(protocol.transport.is_reading() for _, protocol, _ in people)
        sender.sendto(rtp(105), sam_protocol.transport.get_extra_info("sockname"))
        await asyncio.sleep(0.01)
        assert sam_protocol.promptly == [rtp(105)]
    finally:
        sender.close()
        for _, protocol, _ in people:
            protocol.transport.close()


async def test_a_muted_talker_moves_from_the_grid_to_the_slow_clock() -> None:
    loop = asyncio.get_running_loop()
    quiet = QuietSockets()
    _, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    connection, gate = Connection(protocol), Gate()
    gate.quiet = False
    quiet.watch(connection, gate.gate)
    quiet.paced = True  # others talk too
    quiet.wake()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        gate.quiet = True
        quiet.wake()
        assert not protocol.transport.is_reading()
        sender.sendto(rtp(1), protocol.transport.get_extra_info("sockname"))
        await asyncio.sleep(0.01)
        quiet.poll_paced()
        quiet.poll()
        assert connection.batched == [rtp(1)]
        assert quiet.reads == {voice.PACED: 0, voice.QUIET: 1}  # on the slow clock
    finally:
        sender.close()
        protocol.transport.close()
