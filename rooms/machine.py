"""The circle's state machine: commands in, new state and events out.

Each command is a pure function of the current state, the actor and ``now``. It either
raises RoomError (and nothing changes) or returns a Decision: the next state, the events
that the I/O edge must carry out beyond redrawing the state (admit a waiting connection,
close a removed one), and the moderation actions to audit.

Every command ends in ``_settle``, which keeps the rules that hold after any change: a
circle without a host gets its first co-host as host; without any moderator it is in the
no-host state (and, with the ``hold`` policy, everyone is muted); when a moderator is back,
the people held for want of one are let in.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from rooms import errors
from rooms.errors import RoomError
from rooms.lifecycle import MAX_EXTENSION_MINUTES
from rooms.model import (
    Ban,
    CircleSettings,
    CircleState,
    CircleStatus,
    NoHostPolicy,
    Role,
    Seat,
    SpeakingMode,
    Turn,
    Waiting,
    WaitReason,
)
from rooms.names import MAX_DISPLAY_NAME, clean_display_name, poses_as
from rooms.roles import Capability, can, is_moderator
from rooms.schedule import FULL_MESSAGE, NOT_OPEN_MESSAGE, arrive, is_over

__all__ = ["MAX_DISPLAY_NAME", "clean_display_name"]  # kept here for their older callers
# How long a seat (or a lobby place) is kept for someone whose connection dropped.
RECONNECT_GRACE = timedelta(seconds=60)
MIN_SHARE_SECONDS = 10
MAX_SHARE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class SeatJoined:
    seat: Seat


@dataclass(frozen=True, slots=True)
class SeatLeft:
    seat_id: str


@dataclass(frozen=True, slots=True)
class SeatUpdated:
    seat: Seat
    # Who caused the change, when it was not the person themselves (e.g. a host's mute).
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CircleChanged:
    """The circle's status changed (opened, ended)."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """Someone waiting in the lobby now has a seat: their connection gets ``joined``."""

    seat_id: str


@dataclass(frozen=True, slots=True)
class SentAway:
    """A seat or lobby place was taken away (``removed`` or ``denied``): close it."""

    seat_id: str
    code: str


@dataclass(frozen=True, slots=True)
class UnmuteRequested:
    seat_id: str
    by: str


@dataclass(frozen=True, slots=True)
class CircleEnded:
    by: str


@dataclass(frozen=True, slots=True)
class CircleExtended:
    """A host kept the circle open longer; everyone is told the new closing time."""


