"""One client's WebSocket: read a message, ask the room to decide, send what it decided."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from rooms import errors, machine
from rooms.errors import CIRCLE_NOT_OPEN, PASSCODE_REQUIRED, RoomError
from rooms.limits import Bucket, Strikes, strike, take
from rooms.machine import Decision
from rooms.model import CircleState, Role, SpeakingMode
from signaling import protocol, telemetry
from signaling.admission import REFUSAL_CLOSE_CODES, REFUSAL_MESSAGES, Admission
from signaling.guard import Guards
from signaling.hub import CircleHub, LiveCircle, storage_unavailable
from signaling.passcodes import check_passcode
from signaling.peer import MediaPeer
from signaling.protocol import (
    ClientMessage,
    Command,
    Extend,
    Join,
    Leave,
    Mute,
    MuteParticipant,
    Offer,
    ProtocolError,
)
from signaling.store import StorageUnavailable

log = logging.getLogger(__name__)

# Messages waiting for a slow client; past this the client is too far behind to follow the
# circle and is disconnected (it reconnects and gets a fresh state).
MAX_OUTBOX = 256
SEAT_TOKEN_BYTES = 24
# A run of refused messages ends after this many quiet seconds.
FLOOD_FORGET_SECONDS = 10.0
# Refusals after which the connection is closed, and with which code.
CLOSING_REFUSALS = {
    CIRCLE_NOT_OPEN: protocol.CLOSE_NOT_OPEN,
    errors.BANNED: protocol.CLOSE_SENT_AWAY,
    **REFUSAL_CLOSE_CODES,
}


def digest(secret: str, scope: str = "") -> str:
    """SHA-256 of a secret, so that seat tokens and device keys are never stored as sent.

    Device keys are scoped to one circle: the same browser cannot be followed across circles
    by its stored digest.
    """
    return hashlib.sha256(f"{scope}\0{secret}".encode()).hexdigest()


class ClientSession:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        hub: CircleHub,
        *,
        join_timeout: float | None = None,
        admission: Admission | None = None,
        guards: Guards | None = None,
        address: str = "",
        on_joined: Callable[[], None] | None = None,
    ) -> None:
        self._ws = ws
        self._hub = hub
        self._admission = admission
        self._join_timeout = join_timeout
        # Limits are kept per socket here, per circle/device/address in the shared guards.
        # ``address`` is a key in memory, never logged or stored.
        self._guards = guards or Guards()
        self._limits = self._guards.limits
        self._address = address
        self._on_joined = on_joined
        now = self._monotonic()
        self._messages = Bucket(self._limits.message_burst, now)
        self._renames = Bucket(self._limits.rename_burst, now)
        self._flood = Strikes()
        self._wrong_passcodes = 0
        self._lobby_timer: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._live: LiveCircle | None = None
        self._seat_id: str | None = None
        self._peer: MediaPeer | None = None
        self._closing = False
        self._leaving = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

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

    def close_soon(self, code: int) -> None:
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self._close(code))

    # Lifecycle ------------------------------------------------------------------------
    async def run(self, first: str | None = None) -> None:
        """Serve the socket until it closes. ``first``: a text message already read from it
        (several nodes: the door read the join to find the circle's node, and it is here)."""
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write_forever())
        self._writer = writer
        watchdog = (
            loop.create_task(self._close_unless_joined(self._join_timeout))
            if self._join_timeout
            else None
        )
        try:
            if first is not None and self._within_rate():
                await self._handle_text(first)
            async for msg in self._ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if not self._within_rate():
                    if self._flood.count >= self._limits.flood_close_after:
                        await self._close(protocol.CLOSE_RATE_LIMITED)
                elif msg.type == WSMsgType.TEXT:
                    await self._handle_text(msg.data)
                else:
                    self._send_error(protocol.INVALID_JSON, protocol.BINARY_MESSAGE, None)
                if self._closing:
                    break
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if self._lobby_timer is not None:
                self._lobby_timer.cancel()
            await self._depart()
            self._outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer

    @staticmethod
    def _monotonic() -> float:
        return asyncio.get_running_loop().time()

    def _within_rate(self) -> bool:
        """Spend a token for one message; a refused one is answered, left unread and counted
        towards the close (so a flood costs a few hundred microseconds a message at most)."""
        now = self._monotonic()
        limits = self._limits
        self._messages, allowed = take(
            self._messages, rate=limits.message_rate, capacity=limits.message_burst, now=now
        )
        if allowed:
            return True
        self._flood = strike(self._flood, now=now, forget_after=FLOOD_FORGET_SECONDS)
        self._send_error(protocol.RATE_LIMITED, protocol.RATE_LIMITED_MESSAGE, None)
        return False

    async def _close_after_lobby_wait(self, seconds: float, waiting_id: str) -> None:
        # A lobby place held by a socket nobody attends to is given up, not kept forever.
        await asyncio.sleep(seconds)
        live = self._live
        if live is None or self._seat_id != waiting_id or live.state.waiting(waiting_id) is None:
            return
        self._send_error(protocol.LOBBY_TIMEOUT, protocol.LOBBY_TIMEOUT_MESSAGE, None)
        self._leaving = True
        await self._close(protocol.CLOSE_LOBBY_TIMEOUT)

    async def _close_unless_joined(self, seconds: float) -> None:
        # An open socket that never joins holds server resources for nothing.
        await asyncio.sleep(seconds)
        if self._seat_id is None and not self._closing:
            self._send_error(protocol.JOIN_TIMEOUT, protocol.JOIN_TIMEOUT_MESSAGE, None)
            await self._close(protocol.CLOSE_JOIN_TIMEOUT)

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
                if self._leaving:
                    await live.leave(seat_id)
                else:
                    await live.disconnect(seat_id, self)
            except Exception:
                log.exception("leaving the circle failed")
            await self._hub.release_if_empty(live)

    # Messages -------------------------------------------------------------------------
    async def _handle_text(self, raw: str) -> None:
        ref: str | None = None
        try:
            message = protocol.parse(raw)
            ref = type_of(message)
            await self._dispatch(message)
        except ProtocolError as err:
            self._send_error(err.code, err.message, err.ref or ref)
        except RoomError as err:
            self._send_error(err.code, err.message, ref, err.details)
            if err.code in CLOSING_REFUSALS and self._seat_id is None:
                await self._close(CLOSING_REFUSALS[err.code])
            elif self._wrong_passcodes >= self._limits.passcode_tries_per_socket:
                self._send_error(
                    protocol.TOO_MANY_ATTEMPTS, "Too many wrong passcodes on this connection.", ref
                )
                await self._close(protocol.CLOSE_RATE_LIMITED)
        except Exception:
            # Details stay in the server's log; the client gets a stable code only.
            log.exception("handling a %s message failed", ref)
            self._send_error(protocol.INTERNAL_ERROR, protocol.INTERNAL_MESSAGE, ref)

    async def _dispatch(self, message: ClientMessage) -> None:
        if isinstance(message, Join):
            await self._join(message)
            return
        live, seat_id = self._live, self._seat_id
        if live is None or seat_id is None:
            raise ProtocolError(protocol.NOT_JOINED, protocol.NOT_JOINED_MESSAGE, ref=None)
        if isinstance(message, Offer):
            if seat_id not in live.state.seats:
                raise RoomError(errors.IN_LOBBY, "Please wait until a host lets you in.")
            await self._answer(live, seat_id, message.sdp)
        elif isinstance(message, Mute):
            # Decided now, stored with whatever else comes meanwhile (group commit) and
            # published once stored: a burst of commands is a few transactions.
            muted = message.muted
            live.submit(
                lambda s: machine.set_own_mute(s, seat_id=seat_id, muted=muted), actor=seat_id
            )
        elif isinstance(message, MuteParticipant):
            target = message.participant_id
            live.submit(
                lambda s: machine.mute_other(s, actor_id=seat_id, target_id=target), actor=seat_id
            )
        elif isinstance(message, Extend):
            minutes, now = message.minutes, self._hub.now()
            live.submit(
                lambda s: machine.extend(s, actor_id=seat_id, minutes=minutes, now=now),
                actor=seat_id,
            )
        elif isinstance(message, Command):
            if message.kind == "rename":
                self._check_rename_rate()
            live.submit(_command(message, seat_id, self._hub.now), actor=seat_id)
        elif isinstance(message, Leave):
            self._leaving = True
            await self._depart()
            await self._close(protocol.CLOSE_LEFT)

    async def _join(self, message: Join) -> None:
        if self._seat_id is not None:
            raise RoomError(errors.ALREADY_JOINED, "You are already in this circle.")
        started = time.monotonic()
        refusal = self._refusal(message)
        if refusal is not None:
            raise RoomError(refusal, REFUSAL_MESSAGES[refusal])
        # Until it is seated or refused, the arrival keeps its circle from being released.
        resume_hash = digest(message.seat_token) if message.seat_token else ""
        arrival = await self._hub.arrive(message.token, resume_hash)
        live, role, details = arrival.live, arrival.role, arrival.details
        seat_id = secrets.token_urlsafe(9)
        seat_token = secrets.token_urlsafe(SEAT_TOKEN_BYTES)
        tried, wait = False, 0.0
        try:
            passcode_ok, tried, wait = await self._check_passcode(live, role, message)
            now = self._hub.now()
            held = await live.join(
                seat_id,
                self,
                lambda s: machine.join(
                    s,
                    seat_id=seat_id,
                    display_name=message.display_name,
                    role=role,
                    muted=message.muted,
                    now=now,
                    token_hash=digest(seat_token),
                    resume_hash=resume_hash,
                    device_hash=digest(message.device_key, live.id) if message.device_key else "",
                    passcode_ok=passcode_ok,
                    max_lobby=self._limits.lobby_size,
                ),
                seat_token=seat_token,
                resume_token=message.seat_token,
                resume_hash=resume_hash,
            )
        except StorageUnavailable:
            await self._hub.arrived(arrival)
            raise storage_unavailable() from None
        except RoomError as refused:
            await self._hub.arrived(arrival)
            if refused.code == PASSCODE_REQUIRED and wait > 0:
                raise RoomError(
                    protocol.TOO_MANY_ATTEMPTS,
                    "Too many wrong passcodes were tried. Please wait before trying again.",
                    details={"retry_after": math.ceil(wait)},
                ) from None
            if refused.code == PASSCODE_REQUIRED and tried:
                self._wrong_passcodes += 1
                keys = self._passcode_keys(live, message)
                self._guards.passcodes.record_failure(keys, now=self._monotonic())
            if refused.code == CIRCLE_NOT_OPEN and details and not refused.details:
                raise RoomError(refused.code, refused.message, details=details) from None
            raise
        except BaseException:
            await self._hub.arrived(arrival)
            raise
        self._live, self._seat_id = live, held
        await self._hub.arrived(arrival)
        telemetry.observer.joined(time.monotonic() - started)
        if self._on_joined is not None:
            self._on_joined()
        if held not in live.state.seats and self._lobby_timer is None:
            self._lobby_timer = asyncio.get_running_loop().create_task(
                self._close_after_lobby_wait(self._limits.lobby_idle_seconds, held)
            )

    def _refusal(self, message: Join) -> str | None:
        """Overloaded or draining: ``server_busy`` or ``server_draining`` for a newcomer;
        None for everyone else, people taking their own seat back included."""
        admission = self._admission
        code = admission.refusal() if admission is not None else None
        if admission is None or code is None or self._holds_live_seat(message.seat_token):
            return None
        admission.refused += 1
        return code

    def _holds_live_seat(self, seat_token: str | None) -> bool:
        if not seat_token:
            return False
        held = digest(seat_token)
        return any(live.holds(held) for live in self._hub.live_circles())

    def _passcode_keys(self, live: LiveCircle, message: Join) -> list[str]:
        keys = [f"circle:{live.id}"]
        if self._address:
            keys.append(f"address:{self._address}")
        if message.device_key:
            keys.append(f"device:{digest(message.device_key)}")
        return keys

    async def _check_passcode(
        self, live: LiveCircle, role: Role, message: Join
    ) -> tuple[bool, bool, float]:
        """(passcode_ok, whether it was checked, seconds to wait before checking one).

        Checked only when the circle has one and one was sent; refused unchecked (and
        without the KDF's cost) while a circle, device or address waits out its delay.
        """
        stored = live.state.settings.passcode
        if role is Role.HOST or not stored or not message.passcode:
            return False, False, 0.0
        wait = self._guards.passcodes.wait(
            self._passcode_keys(live, message), now=self._monotonic()
        )
        if wait > 0:
            return False, False, wait
        return await check_passcode(message.passcode, stored), True, 0.0

    def _check_rename_rate(self) -> None:
        limits = self._limits
        self._renames, allowed = take(
            self._renames,
            rate=1.0 / limits.rename_every_seconds,
            capacity=limits.rename_burst,
            now=self._monotonic(),
        )
        if not allowed:
            raise RoomError(
                protocol.RATE_LIMITED, "You changed your name often; wait a little first."
            )

    async def _answer(self, live: LiveCircle, seat_id: str, sdp: str) -> None:
        if self._peer is None:
            self._peer = MediaPeer(
                lambda: live.audio.voice_inlet(seat_id), lambda: live.audio.is_audible(seat_id)
            )
        answer = await self._peer.answer(sdp, lambda n: live.audio.listener_tracks(seat_id, n))
        self.send({"type": "answer", "sdp": answer})

    def _send_error(
        self, code: str, message: str, ref: str | None, details: dict[str, Any] | None = None
    ) -> None:
        if ref == "join":
            telemetry.observer.refused(code)
        self.send(protocol.error_message(code, message, ref, details))


