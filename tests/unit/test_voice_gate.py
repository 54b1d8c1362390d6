"""An inaudible voice's packets are dropped before SRTP, counted for receiver reports, and
SRTP still decrypts the voice once it may be heard again, even after a sequence wrap.
RTCP always passes."""

from __future__ import annotations

import os
import select
import socket
import struct

import pylibsrtp
import pytest

from signaling import voice
from signaling.rtcp_stats import ReceptionStats
from signaling.voice import VoiceGate

SSRC = 0x11223344


def sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    key = os.urandom(30)
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def rtp(seq: int) -> bytes:
    return struct.pack("!BBHLL", 0x80, 111, seq & 0xFFFF, seq * 960 & 0xFFFFFFFF, SSRC) + b"opus"


class Gate:
    """A gate in front of a real SRTP receiving session, as on the server."""

    def __init__(self) -> None:
        self.tx, self.rx = sessions()
        self.audible = False
        self.stats = ReceptionStats(48_000)
        self.gate = VoiceGate(lambda: self.audible, lambda ssrc: self.stats)

    def receive(self, seq: int) -> bytes | None:
        packet = self.tx.protect(rtp(seq))
        if self.gate.drops(packet):
            return None
        try:
            plain = bytes(self.rx.unprotect(packet))
        except pylibsrtp.Error:
            return None
        # What passes is counted by the receiver's packet handler (signaling.voice).
        self.stats.add(seq & 0xFFFF, seq * 960 & 0xFFFFFFFF, seq * 20)
        return plain


def test_an_inaudible_voice_is_dropped_unread_but_counted() -> None:
    gate = Gate()
    gate.audible = True
    assert gate.receive(0) == rtp(0)
    gate.audible = False
    passed = [seq for seq in range(1, 2001) if gate.receive(seq) is not None]
    # Only one packet in ROC_REFRESH_PACKETS is decrypted, to keep SRTP's counter.
    assert passed == [512, 1024, 1536]
    assert gate.gate.dropped == 2000 - 3
    # Dropped packets still reach the reception counters: a mute is not a loss.
    assert (gate.stats.expected, gate.stats.lost) == (2001, 0)


def test_decryption_survives_a_mute_longer_than_half_the_sequence_space() -> None:
    gate = Gate()
    gate.audible = True
    gate.receive(0)
    gate.audible = False
    for seq in range(1, 70_000):  # past 2^16: the rollover counter moves on
        gate.receive(seq)
    gate.audible = True
    assert gate.receive(70_000) == rtp(70_000)


def test_without_the_refresh_a_long_mute_breaks_decryption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the one-in-N decryption is for: without it, libsrtp guesses the rollover wrong.
    monkeypatch.setattr(voice, "ROC_REFRESH_PACKETS", 1 << 16)
    gate = Gate()
    gate.audible = True
    gate.receive(0)
    gate.audible = False
    for seq in range(1, 70_000):
        gate.receive(seq)
    gate.audible = True
    assert gate.receive(70_000) is None


def test_rtcp_always_passes() -> None:
    gate = Gate()
    gate.audible = True
    gate.receive(0)
    gate.audible = False
    receiver_report = struct.pack("!BBHL", 0x80, 201, 1, SSRC)
    assert not gate.gate.drops(receiver_report)


def test_a_quiet_voice_s_socket_reads_past_an_empty_datagram_from_a_stranger() -> None:
    # A muted voice's socket is read in batches (QuietSockets). Anyone may send a UDP
    # datagram to a media port, an empty one included: it is skipped, and what the peer
    # sends after it (RTP for the gate, STUN for consent) is still taken its way.
    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self._sock = sock

    class Connection:
        def __init__(self) -> None:
            self.media: list[bytes] = []

        def _hearth_datagram(self, data: bytes, arrival_ms: int | None) -> None:
            self.media.append(data)

    class Protocol:
        def __init__(self) -> None:
            self.other: list[bytes] = []

        def datagram_received(self, data: bytes, addr: object) -> None:
            self.other.append(data)

    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ours,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
    ):
        ours.bind(("127.0.0.1", 0))
        ours.setblocking(False)
        address = ours.getsockname()
        stun = b"\x00\x01" + bytes(18)
        for datagram in (b"", rtp(1), b"", stun):
            stranger.sendto(datagram, address)
        connection, protocol = Connection(), Protocol()
        for _ in range(100):  # loopback delivery is immediate, but do not race it
            if select.select([ours], [], [], 0.01)[0]:
                break
        reads = voice._drain(connection, protocol, Transport(ours))
    assert connection.media == [rtp(1)]
    assert protocol.other == [stun]
    assert reads == 4