Event = (
    SeatJoined
    | SeatLeft
    | SeatUpdated
    | CircleChanged
    | CircleExtended
    | Admitted
    | SentAway
    | UnmuteRequested
    | CircleEnded
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One moderation action: who did what to whom (labels as shown at the time)."""

    action: str
    actor_id: str
    actor_label: str
    actor_role: str
    target_id: str | None = None
    target_label: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    state: CircleState
    events: tuple[Event, ...] = field(default_factory=tuple)
    # Who caused the change, when someone else than the people it is about.
    actor: str | None = None
    audit: tuple[AuditEntry, ...] = ()
    # For join: the seat or lobby place the joiner holds now (an earlier one when resumed).
    subject: str | None = None


def unique_label(state: CircleState, name: str, *, exclude: str | None = None) -> str:
    """``name``, or ``name (n)`` with the smallest n >= 2 that nobody present shows."""
    taken = {s.label.casefold() for s in state.seats.values() if s.id != exclude}
    if name.casefold() not in taken:
        return name
    n = 2
    while f"{name} ({n})".casefold() in taken:
        n += 1
    return f"{name} ({n})"


# --- arriving and leaving ---------------------------------------------------------------


def join(
    state: CircleState,
    *,
    seat_id: str,
    display_name: str,
    role: Role,
    muted: bool,
    now: datetime,
    token_hash: str = "",
    device_hash: str = "",
    resume_hash: str = "",
    passcode_ok: bool = False,
    max_lobby: int | None = None,
) -> Decision:
    """Someone arrives with a link: a seat, a lobby place, their old seat back, or a refusal.

    ``resume_hash`` is the digest of a seat token the client kept; when it matches a seat or
    lobby place still held, the person gets it back whatever else they send.
    ``passcode_ok`` says the I/O edge checked the passcode sent against the stored hash (a
    slow KDF has no place in a pure decision). ``max_lobby`` bounds the lobby: past it,
    newcomers are refused with ``lobby_full`` rather than queued without end.
    """
    circle = arrive(state.circle, role, now)
    if resume_hash:
        resumed = _resume(state, resume_hash, circle_changed=circle != state.circle)
        if resumed is not None:
            return resumed
    if seat_id in state.seats or state.waiting(seat_id) is not None:
        raise RoomError(errors.ALREADY_JOINED, "You are already in this circle.")
    name = clean_display_name(display_name)
    events: list[Event] = []
    next_state = state
    if circle != state.circle:
        next_state = next_state.with_circle(circle)
        events.append(CircleChanged())
    if role is not Role.HOST:
        _check_entry(state, device_hash, resume_hash or token_hash, passcode_ok)
        if not _has_room(replace(state, circle=circle)):
            raise RoomError(errors.CIRCLE_FULL, FULL_MESSAGE)
        _check_not_posing(state, name)
        reason = _wait_reason(state)
        if reason is not None:
            if max_lobby is not None and len(state.lobby) >= max_lobby:
                raise RoomError(errors.LOBBY_FULL, "Too many people are waiting; try again soon.")
            waiting = Waiting(
                id=seat_id,
                display_name=name,
                arrived_at=now,
                reason=reason,
                muted=muted,
                token_hash=token_hash,
                device_hash=device_hash,
            )
            next_state = replace(next_state, lobby=(*next_state.lobby, waiting))
            return _settled(next_state, events, subject=seat_id)
    seat = Seat(
        id=seat_id,
        display_name=name,
        role=role,
        joined_at=now,
        muted=muted,
        label=unique_label(next_state, name),
        token_hash=token_hash,
        device_hash=device_hash,
    )
    next_state = next_state.with_seat(seat)
    events.append(SeatJoined(seat))
    return _settled(next_state, events, subject=seat_id)


def _resume(state: CircleState, resume_hash: str, *, circle_changed: bool) -> Decision | None:
    for seat in state.seats.values():
        if hmac.compare_digest(seat.token_hash, resume_hash):
            # Back muted, whatever the seat was: nobody goes on air again without pressing
            # Unmute after a drop they may not even have noticed (the page says so).
            back = replace(seat.with_muted(True), disconnected_at=None)
            return Decision(state.with_seat(back), (SeatUpdated(back),), subject=seat.id)
    for waiting in state.lobby:
        if hmac.compare_digest(waiting.token_hash, resume_hash):
            back_w = replace(waiting, disconnected_at=None)
            lobby = tuple(back_w if w.id == waiting.id else w for w in state.lobby)
            return Decision(replace(state, lobby=lobby), subject=waiting.id)
    return None


def _check_not_posing(state: CircleState, name: str, *, exclude: str | None = None) -> None:
    moderators = [
        s.display_name for s in state.seats.values() if is_moderator(s.role) and s.id != exclude
    ]
    if poses_as(name, moderators):
        raise RoomError(
            errors.NAME_CONFUSABLE,
            "That name looks like a host's name here. Please choose another.",
        )


def _check_entry(state: CircleState, device_hash: str, token_hash: str, passcode_ok: bool) -> None:
    for ban in state.bans:
        if (device_hash and ban.device_hash == device_hash) or (
            token_hash and ban.token_hash == token_hash
        ):
            raise RoomError(errors.BANNED, "You cannot enter this circle.")
    if state.locked:
        raise RoomError(errors.CIRCLE_LOCKED, "This circle is locked: nobody new can come in.")
    if state.settings.passcode and not passcode_ok:
        raise RoomError(errors.PASSCODE_REQUIRED, "This circle needs its passcode.")


def _wait_reason(state: CircleState) -> WaitReason | None:
    if not _has_moderator(state) and (
        state.settings.wait_for_host or state.settings.no_host_policy is NoHostPolicy.HOLD
    ):
        return WaitReason.NO_HOST
    if state.lobby_enabled:
        return WaitReason.LOBBY
    return None


def leave(state: CircleState, *, seat_id: str) -> Decision:
    """Someone gives up their seat (or their lobby place)."""
    if state.waiting(seat_id) is not None:
        return _settled(_without_waiting(state, seat_id), [])
    if seat_id not in state.seats:
        raise RoomError(errors.UNKNOWN_PARTICIPANT, "That person is not in this circle.")
    return _settled(state.without_seat(seat_id), [SeatLeft(seat_id)])


def disconnect(state: CircleState, *, seat_id: str, now: datetime) -> Decision:
    """The connection dropped: the seat (or lobby place) is kept for RECONNECT_GRACE."""
    seat = state.seat(seat_id)
    if seat is not None:
        if seat.disconnected_at is not None:
            return Decision(state)
        gone = replace(seat, disconnected_at=now)
        return Decision(state.with_seat(gone), (SeatUpdated(gone),))
    waiting = state.waiting(seat_id)
    if waiting is not None and waiting.disconnected_at is None:
        lobby = tuple(
            replace(w, disconnected_at=now) if w.id == seat_id else w for w in state.lobby
        )
        return Decision(replace(state, lobby=lobby))
    return Decision(state)


def restore(state: CircleState, *, now: datetime) -> Decision:
    """A state loaded from storage: no connection survived, so everyone is reconnecting."""
    seats = {
        k: v if v.disconnected_at is not None else replace(v, disconnected_at=now)
        for k, v in state.seats.items()
    }
    lobby = tuple(
        w if w.disconnected_at is not None else replace(w, disconnected_at=now) for w in state.lobby
    )
    return Decision(replace(state, seats=seats, lobby=lobby))


def expire(state: CircleState, *, now: datetime) -> Decision:
    """Give up the seats and lobby places whose connection has been gone too long."""
    gone = [
        s.id
        for s in state.seats.values()
        if s.disconnected_at is not None and now - s.disconnected_at >= RECONNECT_GRACE
    ]
    next_state = state
    for seat_id in gone:
        next_state = next_state.without_seat(seat_id)
    lobby = tuple(
        w
        for w in next_state.lobby
        if w.disconnected_at is None or now - w.disconnected_at < RECONNECT_GRACE
    )
    if not gone and lobby == state.lobby:
        return Decision(state)
    next_state = replace(next_state, lobby=lobby)
    return _settled(next_state, [SeatLeft(s) for s in gone])


def next_expiry(state: CircleState) -> datetime | None:
    """When the next kept seat or lobby place runs out, if any (for the I/O edge's timer)."""
    times = [s.disconnected_at for s in state.seats.values() if s.disconnected_at is not None]
    times += [w.disconnected_at for w in state.lobby if w.disconnected_at is not None]
    return min(times) + RECONNECT_GRACE if times else None


# --- mute -------------------------------------------------------------------------------


def set_own_mute(state: CircleState, *, seat_id: str, muted: bool) -> Decision:
    seat = _present(state, seat_id)
    if seat.muted == muted:
        return Decision(state)
    if not muted and _holding(state):
        raise RoomError(errors.FORBIDDEN, "Everyone stays muted until a host is back.")
    updated = seat.with_muted(muted)
    return Decision(state.with_seat(updated), (SeatUpdated(updated),))


def mute_other(state: CircleState, *, actor_id: str, target_id: str) -> Decision:
    """A moderator mutes someone. Unmuting another person is never done remotely."""
    actor = _allowed(state, actor_id, Capability.MUTE_OTHERS, "Only a host can mute someone else.")
    target = _present(state, target_id)
    if target.muted:
        return Decision(state)
    updated = target.with_muted(True)
    return Decision(
        state.with_seat(updated),
        (SeatUpdated(updated, by=actor_id),),
        actor=actor_id,
        audit=(_audit("mute", actor, target),),
    )


def mute_all(state: CircleState, *, actor_id: str) -> Decision:
    """Mute everyone but hosts and co-hosts."""
    actor = _allowed(state, actor_id, Capability.MUTE_OTHERS, "Only a host can mute everyone.")
    next_state = state
    for seat in state.seats.values():
        if not seat.muted and not is_moderator(seat.role):
            next_state = next_state.with_seat(seat.with_muted(True))
    if next_state == state:
        return Decision(state)
    return Decision(next_state, actor=actor_id, audit=(_audit("mute_all", actor),))


def request_unmute(state: CircleState, *, actor_id: str, target_id: str) -> Decision:
    actor = _allowed(state, actor_id, Capability.MUTE_OTHERS, "Only a host can ask this.")
    target = _present(state, target_id)
    if not target.muted or target.unmute_requested:
        raise RoomError(errors.NO_CHANGE, "That person is unmuted or has already been asked.")
    updated = replace(target, unmute_requested=True)
    return Decision(
        state.with_seat(updated),
        (UnmuteRequested(target_id, by=actor_id),),
        actor=actor_id,
        audit=(_audit("request_unmute", actor, target),),
    )


def answer_unmute(state: CircleState, *, seat_id: str, accept: bool) -> Decision:
    seat = _present(state, seat_id)
    if not seat.unmute_requested:
        raise RoomError(errors.NO_UNMUTE_REQUEST, "Nobody asked you to unmute.")
    if accept and _holding(state):
        raise RoomError(errors.FORBIDDEN, "Everyone stays muted until a host is back.")
    updated = replace(seat, unmute_requested=False, muted=seat.muted and not accept)
    return Decision(state.with_seat(updated), (SeatUpdated(updated),))


# --- hands and the floor ----------------------------------------------------------------


def raise_hand(state: CircleState, *, seat_id: str) -> Decision:
    _present(state, seat_id)
    if seat_id in state.hand_queue or state.floor == seat_id:
        raise RoomError(errors.NO_CHANGE, "Your hand is already up, or you have the floor.")
    return Decision(replace(state, hand_queue=(*state.hand_queue, seat_id)))


def lower_hand(state: CircleState, *, actor_id: str, target_id: str | None = None) -> Decision:
    target_id = target_id or actor_id
    actor = _present(state, actor_id)
    audit: tuple[AuditEntry, ...] = ()
    if target_id != actor_id:
        _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can lower others' hands.")
        target = _present(state, target_id)
        audit = (_audit("lower_hand", actor, target),)
    if target_id not in state.hand_queue:
        raise RoomError(errors.NO_CHANGE, "That hand is not raised.")
    queue = tuple(q for q in state.hand_queue if q != target_id)
    actor_or_none = actor_id if target_id != actor_id else None
    return Decision(replace(state, hand_queue=queue), actor=actor_or_none, audit=audit)


def give_floor(state: CircleState, *, actor_id: str, target_id: str, now: datetime) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can give the floor.")
    target = _present(state, target_id)
    if state.floor == target_id:
        raise RoomError(errors.NO_CHANGE, "That person has the floor already.")
    return Decision(
        _with_turn(state, target_id, now),
        actor=actor_id,
        audit=(_audit("give_floor", actor, target),),
    )


def next_speaker(state: CircleState, *, actor_id: str, now: datetime) -> Decision:
    """Take the floor from whoever has it and give it to the head of the hand queue."""
    actor = _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can do that.")
    if not state.hand_queue:
        if state.turn is None:
            raise RoomError(errors.QUEUE_EMPTY, "Nobody has a hand raised.")
        return Decision(
            replace(state, turn=None), actor=actor_id, audit=(_audit("end_turn", actor),)
        )
    head = state.seats[state.hand_queue[0]]
    return Decision(
        _with_turn(state, head.id, now),
        actor=actor_id,
        audit=(_audit("next_speaker", actor, head),),
    )


def end_turn(state: CircleState, *, actor_id: str) -> Decision:
    actor = _present(state, actor_id)
    if state.floor != actor_id:
        _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can end a turn.")
    if state.turn is None:
        raise RoomError(errors.NO_TURN, "Nobody has the floor.")
    own = state.floor == actor_id
    return Decision(
        replace(state, turn=None),
        actor=None if own else actor_id,
        audit=() if own else (_audit("end_turn", actor),),
    )


def extend_turn(state: CircleState, *, actor_id: str, seconds: int, now: datetime) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can extend a turn.")
    turn = state.turn
    if turn is None or turn.ends_at is None:
        raise RoomError(errors.NO_TURN, "No time-boxed turn is running.")
    ends_at = max(turn.ends_at, now) + timedelta(seconds=seconds)
    return Decision(
        replace(state, turn=replace(turn, ends_at=ends_at)),
        actor=actor_id,
        audit=(_audit("extend_turn", actor, state.seats.get(turn.seat_id), f"{seconds}s"),),
    )


def set_share_time(state: CircleState, *, actor_id: str, seconds: int | None) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can set the timer.")
    if state.share_seconds == seconds:
        raise RoomError(errors.NO_CHANGE, "The share time is already so.")
    return Decision(
        replace(state, share_seconds=seconds),
        actor=actor_id,
        audit=(_audit("set_share_time", actor, detail=str(seconds)),),
    )


def set_speaking_mode(state: CircleState, *, actor_id: str, mode: SpeakingMode) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_FLOOR, "Only a host can change this.")
    if state.speaking_mode is mode:
        raise RoomError(errors.NO_CHANGE, "The circle is in that mode already.")
    return Decision(
        replace(state, speaking_mode=mode),
        actor=actor_id,
        audit=(_audit("set_speaking_mode", actor, detail=mode.value),),
    )


def _with_turn(state: CircleState, seat_id: str, now: datetime) -> CircleState:
    ends_at = None if state.share_seconds is None else now + timedelta(seconds=state.share_seconds)
    queue = tuple(q for q in state.hand_queue if q != seat_id)
    return replace(state, turn=Turn(seat_id, now, ends_at), hand_queue=queue)


# --- who gets in ------------------------------------------------------------------------


def set_lobby(state: CircleState, *, actor_id: str, enabled: bool, now: datetime) -> Decision:
    """Turning the lobby on keeps everyone inside; turning it off lets the waiting in."""
    actor = _allowed(state, actor_id, Capability.MANAGE_LOBBY, "Only a host can do that.")
    if state.lobby_enabled == enabled:
        raise RoomError(errors.NO_CHANGE, "The lobby is already so.")
    next_state = replace(state, lobby_enabled=enabled)
    events: list[Event] = []
    if not enabled:
        for waiting in state.lobby:
            # Those the circle has no room for keep their place until a seat frees up.
            if waiting.reason is WaitReason.LOBBY and _has_room(next_state):
                next_state = _seat_waiting(next_state, waiting, now, events)
    audit = (_audit("set_lobby", actor, detail="on" if enabled else "off"),)
    return _settled(next_state, events, actor=actor_id, audit=audit)


def admit(state: CircleState, *, actor_id: str, waiting_id: str, now: datetime) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_LOBBY, "Only a host can let people in.")
    waiting = _waiting(state, waiting_id)
    if not _has_room(state):
        raise RoomError(errors.CIRCLE_FULL, FULL_MESSAGE)
    events: list[Event] = []
    next_state = _seat_waiting(state, waiting, now, events)
    audit = (_audit("admit", actor, target_id=waiting.id, target_label=waiting.display_name),)
    return _settled(next_state, events, actor=actor_id, audit=audit)