def _command(
    message: Command, me: str, clock: Callable[[], Any]
) -> Callable[[CircleState], Decision]:
    """The rooms/ decision a moderation or care command asks for, from ``me``."""
    kind, who, value = message.kind, message.participant_id or "", message.value
    now = clock()
    m = machine
    table: dict[str, Callable[[CircleState], Decision]] = {
        "mute_all": lambda s: m.mute_all(s, actor_id=me),
        "raise_hand": lambda s: m.raise_hand(s, seat_id=me),
        "next_speaker": lambda s: m.next_speaker(s, actor_id=me, now=now),
        "end_turn": lambda s: m.end_turn(s, actor_id=me),
        "admit_all": lambda s: m.admit_all(s, actor_id=me, now=now),
        "end_circle": lambda s: m.end_circle(s, actor_id=me, now=now),
        "request_unmute": lambda s: m.request_unmute(s, actor_id=me, target_id=who),
        "give_floor": lambda s: m.give_floor(s, actor_id=me, target_id=who, now=now),
        "admit": lambda s: m.admit(s, actor_id=me, waiting_id=who, now=now),
        "deny": lambda s: m.deny(s, actor_id=me, waiting_id=who),
        "remove": lambda s: m.remove(s, actor_id=me, target_id=who, now=now),
        "lower_hand": lambda s: m.lower_hand(s, actor_id=me, target_id=who or None),
        "answer_unmute": lambda s: m.answer_unmute(s, seat_id=me, accept=bool(value)),
        "set_lobby": lambda s: m.set_lobby(s, actor_id=me, enabled=bool(value), now=now),
        "set_lock": lambda s: m.set_lock(s, actor_id=me, locked=bool(value)),
        "need_support": lambda s: m.need_support(s, seat_id=me, active=bool(value)),
        "extend_turn": lambda s: m.extend_turn(s, actor_id=me, seconds=_as_int(value), now=now),
        "set_share_time": lambda s: m.set_share_time(
            s, actor_id=me, seconds=None if value is None else _as_int(value)
        ),
        "set_speaking_mode": lambda s: m.set_speaking_mode(
            s, actor_id=me, mode=SpeakingMode(str(value))
        ),
        "set_role": lambda s: m.set_role(s, actor_id=me, target_id=who, role=Role(str(value))),
        "unban": lambda s: m.unban(s, actor_id=me, ban_id=str(value)),
        "rename": lambda s: m.rename(s, seat_id=me, display_name=str(value)),
    }
    return table[kind]


def _as_int(value: object) -> int:
    assert isinstance(value, int)
    return value


def type_of(message: ClientMessage) -> str:
    """The name a message's errors refer to it by (``ref``)."""
    if isinstance(message, Command):
        return message.kind
    return {
        Join: "join",
        Offer: "offer",
        Mute: "mute",
        MuteParticipant: "mute_participant",
        Leave: "leave",
        Extend: "extend",
    }[type(message)]
