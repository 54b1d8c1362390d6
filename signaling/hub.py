"""Live circles: the state of each running circle, its connections and its audio path.

Every command goes through ``LiveCircle.apply``: rooms/ decides, the new state is persisted
in one transaction, and only then is it published: what changed in the list of people, the
room (floor, queue, timer, lobby, lock), the hosts' view (lobby, bans, support) and each
waiting person's place is sent by comparing the views before and after; the events say the
rest (who is let in, who is sent away). Commands on one circle are serialised by a lock, so
the decisions see the state the previous command left.
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
from rooms.machine import (
    Admitted,
    CircleEnded,
    CircleExtended,
    Decision,
    SentAway,
    UnmuteRequested,
)
from rooms.model import CircleState, CircleStatus, Role
from rooms.schedule import NOT_OPEN_MESSAGE
from rooms.voice_activity import MIN_INTERVAL, Speaking, VoiceActivity, observe
from signaling.audio import AudioPath
from signaling.peer import ice_servers_for_page
from signaling.protocol import (
    CLOSE_ENDED,
    CLOSE_REPLACED,
    CLOSE_SENT_AWAY,
    PROTOCOL_VERSION,
    REPLACED,
    circle_json,
    error_message,
    moderation_json,
    participant_json,
    participants_json,
    room_json,
    sees_moderation,
    speaking_json,
    waiting_json,
)
from signaling.store import CircleStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Command = Callable[[CircleState], Decision]

SENT_AWAY_MESSAGES = {
    errors.REMOVED: "A host removed you from this circle.",
    errors.DENIED: "A host did not let you in this time.",
}


class Connection(Protocol):
    """How a live circle reaches one client. Neither call blocks."""

    def send(self, message: dict[str, Any]) -> None: ...

    def close_soon(self, code: int) -> None:
        """Close after the messages already queued have gone out."""
        ...


class LiveCircle:
    def __init__(
        self, state: CircleState, store: CircleStore, audio: AudioPath, clock: Clock
    ) -> None:
        self.state = state
        self.audio = audio
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()
        # Seated people and people waiting in the lobby, by seat (or lobby place) id.
        self._connections: dict[str, Connection] = {}
        # The seat token each connection holds, to hand it over in `joined` when admitted.
        self._tokens: dict[str, str] = {}
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_task: asyncio.Task[None] | None = None
        self.on_empty: Callable[[LiveCircle], None] | None = None
        self._activity = VoiceActivity()
        self._speaking_task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.state.circle.id

    async def apply(self, command: Command) -> Decision:
        """Decide, persist, then publish. RoomError leaves everything as it was."""
        async with self._lock:
            return await self._apply_locked(command)

    async def join(
        self,
        seat_id: str,
        connection: Connection,
        command: Command,
        *,
        seat_token: str = "",
        resume_token: str | None = None,
    ) -> str:
        """Seat someone (or put them in the lobby, or give them their seat back) and send
        them where they are, before any later update. Returns the id they now hold."""
        async with self._lock:
            decision = await self._apply_locked(command)
            held = decision.subject or seat_id
            token = resume_token if held != seat_id and resume_token else seat_token
            old = self._connections.get(held)
            if old is not None and old is not connection:
                old.send(error_message(REPLACED, "You joined from another tab.", None))
                old.close_soon(CLOSE_REPLACED)
            self._connections[held] = connection
            self._tokens[held] = token
            if held in self.state.seats:
                self._send_joined(held)
            else:
                self._send_waiting(held)
            return held

    async def leave(self, seat_id: str) -> None:
        """Someone gives up their seat on purpose."""
        async with self._lock:
            if seat_id in self.state.seats or self.state.waiting(seat_id) is not None:
                await self._apply_locked(lambda s: machine.leave(s, seat_id=seat_id))
            self._forget(seat_id)

    async def disconnect(self, seat_id: str, connection: Connection) -> None:
        """A connection dropped: its seat is kept a while for the person to come back."""
        async with self._lock:
            if self._connections.get(seat_id) is not connection:
                return  # replaced by a newer connection, or already sent away
            self._forget(seat_id)
            now = self._clock()
            await self._apply_locked(lambda s: machine.disconnect(s, seat_id=seat_id, now=now))

    def is_empty(self) -> bool:
        return not self.state.seats and not self.state.lobby and not self._connections

    def start(self) -> None:
        self.audio.set_audible(audible_seats(self.state))
        self._schedule_expiry()
        if self._speaking_task is None:
            self._speaking_task = asyncio.get_running_loop().create_task(self._tell_speaking())

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._expiry_task is not None:
            self._expiry_task.cancel()
        task, self._speaking_task = self._speaking_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.audio.close()

    def _forget(self, seat_id: str) -> None:
        self._connections.pop(seat_id, None)
        self._tokens.pop(seat_id, None)
        self.audio.detach(seat_id)

    # --- seats kept for the reconnecting ---------------------------------------------

    def _schedule_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        due = machine.next_expiry(self.state)
        if due is None:
            return
        delay = max(0.0, (due - self._clock()).total_seconds()) + 0.05
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(delay, self._expire_soon)

    def _expire_soon(self) -> None:
        self._expiry = None
        self._expiry_task = asyncio.get_running_loop().create_task(self._expire())

    async def _expire(self) -> None:
        try:
            now = self._clock()
            await self.apply(lambda s: machine.expire(s, now=now))
        except Exception:
            log.exception("giving up expired seats failed")
            return
        if self.is_empty() and self.on_empty is not None:
            self.on_empty(self)

    # --- who is speaking ----------------------------------------------------------------

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

    # --- decide, persist, publish -----------------------------------------------------

    async def _apply_locked(self, command: Command) -> Decision:
        decision = command(self.state)
        if decision.state != self.state or decision.audit:
            await self._store.save_state(decision.state, now=self._clock(), audit=decision.audit)
        before = self.state
        self.state = decision.state
        self.audio.set_audible(audible_seats(self.state))
        self._publish(before, decision)
        self._schedule_expiry()
        return decision

    def _publish(self, before: CircleState, decision: Decision) -> None:
        after = decision.state
        admitted = {e.seat_id for e in decision.events if isinstance(e, Admitted)}
        for event in decision.events:
            if isinstance(event, SentAway):
                self._send_away(event.seat_id, event.code)
            elif isinstance(event, CircleEnded):
                self._end(event.by)
                return
            elif isinstance(event, CircleExtended):
                self._broadcast({"type": "circle_updated", "circle": circle_json(after.circle)})
        old_people, new_people = participants_json(before), participants_json(after)
        for seat_id, person in new_people.items():
            if seat_id not in old_people:
                self._broadcast({"type": "participant_joined", "participant": person}, seat_id)
            elif old_people[seat_id] != person:
                by = decision.actor if decision.actor != seat_id else None
                self._broadcast({"type": "participant_updated", "participant": person, "by": by})
        for seat_id in old_people:
            if seat_id not in new_people:
                self._broadcast({"type": "participant_left", "participant_id": seat_id})
        for seat_id in admitted:
            if seat_id in self._connections:
                self._send_joined(seat_id)
        room = room_json(after)
        if room != room_json(before):
            self._broadcast({"type": "room_updated", "room": room}, skip=admitted)
        view = moderation_json(after)
        view_changed = view != moderation_json(before)
        for seat_id, seat in after.seats.items():
            was = before.seats.get(seat_id)
            newly = was is None or not sees_moderation(was)
            if sees_moderation(seat) and (view_changed or newly) and seat_id not in admitted:
                self._send_to(seat_id, {"type": "moderation_updated", "moderation": view})
        for waiting in after.lobby:
            if waiting_json(after, waiting.id) != waiting_json(before, waiting.id):
                self._send_waiting(waiting.id)
        for event in decision.events:
            if isinstance(event, UnmuteRequested):
                self._send_to(event.seat_id, {"type": "unmute_requested", "by": event.by})

    def _send_joined(self, seat_id: str) -> None:
        seat = self.state.seats[seat_id]
        message: dict[str, Any] = {
            "type": "joined",
            "protocol": PROTOCOL_VERSION,
            "you": participant_json(seat, self.state),
            "circle": circle_json(self.state.circle),
            "participants": list(participants_json(self.state).values()),
            "room": room_json(self.state),
            "seat_token": self._tokens.get(seat_id, ""),
            "ice_servers": ice_servers_for_page(),  # this deployment's TURN, fresh credentials
        }
        if sees_moderation(seat):
            message["moderation"] = moderation_json(self.state)
        self._send_to(seat_id, message)

    def _send_waiting(self, waiting_id: str) -> None:
        view = waiting_json(self.state, waiting_id)
        if view is not None:
            token = self._tokens.get(waiting_id, "")
            self._send_to(waiting_id, {"type": "waiting", **view, "seat_token": token})

    def _send_away(self, seat_id: str, code: str) -> None:
        connection = self._connections.get(seat_id)
        self._forget(seat_id)
        if connection is not None:
            connection.send(error_message(code, SENT_AWAY_MESSAGES.get(code, code), None))
            connection.close_soon(CLOSE_SENT_AWAY)

    def _end(self, by: str) -> None:
        for seat_id, connection in list(self._connections.items()):
            connection.send({"type": "circle_ended", "by": by})
            connection.close_soon(CLOSE_ENDED)
            self._forget(seat_id)

    def _send_to(self, seat_id: str, message: dict[str, Any]) -> None:
        connection = self._connections.get(seat_id)
        if connection is not None:
            connection.send(message)

    def _broadcast(self, message: dict[str, Any], skip: str | set[str] | None = None) -> None:
        skipped = {skip} if isinstance(skip, str) else (skip or set())
        for seat_id, connection in self._connections.items():
            # Only the seated: the lobby hears nothing of the circle.
            if seat_id in self.state.seats and seat_id not in skipped:
                connection.send(message)


class MisroutedCircle(RuntimeError):
    """A link opens a circle that another process hosts: a circle lives in one process."""


class CircleHub:
    """The registry of circles running in this process.

    With several worker processes, ``hosts`` says which circles (by id) this one may run;
    a link to any other is refused with MisroutedCircle rather than opened twice.
    """

    def __init__(
        self,
        store: CircleStore,
        audio_factory: Callable[[], AudioPath],
        clock: Clock,
        *,
        hosts: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._audio_factory = audio_factory
        self._clock = clock
        self._hosts = hosts
        self._live: dict[str, LiveCircle] = {}

    def now(self) -> datetime:
        return self._clock()

    async def circle_for_link(self, token: str) -> tuple[LiveCircle, Role]:
        """The live circle a link opens (loaded on first use) and the role it grants."""
        live, role, _ = await self.open_link(token)
        return live, role

    async def open_link(self, token: str) -> tuple[LiveCircle, Role, dict[str, str]]:
        """Like circle_for_link, plus the details a refusal to a valid link may carry.

        A valid link outside its series' occurrences is refused with ``next_starts_at``
        (when one is planned); an unknown link gets the same refusal without it.

        A circle loaded from storage had its connections in an earlier process (or none):
        everyone in it is reconnecting, and keeps the seat for the grace period.
        """
        match = await self._store.find_by_link(token)
        if match is None:
            # The same refusal as a closed circle: a guessed link learns nothing.
            raise RoomError(errors.CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
        details = (
            {"next_starts_at": match.next_starts_at.isoformat()}
            if match.next_starts_at is not None
            else {}
        )
        if match.circle is None:
            raise RoomError(errors.CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE, details=details)
        live = self._live.get(match.circle.id)
        if live is None and self._hosts is not None and not self._hosts(match.circle.id):
            raise MisroutedCircle(f"circle {match.circle.id} is hosted by another process")
        if live is None:
            saved = await self._store.load_state(match)
            if saved is None:
                state = CircleState.starting(match.circle, match.settings)
            else:
                state = machine.restore(saved, now=self._clock()).state
            live = LiveCircle(state, self._store, self._audio_factory(), self._clock)
            live.on_empty = self._release_soon
            self._live[live.id] = live
            live.start()
        return live, match.role, details

    async def describe_link(self, token: str) -> dict[str, Any] | None:
        """What the join page may show before joining: the circle, the hosts present and the
        role the link grants, only while the circle is open. An unknown link and a closed
        circle both give None, as a refused join does. Loads nothing and opens nothing.
        """
        match = await self._store.find_by_link(token)
        if match is None or match.circle is None:
            return None
        live = self._live.get(match.circle.id)
        circle = live.state.circle if live is not None else match.circle
        if circle.status is not CircleStatus.OPEN:
            return None
        seats = live.state.seats.values() if live is not None else ()
        settings = live.state.settings if live is not None else match.settings
        return {
            "circle": circle_json(circle),
            "hosts": [seat.display_name for seat in seats if seat.role is Role.HOST],
            "role": match.role.value,
            # Host links skip the passcode, so only a participant's page asks for one.
            "passcode_required": bool(settings.passcode) and match.role is not Role.HOST,
        }

    def _release_soon(self, live: LiveCircle) -> None:
        asyncio.get_running_loop().create_task(self.release_if_empty(live))

    async def release_if_empty(self, live: LiveCircle) -> None:
        if live.is_empty() and self._live.get(live.id) is live:
            del self._live[live.id]
            await live.close()

    def live_circles(self) -> list[LiveCircle]:
        return list(self._live.values())

    async def close(self) -> None:
        for live in list(self._live.values()):
            with contextlib.suppress(Exception):
                await live.close()
        self._live.clear()