def admit_all(state: CircleState, *, actor_id: str, now: datetime) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_LOBBY, "Only a host can let people in.")
    if not state.lobby:
        raise RoomError(errors.NO_CHANGE, "Nobody is waiting.")
    if not _has_room(state):
        raise RoomError(errors.CIRCLE_FULL, FULL_MESSAGE)
    events: list[Event] = []
    next_state = state
    admitted = 0
    for waiting in state.lobby:
        # First come, first in, as far as the capacity goes; the rest keep their place.
        if not _has_room(next_state):
            break
        next_state = _seat_waiting(next_state, waiting, now, events)
        admitted += 1
    audit = (_audit("admit_all", actor, detail=str(admitted)),)
    return _settled(next_state, events, actor=actor_id, audit=audit)


def deny(state: CircleState, *, actor_id: str, waiting_id: str) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_LOBBY, "Only a host can do that.")
    waiting = _waiting(state, waiting_id)
    return Decision(
        _without_waiting(state, waiting_id),
        (SentAway(waiting_id, errors.DENIED),),
        actor=actor_id,
        audit=(_audit("deny", actor, target_id=waiting.id, target_label=waiting.display_name),),
    )


def set_lock(state: CircleState, *, actor_id: str, locked: bool) -> Decision:
    actor = _allowed(state, actor_id, Capability.MANAGE_LOBBY, "Only a host can lock the circle.")
    if state.locked == locked:
        raise RoomError(errors.NO_CHANGE, "The circle is already so.")
    return Decision(
        replace(state, locked=locked),
        actor=actor_id,
        audit=(_audit("lock" if locked else "unlock", actor),),
    )


