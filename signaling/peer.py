"""The WebRTC side of one participant: an aiortc peer connection answering their offer."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from signaling.audio import ListenerTrack
from signaling.protocol import INVALID_SDP, ProtocolError
from signaling.voice import DirectRtpWriter, VoiceInlet, bypass_receive_pipeline

log = logging.getLogger(__name__)

_stock_host_addresses = aioice.ice.get_host_addresses
_direct_rtp = True


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

    async def answer(self, offer_sdp: str, outbound: MediaStreamTrack) -> str:
        await self.close()
        # No ICE servers: the server has its own addresses and never asks a third party.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            if not audio:
                raise ProtocolError(INVALID_SDP, "The offer has no audio.", ref="offer")
            inlet = self._inlet_for()
            for transceiver in audio:
                bypass_receive_pipeline(transceiver.receiver, inlet, self._audible)
            sender = pc.addTrack(outbound)
            if _direct_rtp and isinstance(outbound, ListenerTrack):
                outbound.write_directly(DirectRtpWriter(sender, outbound.writer_ready))
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
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        pc, self._pc = self._pc, None
        if pc is not None:
            await pc.close()
