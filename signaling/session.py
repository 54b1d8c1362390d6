"""One client's WebSocket: read a message, ask the room to decide, send what it decided."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from rooms import machine
from rooms.errors import CIRCLE_NOT_OPEN, RoomError
from signaling import protocol
from signaling.hub import CircleHub, LiveCircle
from signaling.peer import MediaPeer
from signaling.protocol import (
    ClientMessage,
    Join,
    Leave,
    Mute,
    MuteParticipant,
    Offer,
    ProtocolError,
)

log = logging.getLogger(__name__)

# Messages waiting for a slow client; past this the client is too far behind to follow the
# circle and is disconnected (it reconnects and gets a fresh state).
MAX_OUTBOX = 256


class ClientSession:
    def __init__(self, ws: web.WebSocketResponse, hub: CircleHub) -> None:
        self._ws = ws
        self._hub = hub
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._live: LiveCircle | None = None
        self._seat_id: str | None = None
        self._peer: MediaPeer | None = None
        self._closing = False
        self._writer: asyncio.Task[None] | None = None

    # Connection (for the live circle) -------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        if self._closing:
            return
        if self._outbox.qsize() >= MAX_OUTBOX:
            log.warning("client outbox overflow; disconnecting")
            self._closing = True
            self._outbox.put_nowait(None)
            return
        self._outbox.put_nowait(message)

    # Lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.get_running_loop().create_task(self._write_forever())
        self._writer = writer
        try:
            async for msg in self._ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._send_error(protocol.INVALID_JSON, "Send JSON text frames.", None)
                if self._closing:
                    break
        finally:
            await self._depart()
            self._outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer

    async def _write_forever(self) -> None:
        while True:
            message = await self._outbox.get()
            if message is None:
                break
            try:
                await self._ws.send_json(message)
            except (ConnectionError, RuntimeError):
                break
        self._closing = True

    async def _close(self, code: int) -> None:
        self._closing = True
        # Let queued messages (e.g. the error saying why) go out before the close frame.
        self._outbox.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=2)
        await self._ws.close(code=code)

    async def _depart(self) -> None:
        live, seat_id = self._live, self._seat_id
        self._live = self._seat_id = None
        if self._peer is not None:
            await self._peer.close()
            self._peer = None
        if live is not None and seat_id is not None:
            try:
                await live.leave(seat_id)
            except Exception:
                log.exception("leaving the circle failed")
            await self._hub.release_if_empty(live)

    # Messages -------------------------------------------------------------------------
    async def _handle_text(self, raw: str) -> None:
        ref: str | None = None
        try:
            message = protocol.parse(raw)
            ref = _type_of(message)
            await self._dispatch(message)
        except ProtocolError as err:
            self._send_error(err.code, err.message, err.ref or ref)
        except RoomError as err:
            self._send_error(err.code, err.message, ref)
            if err.code == CIRCLE_NOT_OPEN and self._seat_id is None:
                await self._close(protocol.CLOSE_NOT_OPEN)
        except Exception:
            # Details stay in the server's log; the client gets a stable code only.
            log.exception("handling a %s message failed", ref)
            self._send_error(protocol.INTERNAL_ERROR, "Something went wrong on our side.", ref)

    async def _dispatch(self, message: ClientMessage) -> None:
        if isinstance(message, Join):
            await self._join(message)
            return
        live, seat_id = self._live, self._seat_id
        if live is None or seat_id is None:
            raise ProtocolError(protocol.NOT_JOINED, "Join the circle first.", ref=None)
        if isinstance(message, Offer):
            await self._answer(live, seat_id, message.sdp)
        elif isinstance(message, Mute):
            muted = message.muted
            await live.apply(lambda s: machine.set_own_mute(s, seat_id=seat_id, muted=muted))
        elif isinstance(message, MuteParticipant):
            target = message.participant_id
            await live.apply(lambda s: machine.mute_other(s, actor_id=seat_id, target_id=target))
        elif isinstance(message, Leave):
            await self._depart()
            await self._close(protocol.CLOSE_LEFT)

    async def _join(self, message: Join) -> None:
        if self._seat_id is not None:
            raise RoomError("already_joined", "You are already in this circle.")
        live, role = await self._hub.circle_for_link(message.token)
        seat_id = secrets.token_urlsafe(9)
        now = self._hub.now()
        try:
            seat = await live.join(
                seat_id,
                self,
                lambda s: machine.join(
                    s,
                    seat_id=seat_id,
                    display_name=message.display_name,
                    role=role,
                    muted=message.muted,
                    now=now,
                ),
            )
        except BaseException:
            await self._hub.release_if_empty(live)
            raise
        self._live, self._seat_id = live, seat.id

    async def _answer(self, live: LiveCircle, seat_id: str, sdp: str) -> None:
        if self._peer is None:
            self._peer = MediaPeer(lambda: live.audio.voice_inlet(seat_id))
        answer = await self._peer.answer(sdp, live.audio.listener_track(seat_id))
        self.send({"type": "answer", "sdp": answer})

    def _send_error(self, code: str, message: str, ref: str | None) -> None:
        self.send(protocol.error_message(code, message, ref))


def _type_of(message: ClientMessage) -> str:
    return {
        Join: "join",
        Offer: "offer",
        Mute: "mute",
        MuteParticipant: "mute_participant",
        Leave: "leave",
    }[type(message)]
