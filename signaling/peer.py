"""The WebRTC side of one participant: an aiortc peer connection answering their offer."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import hmac
import logging
import random
import re
import secrets
import time
import types
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack

from signaling import telemetry
from signaling.audio import ListenerTrack
from signaling.protocol import INVALID_SDP, ProtocolError
from signaling.voice import DirectRtpWriter, VoiceInlet, bypass_receive_pipeline

log = logging.getLogger(__name__)

_stock_host_addresses = aioice.ice.get_host_addresses
_direct_rtp = True
_public_address = ""
# Media traffic of peers already closed, so that the totals never go down (metrics).
_closed_packets = {"received": 0, "sent": 0}
_live_peers: weakref.WeakSet[MediaPeer] = weakref.WeakSet()


def quiet_connect_race(loop: asyncio.AbstractEventLoop) -> None:
    """Keep one known aiortc race out of the error log.

    aiortc starts connecting a peer in a task of its own that nobody awaits
    (``RTCPeerConnection.__connect``). When the person leaves while it runs (a page closed,
    a join given up on a busy server), the connection is closed under it and the task ends in
    ``InvalidStateError`` ("RTCIceTransport is closed") on its next transceiver; asyncio then
    logs "Task exception was never retrieved" with a traceback. Nothing is wrong: the person
    is gone. That one case is logged at debug level; everything else reaches the loop's
    handler as before.
    """
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task = context.get("future")
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        if (
            isinstance(context.get("exception"), InvalidStateError)
            and getattr(coro, "__qualname__", "") == "RTCPeerConnection.__connect"
        ):
            log.debug("a peer connection closed while it was connecting")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def write_rtp_directly(enabled: bool) -> None:
    """Whether listeners' RTP is written by the audio path (the default) or aiortc's sender."""
    global _direct_rtp
    _direct_rtp = enabled


def restrict_ice_addresses(addresses: tuple[str, ...]) -> None:
    """Offer ICE host candidates only on these addresses (all interfaces when empty).

    aioice has no option for this, so its address lookup is wrapped. Operators use it to
    keep media on one interface (like Janus's ice_enforce_list); tests use 127.0.0.1 so
    that media never leaves loopback.
    """
    if not addresses:
        aioice.ice.get_host_addresses = _stock_host_addresses
        return
    wanted = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in wanted if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def advertise_public_address(address: str) -> None:
    """Offer ``address`` as well as the interface addresses (a server behind 1:1 NAT).

    Like Janus's nat_1_1_mapping with ice_nat_1_1_keep_private: each host candidate gets a
    twin naming the public address and the same port, which the NAT forwards to the socket.
    The private one stays, for a TURN server beside Hearth: it relays to the private address
    without a round trip through the NAT (which many clouds do not loop back). Empty: none.
    """
    global _public_address
    _public_address = address


_HOST_CANDIDATE = re.compile(
    r"^a=candidate:(\S+) (\d+) (udp) (\d+) ([0-9.]+) (\d+) typ host(.*)$", re.I
)


def with_public_address(sdp: str, address: str) -> str:
    """The SDP with a twin of each IPv4 host candidate that names ``address``."""
    if not address:
        return sdp
    lines: list[str] = []
    for line in sdp.split("\r\n"):
        lines.append(line)
        m = _HOST_CANDIDATE.match(line)
        if m:
            foundation, component, transport, priority, _, port, rest = m.groups()
            lines.append(
                f"a=candidate:{foundation}n {component} {transport} {int(priority) - 1} "
                f"{address} {port} typ host{rest}"
            )
    return "\r\n".join(lines)


def use_media_ports(ports: tuple[int, int] | None) -> None:
    """Bind every media socket to a port in ``ports`` (inclusive; None: any port).

    aioice (0.13) binds its host candidates with ``create_datagram_endpoint(local_addr=
    (address, 0))`` and has no port option, so the loop it sees is wrapped: a request for
    port 0 is served from the range, starting at a random port and skipping ports in use.
    Nothing else in aioice changes. Each participant's connection takes one port (audio is
    bundled and RTCP is multiplexed), per interface address offered.
    """
    if ports is None:
        setattr(aioice.ice, "asyncio", asyncio)  # noqa: B010 (aioice does not export it)
        return
    setattr(aioice.ice, "asyncio", _AsyncioWithPortRange(ports))  # noqa: B010


class _AsyncioWithPortRange(types.SimpleNamespace):
    def __init__(self, ports: tuple[int, int]) -> None:
        super().__init__()
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        return _LoopWithPortRange(asyncio.get_running_loop(), self._ports)


class _LoopWithPortRange:
    def __init__(self, loop: asyncio.AbstractEventLoop, ports: tuple[int, int]) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(
        self, factory: Any, local_addr: Any = None, **kw: Any
    ) -> Any:
        if local_addr is None or local_addr[1] != 0:
            return await self._loop.create_datagram_endpoint(factory, local_addr=local_addr, **kw)
        first, last = self._ports
        count = last - first + 1
        start = random.randrange(count)
        for step in range(count):
            port = first + (start + step) % count
            try:
                return await self._loop.create_datagram_endpoint(
                    factory, local_addr=(local_addr[0], port), **kw
                )
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"every media port {first}-{last} is in use")


@dataclass(frozen=True)
class TurnConfig:
    """This deployment's TURN server (coturn with ``use-auth-secret``)."""

    secret: str
    urls: tuple[str, ...]
    ttl_seconds: int = 12 * 3600