def remove(state: CircleState, *, actor_id: str, target_id: str, now: datetime) -> Decision:
    """Remove someone (seated or waiting) and ban their device key and seat token."""
    actor = _allowed(state, actor_id, Capability.REMOVE, "Only a host can remove someone.")
    seat = state.seat(target_id)
    if seat is not None:
        if seat.role is Role.HOST or target_id == actor_id:
            raise RoomError(errors.FORBIDDEN, "A host cannot be removed.")
        ban = Ban(target_id, seat.label, now, seat.device_hash, seat.token_hash)
        next_state = state.without_seat(target_id)
        events: list[Event] = [SentAway(target_id, errors.REMOVED), SeatLeft(target_id)]
    else:
        waiting = _waiting(state, target_id)
        ban = Ban(target_id, waiting.display_name, now, waiting.device_hash, waiting.token_hash)
        next_state = _without_waiting(state, target_id)
        events = [SentAway(target_id, errors.REMOVED)]
    next_state = replace(next_state, bans=(*next_state.bans, ban))
    audit = (_audit("remove", actor, target_id=target_id, target_label=ban.display_name),)
    return _settled(next_state, events, actor=actor_id, audit=audit)


def unban(state: CircleState, *, actor_id: str, ban_id: str) -> Decision:
    actor = _allowed(state, actor_id, Capability.REMOVE, "Only a host can undo a ban.")
    ban = next((b for b in state.bans if b.id == ban_id), None)
    if ban is None:
        raise RoomError(errors.UNKNOWN_BAN, "There is no such ban.")
    return Decision(
        replace(state, bans=tuple(b for b in state.bans if b.id != ban_id)),
        actor=actor_id,
        audit=(_audit("unban", actor, target_id=ban.id, target_label=ban.display_name),),
    )


