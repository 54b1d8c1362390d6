"""Live circles: the state of each running circle, its connections and its audio path.

Every command goes through ``LiveCircle.submit`` (or ``apply``, which also waits for it to
be published): rooms/ decides at once, on the state the previous decision left, and the
audio path follows the decision at once (a host's mute silences at once). The decision is
then stored, and only then published: what changed in the list of people, the room (floor,
queue, timer, lobby, lock), the hosts' view (lobby, bans, support) and each waiting
person's place is sent by comparing the views before and after; the events say the rest
(who is let in, who is sent away).

Group commit: one write per circle is in flight at a time; the decisions taken meanwhile
are stored together in the next transaction, then published in order. When storage cannot
be reached, the circle goes on in memory (safety first: hosts can still mute and remove,
audio keeps flowing), publishes without waiting, keeps the unstored decisions in order and
writes them when the database is back; joins are refused with ``storage_unavailable``.

The hub loads, opens and releases circles single-flight per circle id: concurrent arrivals
share one load, a circle is released only when nobody is in it, arriving, or unstored.
See docs/architecture.md, "Live circles: loading, writing, outages".

With several nodes the hub is the same; the ownership layer is outside it (server/ownership.py:
a store whose loads take the circle's lease and whose writes are fenced). The hub only tells
it when a circle is released (``on_released``) and lets it stop a circle at once (``evict``:
another node owns it, or this one drains); a write that meets another node's fence
(``LeaseLost``) evicts the circle by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
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
from rooms.model import CircleSettings, CircleState, CircleStatus, Role
from rooms.roles import is_moderator
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
    STORAGE_UNAVAILABLE,
    STORAGE_UNAVAILABLE_MESSAGE,
    ProtocolError,
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
from signaling.single_flight import SingleFlight
from signaling.store import CircleStore, LeaseLost, LinkMatch, StateWrite, StorageUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Command = Callable[[CircleState], Decision]

# While storage is away, a circle tries its unstored decisions again after this pause,
# doubling up to the cap: back within about a second of the database.
FIRST_WRITE_RETRY = 0.1
MAX_WRITE_RETRY = 1.0
# A store call that takes longer than this counts as storage being away: the circle publishes
# what it decided instead of leaving everyone waiting. The database bounds its own writes
# more finely (server/storage/database.py: 5 s on a connection, a longer queue for one, since
# a pool shared by many circles in a join burst is busy, not away); this is the last resort
# for a store that neither answers nor gives up.
WRITE_TIMEOUT = 30.0
# While storage is away, how many unstored writes a circle keeps in memory (by default;
# HEARTH_OUTAGE_KEEP_LIMIT) before it refuses its participants' commands (twice that for
# hosts' and co-hosts'). Commands that only change the last state (no audit entry, the
# same seats) merge into one write, so only moderation, renames and seats coming and going
# count. Each write holds one state.
UNSTORED_LIMIT = 1000
KEEPING_FULL_MESSAGE = (
    "The server cannot reach its records and has kept as many changes as it can. "
    "This one was not made; please try again in a little while."
)
# How long someone arriving on the join link waits for a host's arrival that is in flight
# (the host's join opens the circle) before being told it is not open.
HOST_ARRIVAL_WAIT = 10.0
# Close code for connections of a circle that moved to another node: 1012, "service
# restart", on which the page reconnects with its seat token (its door bridges it on).
CLOSE_MOVED = 1012
# At shutdown, how long a circle may take to write what it has not stored yet.
FLUSH_AT_CLOSE = 5.0

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


@dataclass(slots=True)
class _Pending:
    """A decision not yet published: waiting for its write (``seq``), or for the ones before."""

    before: CircleState
    decision: Decision
    # The number of the write that stores it; None when there is nothing to store.
    seq: int | None
    done: asyncio.Future[Decision]
    # Run right after publishing it (a join hands its connection the circle here).
    then: Callable[[Decision], None] | None = None


@dataclass(slots=True)
class WriteStats:
    """What group commit did, for tests and bench/: decisions stored, transactions used."""

    decisions: int = 0
    transactions: int = 0
    outages: int = 0
    # Decisions published while storage was away (stored when it came back).
    published_unstored: int = 0


class LiveCircle:
    def __init__(
        self,
        state: CircleState,
        store: CircleStore,
        audio: AudioPath,
        clock: Clock,
        *,
        unstored_limit: int = UNSTORED_LIMIT,
    ) -> None:
        # What everyone was told (published); decisions are taken on ``_decided``.
        self.state = state
        self._decided = state
        self.audio = audio
        self._store = store
        self._clock = clock
        # Seated people and people waiting in the lobby, by seat (or lobby place) id.
        self._connections: dict[str, Connection] = {}
        # The seat token each connection holds, to hand it over in `joined` when admitted.
        self._tokens: dict[str, str] = {}
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_task: asyncio.Task[None] | None = None
        self.on_empty: Callable[[LiveCircle], None] | None = None
        # Several nodes: called when a write found the circle claimed by another node.
        self.on_lost: Callable[[LiveCircle], None] | None = None
        self._activity = VoiceActivity()
        self._speaking_task: asyncio.Task[None] | None = None
        # Group commit: decisions waiting to be published, writes waiting to be stored.
        self._unpublished: deque[_Pending] = deque()
        self._unstored: list[StateWrite] = []
        # How many decisions each unstored write holds (a merged one, more than one), and
        # how many of the first unstored writes the writer is storing now.
        self._unstored_decisions: list[int] = []
        self._in_flight = 0
        self._full_logged = False
        self._unstored_limit = unstored_limit
        self._write_seq = 0  # writes queued so far
        self._stored_seq = 0  # of which stored
        self._writer: asyncio.Task[None] | None = None
        self.storage_away = False
        self.stats = WriteStats()
        # The links (by SHA-256 of the token) that opened this circle here, and what they
        # resolved to: during an outage, someone holding a seat here gets back in by them.
        self.links: dict[str, LinkMatch] = {}

    @property
    def id(self) -> str:
        return self.state.circle.id

    @property
    def decided(self) -> CircleState:
        """The state after every decision taken, stored and published or not."""
        return self._decided

    def submit(
        self,
        command: Command,
        then: Callable[[Decision], None] | None = None,
        *,
        actor: str | None = None,
    ) -> tuple[Decision, asyncio.Future[Decision]]:
        """Decide now; store and publish in the background. Returns the decision and a
        future done once it is published. RoomError leaves everything as it was.

        ``actor`` is the seat whose own command this is (from its socket): such a command
        is refused with ``storage_unavailable`` when the circle already keeps as many
        unstored changes as it may (UNSTORED_LIMIT; see _room_to_keep)."""
        before = self._decided
        decision = command(before)
        write: StateWrite | None = None
        merge = False
        if decision.state != before or decision.audit:
            write = StateWrite(decision.state, self._clock(), decision.audit)
            merge = self._mergeable(write)
            if actor is not None and not merge:
                self._room_to_keep(actor)
        self._decided = decision.state
        # The audio path follows decisions at once: a mute silences before it is stored.
        self.audio.set_audible(audible_seats(self._decided))
        seq: int | None = None
        if write is not None:
            if merge:
                self._unstored[-1] = write
                self._unstored_decisions[-1] += 1
            else:
                self._unstored.append(write)
                self._unstored_decisions.append(1)
            self._write_seq += 1
            seq = self._write_seq
            self.stats.decisions += 1
        done: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._unpublished.append(_Pending(before, decision, seq, done, then))
        self._publish_ready()
        if self._unstored and self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_until_stored())
        return decision, done

    def _mergeable(self, write: StateWrite) -> bool:
        """Whether ``write`` may replace the last unstored write instead of following it,
        losing nothing: the last one is not being written now, is not the first one kept
        (whose time dates the seats gone before it), has no audit entry of its own (its
        entries keep their own time), and has the same seats (the seats' rows and left
        times come out the same). A batch stores the last state only, so the state in
        between (a mute toggled, a hand raised and lowered) is not needed. While storage is
        away, this keeps a burst of such commands at one write kept in memory."""
        last = len(self._unstored) - 1
        if last < max(1, self._in_flight):
            return False
        previous = self._unstored[last]
        return not previous.audit and previous.state.seats.keys() == write.state.seats.keys()

    def _room_to_keep(self, actor: str) -> None:
        """Refuse a person's command when the unstored changes kept reach the limit (only
        while storage is away can they pile up): participants at UNSTORED_LIMIT, hosts and
        co-hosts at twice that, so that they can still mute and remove for a while
        longer. Nothing is lost and nobody is left unaware: the one refused is told."""
        seat = self._decided.seats.get(actor)
        moderator = seat is not None and is_moderator(seat.role)
        limit = self._unstored_limit * (2 if moderator else 1)
        if len(self._unstored) < limit:
            return
        if not self._full_logged:
            self._full_logged = True
            log.warning(
                "storage away: the circle keeps %d unstored changes and refuses more",
                len(self._unstored),
            )
        raise RoomError(STORAGE_UNAVAILABLE, KEEPING_FULL_MESSAGE)

    async def apply(self, command: Command) -> Decision:
        """Decide, store, then publish; returns once published. RoomError changes nothing."""
        _, done = self.submit(command)
        return await done

    def holds(self, token_hash: str) -> bool:
        """Whether a seat or lobby place of this circle is held by that seat token."""
        if not token_hash:
            return False
        decided = self._decided
        return any(seat.token_hash == token_hash for seat in decided.seats.values()) or any(
            waiting.token_hash == token_hash for waiting in decided.lobby
        )

    async def join(
        self,
        seat_id: str,
        connection: Connection,
        command: Command,
        *,
        seat_token: str = "",
        resume_token: str | None = None,
        resume_hash: str = "",
    ) -> str:
        """Seat someone (or put them in the lobby, or give them their seat back) and send
        them where they are, before any later update. Returns the id they now hold.

        A join is stored before anyone hears of it; while storage is away a newcomer is
        refused (StorageUnavailable), since nothing about them could be kept. Someone
        taking back a seat (or lobby place) this circle holds (``resume_hash``, the digest
        of their seat token) gets it back from memory: it is stored with the rest when the
        database is back.
        """
        if self.storage_away and not self.holds(resume_hash):
            raise StorageUnavailable("the circle's storage is away")

        def seat(decision: Decision) -> None:
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

        decision, done = self.submit(command, then=seat)
        await done
        return decision.subject or seat_id

    async def leave(self, seat_id: str) -> None:
        """Someone gives up their seat on purpose."""
        self._forget(seat_id)
        if seat_id in self._decided.seats or self._decided.waiting(seat_id) is not None:
            await self.apply(lambda s: machine.leave(s, seat_id=seat_id))

    async def disconnect(self, seat_id: str, connection: Connection) -> None:
        """A connection dropped: its seat is kept a while for the person to come back."""
        if self._connections.get(seat_id) is not connection:
            return  # replaced by a newer connection, or already sent away
        self._forget(seat_id)
        now = self._clock()
        await self.apply(lambda s: machine.disconnect(s, seat_id=seat_id, now=now))

    def is_empty(self) -> bool:
        """Nobody seated, waiting or connected, and nothing left to store or publish."""
        decided = self._decided
        return (
            not decided.seats
            and not decided.lobby
            and not self._connections
            and not self._unstored
            and not self._unpublished
        )

    def start(self) -> None:
        self.audio.set_audible(audible_seats(self._decided))
        self._schedule_expiry()
        if self._speaking_task is None:
            self._speaking_task = asyncio.get_running_loop().create_task(self._tell_speaking())

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._expiry_task
            self._expiry_task = None
        writer = self._writer
        if writer is not None:
            # What was decided is written before the circle goes (bounded: at shutdown
            # with the database away, it cannot be).
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), FLUSH_AT_CLOSE)
            if not writer.done():
                log.warning("closing a circle with %d decisions unstored", len(self._unstored))
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
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
        finally:
            self._expiry_task = None
        self._tell_if_empty()

    def _tell_if_empty(self) -> None:
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

    def _publish_ready(self) -> None:
        """Publish, in order, the decisions that are stored (all of them while storage is
        away) and that have no unpublished decision before them."""
        while self._unpublished:
            pending = self._unpublished[0]
            stored = pending.seq is None or pending.seq <= self._stored_seq
            if not stored and not self.storage_away:
                return
            self._unpublished.popleft()
            if not stored:
                self.stats.published_unstored += 1
            self.state = pending.decision.state
            try:
                self._publish(pending.before, pending.decision)
                if pending.then is not None:
                    pending.then(pending.decision)
            except Exception as error:  # one client's trouble must not stop the others'
                log.exception("publishing a decision failed")
                if not pending.done.done():
                    pending.done.set_exception(error)
            self._schedule_expiry()
            if not pending.done.done():
                pending.done.set_result(pending.decision)

    async def _write_until_stored(self) -> None:
        """Store the queued decisions, all that are queued in each transaction, until none
        is left; while storage is away, publish without it and try again."""
        pause = FIRST_WRITE_RETRY
        try:
            while self._unstored:
                batch = list(self._unstored)
                self._in_flight = len(batch)
                try:
                    async with asyncio.timeout(WRITE_TIMEOUT):
                        await self._store.save_batch(batch)
                except LeaseLost:
                    # Another node owns the circle now: nothing more is written from here.
                    log.warning("circle %s: lease lost; its people reconnect", self.id)
                    self._unstored.clear()
                    if self.on_lost is not None:
                        self.on_lost(self)
                    return
                except Exception as error:
                    self._in_flight = 0
                    self._storage_lost(error)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, MAX_WRITE_RETRY)
                    continue
                self._in_flight = 0
                decisions = sum(self._unstored_decisions[: len(batch)])
                del self._unstored[: len(batch)]
                del self._unstored_decisions[: len(batch)]
                self._stored_seq += decisions
                self.stats.transactions += 1
                pause = FIRST_WRITE_RETRY
                if self.storage_away:
                    self.storage_away = False
                    self._full_logged = False
                    log.warning("storage is back: %d decisions written", decisions)
                self._publish_ready()
        finally:
            self._writer = None
        self._tell_if_empty()

    def _storage_lost(self, error: BaseException) -> None:
        if self.storage_away:
            return
        self.storage_away = True
        self.stats.outages += 1
        if isinstance(error, StorageUnavailable | TimeoutError):
            log.warning("storage unavailable (%s); the circle goes on in memory", error)
        else:
            log.error("storing a circle failed; it goes on in memory", exc_info=error)
        # Safety first: what hosts decided (a mute, a removal) takes effect now.
        self._publish_ready()

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
        for seat_id, seat in after.seats.items():
            was = before.seats.get(seat_id)
            if was is not None and was.needs_support != seat.needs_support:
                # The person's own confirmation: their page shows "sent" only after this.
                self._send_to(seat_id, {"type": "support_updated", "active": seat.needs_support})
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
            # Private to the person (and the moderators' view): a reload or a resume shows
            # the "I need support" signal as it stands.
            "needs_support": seat.needs_support,
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

    def discard_unstored(self) -> None:
        """Forget what is not stored (another node owns the circle: it must not be written)."""
        self._unstored.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
        # Joins waiting for their write are told storage is away (the page tries again,
        # and its door takes it to the new owner).
        while self._unpublished:
            pending = self._unpublished.popleft()
            if not pending.done.done():
                pending.done.set_exception(StorageUnavailable("the circle moved to another node"))

    def close_connections(self, code: int) -> None:
        """Close every connection (they reconnect: the circle moved to another node)."""
        for seat_id, connection in list(self._connections.items()):
            connection.close_soon(code)
            self._forget(seat_id)

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


def _link_key(token: str) -> str:
    # Links are remembered by digest: a token is a secret, even in memory.
    return hashlib.sha256(token.encode()).hexdigest()


class MisroutedCircle(RuntimeError):
    """A link opens a circle that another process hosts: a circle lives in one process."""


def storage_unavailable() -> ProtocolError:
    """What a join is told while the database cannot be reached (the page may retry)."""
    return ProtocolError(STORAGE_UNAVAILABLE, STORAGE_UNAVAILABLE_MESSAGE, "join")


@dataclass(slots=True)
class Arrival:
    """A join in flight: the circle its link opens, and the role the link grants."""

    live: LiveCircle
    role: Role
    # What a refusal to a valid link may carry (``next_starts_at``).
    details: dict[str, str] = field(default_factory=dict)


class CircleHub:
    """The registry of circles running in this process.

    Loading, opening and releasing a circle is single-flight per circle id: arrivals that
    come while a circle loads wait for that one load; a circle is released only when it is
    empty, nothing of it is unstored, and no arrival is in flight for it.

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
        unstored_limit: int = UNSTORED_LIMIT,
    ) -> None:
        self._store = store
        self._unstored_limit = unstored_limit
        self._audio_factory = audio_factory
        self._clock = clock
        self._hosts = hosts
        self._live: dict[str, LiveCircle] = {}
        self._loading: SingleFlight[str, LiveCircle] = SingleFlight()
        self._releasing: dict[str, asyncio.Task[None]] = {}
        # Arrivals in flight per circle id, and those on a host link; arrivals whose link
        # is still being looked up (their circle is not known yet).
        self._arrivals: dict[str, int] = {}
        self._host_arrivals: dict[str, int] = {}
        # Lookups in flight, by ticket: a participant waits only for the ones that began
        # before its own ended (one of them may be the host), never for later ones.
        self._resolving: set[int] = set()
        self._tickets = 0
        self._arrivals_changed = asyncio.Condition()
        # Several nodes: told each circle id this hub stopped running (its lease goes back).
        self.on_released: Callable[[str], Awaitable[None]] | None = None

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
        match, details = await self._resolve(token)
        assert match.circle is not None
        return await self._live_circle(match), match.role, details

    async def arrive(self, token: str, resume_hash: str = "") -> Arrival:
        """A join begins: its link resolved and its circle loaded (single-flight).

        Until ``arrived`` is called, its circle is not released. Someone on a join link who
        arrives while a host's arrival is in flight waits for it (the host's join opens the
        circle) instead of being told the circle is not open.

        While the database is away, a link that opened a circle live here still opens it
        for someone holding a seat in it (``resume_hash``: their seat token's digest).
        """
        ticket = self._tickets
        self._tickets += 1
        self._resolving.add(ticket)
        try:
            match, details = await self._resolve(token, resume_hash)
        finally:
            await self._arrivals_changed_by(lambda: self._resolving.discard(ticket))
        horizon = self._tickets
        assert match.circle is not None
        circle_id = match.circle.id
        host = match.role is Role.HOST
        self._count(self._arrivals, circle_id, 1)
        if host:
            self._count(self._host_arrivals, circle_id, 1)
        try:
            live = await self._live_circle(match)
            live.links[_link_key(token)] = match
            if not host:
                await self._wait_for_hosts_arriving(live, horizon)
        except BaseException:
            await self._uncount(circle_id, host)
            raise
        return Arrival(live, match.role, details)

    async def arrived(self, arrival: Arrival) -> None:
        """The join is over (seated or refused): release its circle if that left it empty."""
        await self._uncount(arrival.live.id, arrival.role is Role.HOST)
        await self.release_if_empty(arrival.live)

    @contextlib.asynccontextmanager
    async def arrival(self, token: str) -> AsyncIterator[Arrival]:
        """``arrive`` and ``arrived`` around a block."""
        joining = await self.arrive(token)
        try:
            yield joining
        finally:
            await self.arrived(joining)

    async def _uncount(self, circle_id: str, host: bool) -> None:
        self._count(self._arrivals, circle_id, -1)
        if host:
            self._count(self._host_arrivals, circle_id, -1)
        await self._arrivals_changed_by(lambda: None)

    async def _arrivals_changed_by(self, change: Callable[[], None]) -> None:
        async with self._arrivals_changed:
            change()
            self._arrivals_changed.notify_all()

    @staticmethod
    def _count(counts: dict[str, int], circle_id: str, delta: int) -> None:
        left = counts.get(circle_id, 0) + delta
        if left:
            counts[circle_id] = left
        else:
            counts.pop(circle_id, None)

    async def _wait_for_hosts_arriving(self, live: LiveCircle, horizon: int) -> None:
        def settled() -> bool:
            if live.decided.circle.status is not CircleStatus.SCHEDULED:
                return True
            if self._host_arrivals.get(live.id):
                return False
            return not any(ticket < horizon for ticket in self._resolving)

        async with self._arrivals_changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOST_ARRIVAL_WAIT):
                    await self._arrivals_changed.wait_for(settled)

    async def _resolve(self, token: str, resume_hash: str = "") -> tuple[LinkMatch, dict[str, str]]:
        """The link's match, with a circle; refusals as RoomError / MisroutedCircle."""
        try:
            match = await self._store.find_by_link(token)
        except StorageUnavailable:
            remembered = self._remembered(token, resume_hash)
            if remembered is None:
                raise storage_unavailable() from None
            return remembered, {}
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
        circle_id = match.circle.id
        if circle_id not in self._live and self._hosts is not None and not self._hosts(circle_id):
            raise MisroutedCircle(f"circle {circle_id} is hosted by another process")
        return match, details

    def _remembered(self, token: str, resume_hash: str) -> LinkMatch | None:
        """During an outage: what ``token`` opened, if it opened a circle live here in which
        ``resume_hash`` holds a seat (only people coming back; newcomers need the database)."""
        key = _link_key(token)
        for live in self._live.values():
            match = live.links.get(key)
            if match is not None and live.holds(resume_hash):
                return match
        return None

    async def _live_circle(self, match: LinkMatch) -> LiveCircle:
        """The live circle of ``match``: running, or loaded once for all who ask at once."""
        assert match.circle is not None
        circle_id = match.circle.id
        while True:
            live = self._live.get(circle_id)
            if live is not None:
                return live
            releasing = self._releasing.get(circle_id)
            if releasing is not None:
                # Its last writes are being stored: load it after, from what they left.
                with contextlib.suppress(Exception):
                    await asyncio.shield(releasing)
                continue
            try:
                return await self._loading.run(circle_id, lambda: self._load(match))
            except StorageUnavailable:
                raise storage_unavailable() from None

    async def _load(self, match: LinkMatch) -> LiveCircle:
        assert match.circle is not None
        saved = await self._store.load_state(match)
        if saved is None:
            state = CircleState.starting(match.circle, match.settings)
        else:
            state = machine.restore(saved, now=self._clock()).state
        live = LiveCircle(
            state,
            self._store,
            self._audio_factory(),
            self._clock,
            unstored_limit=self._unstored_limit,
        )
        live.on_empty = self._release_soon
        live.on_lost = self._evict_soon
        self._live[live.id] = live
        live.start()
        return live

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

    def _releasable(self, live: LiveCircle) -> bool:
        return (
            self._live.get(live.id) is live and live.is_empty() and not self._arrivals.get(live.id)
        )

    async def release_if_empty(self, live: LiveCircle) -> None:
        """Close a circle that is truly done with: empty, stored, nobody arriving."""
        if not self._releasable(live):
            return
        del self._live[live.id]
        releasing = asyncio.get_running_loop().create_task(self._close_released(live))
        self._releasing[live.id] = releasing
        try:
            await asyncio.shield(releasing)
        finally:
            if self._releasing.get(live.id) is releasing:
                del self._releasing[live.id]

    async def _close_released(self, live: LiveCircle) -> None:
        await live.close()
        if self.on_released is not None:
            with contextlib.suppress(Exception):
                await self.on_released(live.id)

    def _evict_soon(self, live: LiveCircle) -> None:
        if self._live.get(live.id) is live:  # not a newer load of the same circle
            asyncio.get_running_loop().create_task(self.evict(live.id))
        else:
            live.close_connections(CLOSE_MOVED)
            live.discard_unstored()

    async def evict(self, circle_id: str, code: int = CLOSE_MOVED, *, flush: bool = False) -> bool:
        """Stop running a circle here at once (several nodes: another node owns it now, or
        this one drains): its connections are closed with ``code`` so the pages reconnect
        to the owner. Without ``flush`` whatever it had not stored is dropped (the new
        owner's writes are the ones that count); with it, stored first (a drain)."""
        live = self._live.pop(circle_id, None)
        if live is None:
            return False
        live.close_connections(code)
        if not flush:
            live.discard_unstored()
        releasing = asyncio.get_running_loop().create_task(self._close_released(live))
        self._releasing[circle_id] = releasing
        try:
            await asyncio.shield(releasing)
        finally:
            if self._releasing.get(circle_id) is releasing:
                del self._releasing[circle_id]
        return True

    def live_circles(self) -> list[LiveCircle]:
        return list(self._live.values())

    def is_idle(self) -> bool:
        """No circle live, loading or releasing, and no arrival in flight (for tests)."""
        return not (
            self._live or self._loading or self._releasing or self._arrivals or self._resolving
        )

    async def close(self) -> None:
        # Together: each may take up to FLUSH_AT_CLOSE to store what it has not yet.
        circles = list(self._live.values())
        self._live.clear()
        await asyncio.gather(*(live.close() for live in circles), return_exceptions=True)

    # --- settings an admin changed (PUT .../moderation), for a circle live here ----------

    async def apply_settings(self, circle_id: str, settings: CircleSettings) -> bool:
        """Hand a live circle its series' new moderation settings through its command
        path (decided, persisted, published). False when it is not live in this process:
        it takes the stored settings when it loads."""
        live = self._live.get(circle_id)
        if live is None:
            return False
        now = self._clock()
        await live.apply(lambda s: machine.apply_settings(s, settings=settings, now=now))
        return True