_turn: TurnConfig | None = None


def use_turn(config: TurnConfig | None) -> None:
    global _turn
    _turn = config


def turn_credentials(config: TurnConfig, now: float | None = None) -> tuple[str, str]:
    """A username and password coturn accepts until the expiry written in the username.

    The TURN REST API scheme (draft-uberti-behave-turn-rest, coturn's use-auth-secret):
    username = "<expiry unix time>:<random id>", password = base64(HMAC-SHA1(secret,
    username)). Nothing is stored: coturn recomputes the HMAC with the same secret. Five
    lines of the standard library; no maintained Python package does only this.
    """
    expiry = int((time.time() if now is None else now) + config.ttl_seconds)
    username = f"{expiry}:{secrets.token_hex(6)}"
    digest = hmac.new(config.secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for_page() -> list[dict[str, Any]]:
    """The page's ``iceServers``: only this deployment's TURN, with fresh credentials."""
    if _turn is None or not _turn.urls:
        return []
    username, credential = turn_credentials(_turn)
    return [{"urls": list(_turn.urls), "username": username, "credential": credential}]


def media_packet_totals() -> dict[str, int]:
    """Packets received and sent on every media connection since the process started."""
    totals = dict(_closed_packets)
    for peer in list(_live_peers):
        for key, value in peer.packet_counts().items():
            totals[key] += value
    return totals


async def listener_reports() -> list[tuple[float | None, float]]:
    """(round-trip seconds, fraction lost) from each listener's latest RTCP receiver report."""
    found: list[tuple[float | None, float]] = []
    for peer in list(_live_peers):
        found.extend(await peer.receiver_reports())
    return found


class MediaPeer:
    """One peer connection; a new offer replaces the connection (and restarts ICE).

    The voice's packets go to an inlet of the audio path straight after SRTP: aiortc's jitter
    buffer and decoder never see them. Each connection gets a fresh inlet (a new stream).
    """

    def __init__(
        self, inlet_for: Callable[[], VoiceInlet], audible: Callable[[], bool] | None = None
    ) -> None:
        self._inlet_for = inlet_for
        self._audible = audible  # whether the voice may be heard: if not, dropped before SRTP
        self._pc: RTCPeerConnection | None = None
        _live_peers.add(self)

    async def answer(
        self, offer_sdp: str, outbound: Callable[[int], Sequence[MediaStreamTrack]]
    ) -> str:
        """Answer ``offer_sdp``. ``outbound(n)`` gives the tracks to send when the offer has
        ``n`` audio sections: one per receive slot the page offered (the first carries the
        microphone's section too), sent on those sections in order."""
        await self.close()
        # No ICE servers: the server has its own addresses and never asks a third party.
        # (The page may relay through this deployment's TURN; the server reaches the relay.)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        offered_at = time.monotonic()

        @pc.on("iceconnectionstatechange")
        def connected() -> None:
            if pc.iceConnectionState == "completed":
                telemetry.observer.media_connected(time.monotonic() - offered_at)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            if not audio:
                raise ProtocolError(INVALID_SDP, "The offer has no audio.", ref="offer")
            inlet = self._inlet_for()
            for transceiver in audio:
                bypass_receive_pipeline(transceiver.receiver, inlet, self._audible)
            # The sections the page receives on, in order (aiortc keeps each offered direction,
            # reversed to its own side: the page's recvonly is our sendonly).
            receiving = [
                t for t in audio if getattr(t, "_offerDirection", None) in ("sendonly", "sendrecv")
            ] or audio[:1]
            for transceiver, track in zip(receiving, outbound(len(receiving)), strict=False):
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendrecv"  # answered sendonly where the page only receives
                if _direct_rtp and isinstance(track, ListenerTrack):
                    track.write_directly(DirectRtpWriter(transceiver.sender, track.writer_ready))
            await pc.setLocalDescription(await pc.createAnswer())
        except ProtocolError:
            await self.close()
            raise
        except Exception as exc:
            # aiortc raises ValueError and others on SDP it cannot use; the person gets a
            # stable code, the log keeps the reason.
            log.info("offer refused: %s", type(exc).__name__)
            await self.close()
            raise ProtocolError(INVALID_SDP, "The offer could not be used.", ref="offer") from exc
        return with_public_address(str(pc.localDescription.sdp), _public_address)

    def packet_counts(self) -> dict[str, int]:
        return _packet_counts(self._pc)

    async def receiver_reports(self) -> list[tuple[float | None, float]]:
        if self._pc is None:
            return []
        found = []
        for sender in self._pc.getSenders():
            for stats in (await sender.getStats()).values():
                if getattr(stats, "type", "") == "remote-inbound-rtp":
                    found.append((stats.roundTripTime, stats.fractionLost / 256))
        return found

    async def close(self) -> None:
        pc, self._pc = self._pc, None
        if pc is not None:
            for key, value in _packet_counts(pc).items():
                _closed_packets[key] += value
            await pc.close()


def _packet_counts(pc: RTCPeerConnection | None) -> dict[str, int]:
    # aiortc's DTLS transport counts every packet it carries (its getStats, without the await).
    counts = {"received": 0, "sent": 0}
    if pc is None:
        return counts
    for transceiver in pc.getTransceivers():
        transport: Any = transceiver.receiver.transport
        for stats in transport._get_stats().values():
            counts["received"] += stats.packetsReceived
            counts["sent"] += stats.packetsSent
        break  # bundled: one transport carries every transceiver
    return counts