def set_role(state: CircleState, *, actor_id: str, target_id: str, role: Role) -> Decision:
    actor = _allowed(state, actor_id, Capability.SET_ROLES, "Only a host can name co-hosts.")
    target = _present(state, target_id)
    if target.role is Role.HOST or role is Role.HOST:
        raise RoomError(errors.FORBIDDEN, "Host is given by the host link only.")
    if target.role is role:
        raise RoomError(errors.NO_CHANGE, "That person has that role already.")
    updated = replace(target, role=role)
    audit = (_audit("set_role", actor, target, role.value),)
    return _settled(
        state.with_seat(updated), [SeatUpdated(updated, by=actor_id)], actor=actor_id, audit=audit
    )


def end_circle(state: CircleState, *, actor_id: str, now: datetime) -> Decision:
    actor = _allowed(state, actor_id, Capability.END, "Only a host can end the circle.")
    circle = replace(state.circle, status=CircleStatus.ENDED, ended_at=now)
    next_state = replace(state, circle=circle, seats={}, lobby=(), hand_queue=(), turn=None)
    return Decision(
        next_state,
        (CircleChanged(), CircleEnded(by=actor_id)),
        actor=actor_id,
        audit=(_audit("end_circle", actor),),
    )


def extend(state: CircleState, *, actor_id: str, minutes: int, now: datetime) -> Decision:
    """Keep the circle open longer than its end plus grace (capped in total).

    Whoever may end the circle may also keep it going.
    """
    actor = _allowed(state, actor_id, Capability.END, "Only a host can extend the circle.")
    circle = state.circle
    if is_over(circle, now):
        raise RoomError(errors.CIRCLE_NOT_OPEN, NOT_OPEN_MESSAGE)
    total = min(circle.extended_minutes + minutes, MAX_EXTENSION_MINUTES)
    if total == circle.extended_minutes:
        return Decision(state)
    extended = replace(circle, extended_minutes=total)
    return Decision(
        state.with_circle(extended),
        (CircleExtended(),),
        actor=actor_id,
        audit=(_audit("extend_circle", actor, detail=f"{minutes}min"),),
    )


