"""Live circles: the state of each running circle, its connections and its audio path.

Every command goes through ``LiveCircle.apply``: rooms/ decides, the new state is persisted
in one transaction, and only then are the events carried out (messages queued to clients,
audio gated). Commands on one circle are serialised by a lock, so the decisions see the
state the previous command left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from rooms import errors, machine
from rooms.audio_policy import audible_seats
from rooms.errors import RoomError
from rooms.machine import Decision, SeatJoined, SeatLeft, SeatUpdated
from rooms.model import CircleState, Role, Seat
from rooms.schedule import NOT_OPEN_MESSAGE
from rooms.voice_activity import MIN_INTERVAL, Speaking, VoiceActivity, observe
from signaling.audio import AudioPath
from signaling.protocol import PROTOCOL_VERSION, circle_json, participant_json, speaking_json
from signaling.store import CircleStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Command = Callable[[CircleState], Decision]


class Connection(Protocol):
    """How a live circle reaches one client. ``send`` queues and never blocks."""

    def send(self, message: dict[str, Any]) -> None: ...


class LiveCircle:
    def __init__(
        self, state: CircleState, store: CircleStore, audio: AudioPath, clock: Clock
    ) -> None:
        self.state = state
        self.audio = audio
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()
        self._connections: dict[str, Connection] = {}
        self._activity = VoiceActivity()
        self._speaking_task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.state.circle.id

    def now(self) -> datetime:
        return self._clock()

    async def apply(self, command: Command) -> Decision:
        """Decide, persist, then publish. RoomError leaves everything as it was."""
        async with self._lock:
            return await self._apply_locked(command)

    async def join(self, seat_id: str, connection: Connection, command: Command) -> Seat:
        """Seat someone and send them the circle as it is, before any later update."""
        if self._speaking_task is None:
            self._speaking_task = asyncio.get_running_loop().create_task(self._tell_speaking())
        async with self._lock:
            self._connections[seat_id] = connection
            try:
                decision = await self._apply_locked(command)
            except BaseException:
                self._connections.pop(seat_id, None)
                raise
            seat = decision.state.seat(seat_id)
            assert seat is not None
            connection.send(
                {
                    "type": "joined",
                    "protocol": PROTOCOL_VERSION,
                    "you": participant_json(seat),
                    "circle": circle_json(self.state.circle),
                    "participants": [participant_json(s) for s in self.state.seats.values()],
                }
            )
            return seat

    async def leave(self, seat_id: str) -> None:
        async with self._lock:
            if seat_id in self.state.seats:
                await self._apply_locked(lambda s: machine.leave(s, seat_id=seat_id))
            self._connections.pop(seat_id, None)
            self.audio.detach(seat_id)

    def is_empty(self) -> bool:
        return not self.state.seats and not self._connections

    async def close(self) -> None:
        task, self._speaking_task = self._speaking_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.audio.close()

    def observe_voices(self, now: float) -> Speaking | None:
        """Read the audio path's levels; an update for the pages when one is due."""
        self._activity, update = observe(self._activity, self.audio.levels(), now)
        return update

    async def _tell_speaking(self) -> None:
        # Polled at the coalescing interval, so a circle gets at most 5 updates a second.
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(MIN_INTERVAL)
            update = self.observe_voices(loop.time())
            if update is not None:
                self._broadcast(speaking_json(update))

    async def _apply_locked(self, command: Command) -> Decision:
        decision = command(self.state)
        if decision.state != self.state:
            await self._store.save_state(decision.state, now=self._clock())
        self.state = decision.state
        self.audio.set_audible(audible_seats(self.state))
        self._publish(decision)
        return decision

    def _publish(self, decision: Decision) -> None:
        for event in decision.events:
            if isinstance(event, SeatJoined):
                self._broadcast(
                    {"type": "participant_joined", "participant": participant_json(event.seat)},
                    skip=event.seat.id,
                )
            elif isinstance(event, SeatLeft):
                self._broadcast({"type": "participant_left", "participant_id": event.seat_id})
            elif isinstance(event, SeatUpdated):
                self._broadcast(
                    {
                        "type": "participant_updated",
                        "participant": participant_json(event.seat),
                        "by": event.by,
                    }
                )

    def _broadcast(self, message: dict[str, Any], skip: str | None = None) -> None:
        for seat_id, connection in self._connections.items():
            if seat_id != skip:
                connection.send(message)


class CircleHub:
    """The registry of circles running in this process."""

    def __init__(
        self, store: CircleStore, audio_factory: Callable[[], AudioPath], clock: Clock
    ) -> None:
        self._store = store
        self._audio_factory = audio_factory
        self._clock = clock
        self._live: dict[str, LiveCircle] = {}

    def now(self) -> datetime:
        return self._clock()

    async def circle_for_link(self, token: str) -> tuple[LiveCircle, Role]:
        """The live circle a link opens (loaded on first use) and the role it grants."""
        match = await self._store.find_by_link(token)
        if match is None:
            # The same refusal as a closed circle: a guessed link learns nothing.
            raise RoomError(errors.CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
        live = self._live.get(match.circle.id)
        if live is None:
            live = LiveCircle(
                CircleState(match.circle), self._store, self._audio_factory(), self._clock
            )
            self._live[live.id] = live
        return live, match.role

    async def release_if_empty(self, live: LiveCircle) -> None:
        if live.is_empty() and self._live.get(live.id) is live:
            del self._live[live.id]
            await live.close()

    def live_circles(self) -> list[LiveCircle]:
        return list(self._live.values())

    async def close(self) -> None:
        for live in list(self._live.values()):
            await live.close()
        self._live.clear()