# --- care -------------------------------------------------------------------------------


def need_support(state: CircleState, *, seat_id: str, active: bool) -> Decision:
    seat = _present(state, seat_id)
    if seat.needs_support == active:
        raise RoomError(errors.NO_CHANGE, "The signal is already so.")
    return Decision(state.with_seat(replace(seat, needs_support=active)))


def rename(state: CircleState, *, seat_id: str, display_name: str) -> Decision:
    seat = _present(state, seat_id)
    if not state.settings.allow_rename and not can(seat.role, Capability.RENAME_ANYTIME):
        raise RoomError(errors.RENAME_NOT_ALLOWED, "This circle does not allow renaming.")
    name = clean_display_name(display_name)
    if name == seat.display_name:
        raise RoomError(errors.NO_CHANGE, "That is your name already.")
    if not is_moderator(seat.role):
        _check_not_posing(state, name, exclude=seat_id)
    updated = replace(seat, display_name=name, label=unique_label(state, name, exclude=seat_id))
    # Renames are audited: a disruptor who changes names cannot hide who they were.
    audit = (_audit("rename", seat, detail=f"{seat.display_name} -> {name}"),)
    return Decision(state.with_seat(updated), (SeatUpdated(updated),), audit=audit)


# --- rules kept after every change ------------------------------------------------------


def _has_moderator(state: CircleState) -> bool:
    return any(is_moderator(s.role) for s in state.seats.values())


def _has_room(state: CircleState) -> bool:
    capacity = state.circle.capacity
    return capacity is None or len(state.seats) < capacity


def _holding(state: CircleState) -> bool:
    return state.no_host and state.settings.no_host_policy is NoHostPolicy.HOLD


def _settled(
    state: CircleState,
    events: list[Event],
    *,
    actor: str | None = None,
    audit: tuple[AuditEntry, ...] = (),
    subject: str | None = None,
) -> Decision:
    next_state = state
    if not any(s.role is Role.HOST for s in next_state.seats.values()):
        cohost = next((s for s in next_state.seats.values() if s.role is Role.COHOST), None)
        if cohost is not None:
            promoted = replace(cohost, role=Role.HOST)
            next_state = next_state.with_seat(promoted)
            events.append(SeatUpdated(promoted))
    no_host = not _has_moderator(next_state)
    if no_host and not next_state.no_host:
        next_state = replace(next_state, no_host=True)
        if next_state.settings.no_host_policy is NoHostPolicy.HOLD:
            for seat in next_state.seats.values():
                if not seat.muted:
                    next_state = next_state.with_seat(seat.with_muted(True))
    elif not no_host and next_state.no_host:
        next_state = replace(next_state, no_host=False)
    if not no_host:
        for waiting in next_state.lobby:
            if waiting.reason is WaitReason.NO_HOST:
                # Held for want of a host: in they come once one is here, unless the lobby
                # is on or the circle is full; then they wait for a host's admission.
                if next_state.lobby_enabled or not _has_room(next_state):
                    lobby = tuple(
                        replace(w, reason=WaitReason.LOBBY) if w.id == waiting.id else w
                        for w in next_state.lobby
                    )
                    next_state = replace(next_state, lobby=lobby)
                else:
                    next_state = _seat_waiting(next_state, waiting, waiting.arrived_at, events)
    return Decision(next_state, tuple(events), actor=actor, audit=audit, subject=subject)


def _seat_waiting(
    state: CircleState, waiting: Waiting, now: datetime, events: list[Event]
) -> CircleState:
    seat = Seat(
        id=waiting.id,
        display_name=waiting.display_name,
        role=Role.PARTICIPANT,
        joined_at=now,
        muted=waiting.muted or _holding(state),
        label=unique_label(state, waiting.display_name),
        token_hash=waiting.token_hash,
        device_hash=waiting.device_hash,
        disconnected_at=waiting.disconnected_at,
    )
    events.append(Admitted(seat.id))
    return _without_waiting(state, waiting.id).with_seat(seat)


def _without_waiting(state: CircleState, waiting_id: str) -> CircleState:
    return replace(state, lobby=tuple(w for w in state.lobby if w.id != waiting_id))


def _present(state: CircleState, seat_id: str) -> Seat:
    seat = state.seat(seat_id)
    if seat is None:
        if state.waiting(seat_id) is not None:
            raise RoomError(errors.IN_LOBBY, "Please wait until a host lets you in.")
        raise RoomError(errors.UNKNOWN_PARTICIPANT, "That person is not in this circle.")
    return seat


def _waiting(state: CircleState, waiting_id: str) -> Waiting:
    waiting = state.waiting(waiting_id)
    if waiting is None:
        raise RoomError(errors.UNKNOWN_PARTICIPANT, "That person is not waiting.")
    return waiting


def _allowed(state: CircleState, actor_id: str, capability: Capability, refusal: str) -> Seat:
    actor = _present(state, actor_id)
    if not can(actor.role, capability):
        raise RoomError(errors.FORBIDDEN, refusal)
    return actor


def _audit(
    action: str,
    actor: Seat,
    target: Seat | None = None,
    detail: str = "",
    *,
    target_id: str | None = None,
    target_label: str | None = None,
) -> AuditEntry:
    return AuditEntry(
        action=action,
        actor_id=actor.id,
        actor_label=actor.label,
        actor_role=actor.role.value,
        target_id=target.id if target is not None else target_id,
        target_label=target.label if target is not None else target_label,
        detail=detail,
    )


# --- settings an admin changed while the circle is live ---------------------------------
# (PUT /api/v1/circles/{id}/moderation reaches a live circle through its command path.)

ADMIN_ACTOR = "admin"


def apply_settings(state: CircleState, *, settings: CircleSettings, now: datetime) -> Decision:
    """An admin changed the series' moderation settings while this circle is live.

    What the admin changed takes effect now, as if a host had done it; what the admin left
    alone keeps whatever the hosts chose in the circle. The speaking mode, share time and
    lobby follow a changed setting (turning the lobby off lets in those waiting in it, as far
    as the capacity goes). The passcode, waiting for a host, renaming and the crisis text are
    read by every rule, so they hold from the next arrival or rename on: a new passcode is
    asked of newcomers only, nobody seated is sent away. The ``hold`` policy with no
    moderator present mutes everyone, as when the last host leaves; no longer held, those
    waiting for a host come in (or wait for a host's admission while the lobby is on).
    """
    old = state.settings
    if settings == old:
        return Decision(state)
    next_state = replace(state, settings=settings)
    if settings.speaking_mode is not old.speaking_mode:
        next_state = replace(next_state, speaking_mode=settings.speaking_mode)
    if settings.share_seconds != old.share_seconds:
        next_state = replace(next_state, share_seconds=settings.share_seconds)
    events: list[Event] = []
    if settings.lobby != old.lobby:
        next_state = replace(next_state, lobby_enabled=settings.lobby)
        if not settings.lobby:
            for waiting in next_state.lobby:
                if waiting.reason is WaitReason.LOBBY and _has_room(next_state):
                    next_state = _seat_waiting(next_state, waiting, now, events)
    if _holding(next_state) and not _holding(state):
        for seat in next_state.seats.values():
            if not seat.muted:
                next_state = next_state.with_seat(seat.with_muted(True))
    if _wait_reason(next_state) is not WaitReason.NO_HOST:
        for waiting in next_state.lobby:
            if waiting.reason is not WaitReason.NO_HOST:
                continue
            if next_state.lobby_enabled or not _has_room(next_state):
                lobby = tuple(
                    replace(w, reason=WaitReason.LOBBY) if w.id == waiting.id else w
                    for w in next_state.lobby
                )
                next_state = replace(next_state, lobby=lobby)
            else:
                next_state = _seat_waiting(next_state, waiting, now, events)
    changed = [name for name in _SETTING_NAMES if getattr(settings, name) != getattr(old, name)]
    audit = AuditEntry(
        action="set_settings",
        actor_id=ADMIN_ACTOR,
        actor_label="Admin",
        actor_role=ADMIN_ACTOR,
        detail=",".join(changed),
    )
    return _settled(next_state, events, audit=(audit,))


_SETTING_NAMES = (
    "speaking_mode",
    "lobby",
    "passcode",
    "wait_for_host",
    "no_host_policy",
    "allow_rename",
    "share_seconds",
    "crisis_text",
)
