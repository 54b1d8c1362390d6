"""Moderation decisions in rooms/: roles, floor, queue, lobby, lock, bans, resume, no-host.

Called directly with a clock value; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms import errors, machine, snapshot
from rooms.audio_policy import audible_seats
from rooms.errors import RoomError
from rooms.machine import Admitted, Decision, SentAway
from rooms.model import (
    Circle,
    CircleSettings,
    CircleState,
    CircleStatus,
    NoHostPolicy,
    Role,
    SpeakingMode,
    WaitReason,
)

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
CIRCLE = Circle(
    id="c1",
    title="Circle",
    starts_at=NOW,
    duration_minutes=90,
    timezone="Europe/Berlin",
    status=CircleStatus.OPEN,
)


def enter(
    state: CircleState,
    seat_id: str,
    role: Role = Role.PARTICIPANT,
    *,
    name: str | None = None,
    muted: bool = False,
    device: str = "",
    passcode_ok: bool = False,
    resume: str = "",
) -> Decision:
    return machine.join(
        state,
        seat_id=seat_id,
        display_name=name or seat_id.title(),
        role=role,
        muted=muted,
        now=NOW,
        token_hash=f"token-{seat_id}",
        device_hash=device or f"device-{seat_id}",
        resume_hash=resume,
        passcode_ok=passcode_ok,
    )


def circle(settings: CircleSettings | None = None, *people: tuple[str, Role]) -> CircleState:
    state = CircleState.starting(CIRCLE, settings or CircleSettings())
    for seat_id, role in people:
        state = enter(state, seat_id, role).state
    return state


ANA = ("ana", Role.HOST)
SAM = ("sam", Role.PARTICIPANT)
KIM = ("kim", Role.PARTICIPANT)


def basic() -> CircleState:
    return circle(None, ANA, SAM, KIM)


def with_cohost() -> CircleState:
    return machine.set_role(basic(), actor_id="ana", target_id="kim", role=Role.COHOST).state


Step = Callable[[CircleState], Decision]

# Every moderator command, sent by a participant: refused with `forbidden`, nothing changes.
HOST_COMMANDS: list[tuple[str, Step]] = [
    ("mute", lambda s: machine.mute_other(s, actor_id="sam", target_id="kim")),
    ("mute_all", lambda s: machine.mute_all(s, actor_id="sam")),
    ("request_unmute", lambda s: machine.request_unmute(s, actor_id="sam", target_id="kim")),
    ("give_floor", lambda s: machine.give_floor(s, actor_id="sam", target_id="sam", now=NOW)),
    ("next", lambda s: machine.next_speaker(s, actor_id="sam", now=NOW)),
    ("mode", lambda s: machine.set_speaking_mode(s, actor_id="sam", mode=SpeakingMode.HAND_RAISE)),
    ("share", lambda s: machine.set_share_time(s, actor_id="sam", seconds=60)),
    ("lobby", lambda s: machine.set_lobby(s, actor_id="sam", enabled=True, now=NOW)),
    ("admit_all", lambda s: machine.admit_all(s, actor_id="sam", now=NOW)),
    ("lock", lambda s: machine.set_lock(s, actor_id="sam", locked=True)),
    ("remove", lambda s: machine.remove(s, actor_id="sam", target_id="kim", now=NOW)),
    ("unban", lambda s: machine.unban(s, actor_id="sam", ban_id="x")),
    ("set_role", lambda s: machine.set_role(s, actor_id="sam", target_id="kim", role=Role.COHOST)),
    ("end", lambda s: machine.end_circle(s, actor_id="sam", now=NOW)),
    ("lower_other", lambda s: machine.lower_hand(s, actor_id="sam", target_id="kim")),
]


@pytest.mark.parametrize(("name", "step"), HOST_COMMANDS, ids=[n for n, _ in HOST_COMMANDS])
def test_a_participant_sending_a_host_command_is_refused(name: str, step: Step) -> None:
    state = basic()
    with pytest.raises(RoomError) as refused:
        step(state)
    assert refused.value.code == errors.FORBIDDEN


# Commands about people who are not there, repeats, and commands out of order.
BAD_COMMANDS: list[tuple[str, Step, str]] = [
    (
        "mute ghost",
        lambda s: machine.mute_other(s, actor_id="ana", target_id="x"),
        "unknown_participant",
    ),
    (
        "floor to ghost",
        lambda s: machine.give_floor(s, actor_id="ana", target_id="x", now=NOW),
        "unknown_participant",
    ),
    (
        "admit ghost",
        lambda s: machine.admit(s, actor_id="ana", waiting_id="x", now=NOW),
        "unknown_participant",
    ),
    (
        "deny ghost",
        lambda s: machine.deny(s, actor_id="ana", waiting_id="x"),
        "unknown_participant",
    ),
    (
        "remove ghost",
        lambda s: machine.remove(s, actor_id="ana", target_id="x", now=NOW),
        "unknown_participant",
    ),
    ("ghost acts", lambda s: machine.raise_hand(s, seat_id="x"), "unknown_participant"),
    ("unban unknown", lambda s: machine.unban(s, actor_id="ana", ban_id="x"), "unknown_ban"),
    (
        "next on empty queue",
        lambda s: machine.next_speaker(s, actor_id="ana", now=NOW),
        "queue_empty",
    ),
    ("end no turn", lambda s: machine.end_turn(s, actor_id="ana"), "no_turn"),
    (
        "extend no turn",
        lambda s: machine.extend_turn(s, actor_id="ana", seconds=30, now=NOW),
        "no_turn",
    ),
    (
        "answer unasked",
        lambda s: machine.answer_unmute(s, seat_id="sam", accept=True),
        "no_unmute_request",
    ),
    ("lower unraised", lambda s: machine.lower_hand(s, actor_id="sam"), "no_change"),
    ("unlock unlocked", lambda s: machine.set_lock(s, actor_id="ana", locked=False), "no_change"),
    (
        "lobby off twice",
        lambda s: machine.set_lobby(s, actor_id="ana", enabled=False, now=NOW),
        "no_change",
    ),
    (
        "same mode",
        lambda s: machine.set_speaking_mode(s, actor_id="ana", mode=SpeakingMode.OPEN),
        "no_change",
    ),
    ("admit all, nobody", lambda s: machine.admit_all(s, actor_id="ana", now=NOW), "no_change"),
    (
        "ask unmuted",
        lambda s: machine.request_unmute(s, actor_id="ana", target_id="sam"),
        "no_change",
    ),
    (
        "remove the host",
        lambda s: machine.remove(s, actor_id="kim", target_id="ana", now=NOW),
        "forbidden",
    ),
    (
        "demote the host",
        lambda s: machine.set_role(s, actor_id="ana", target_id="ana", role=Role.COHOST),
        "forbidden",
    ),
    (
        "cohost names cohosts",
        lambda s: machine.set_role(s, actor_id="kim", target_id="sam", role=Role.COHOST),
        "forbidden",
    ),
    (
        "rename not allowed",
        lambda s: machine.rename(s, seat_id="sam", display_name="Max"),
        "rename_not_allowed",
    ),
]


@pytest.mark.parametrize(("name", "step", "code"), BAD_COMMANDS, ids=[b[0] for b in BAD_COMMANDS])
def test_bad_commands_get_a_stable_code(name: str, step: Step, code: str) -> None:
    state = with_cohost()
    with pytest.raises(RoomError) as refused:
        step(state)
    assert refused.value.code == code


def test_a_raised_hand_twice_is_a_repeat() -> None:
    state = machine.raise_hand(basic(), seat_id="sam").state
    with pytest.raises(RoomError) as refused:
        machine.raise_hand(state, seat_id="sam")
    assert refused.value.code == errors.NO_CHANGE


def test_hand_raise_mode_lets_only_the_floor_and_moderators_be_heard() -> None:
    state = machine.set_speaking_mode(basic(), actor_id="ana", mode=SpeakingMode.HAND_RAISE).state
    assert audible_seats(state) == {"ana"}
    state = machine.raise_hand(state, seat_id="kim").state
    state = machine.raise_hand(state, seat_id="sam").state
    assert state.hand_queue == ("kim", "sam")
    state = machine.next_speaker(state, actor_id="ana", now=NOW).state
    assert (state.floor, state.hand_queue) == ("kim", ("sam",))
    assert audible_seats(state) == {"ana", "kim"}
    state = machine.next_speaker(state, actor_id="ana", now=NOW).state
    assert (state.floor, state.hand_queue) == ("sam", ())
    assert audible_seats(state) == {"ana", "sam"}
    state = machine.next_speaker(state, actor_id="ana", now=NOW).state
    assert state.floor is None and audible_seats(state) == {"ana"}
    state = machine.set_speaking_mode(state, actor_id="ana", mode=SpeakingMode.OPEN).state
    assert audible_seats(state) == {"ana", "sam", "kim"}


def test_share_timer_sets_a_deadline_and_the_host_can_extend_it() -> None:
    state = machine.set_share_time(basic(), actor_id="ana", seconds=120).state
    state = machine.give_floor(state, actor_id="ana", target_id="sam", now=NOW).state
    assert state.turn is not None and state.turn.ends_at == NOW + timedelta(seconds=120)
    later = NOW + timedelta(seconds=150)  # past the deadline: extending counts from now
    state = machine.extend_turn(state, actor_id="ana", seconds=60, now=later).state
    assert state.turn is not None and state.turn.ends_at == later + timedelta(seconds=60)
    state = machine.end_turn(state, actor_id="sam").state  # the speaker may hand back
    assert state.turn is None


def test_mute_all_spares_moderators_and_unmuting_others_is_only_a_request() -> None:
    state = machine.mute_all(with_cohost(), actor_id="ana").state
    assert {k: s.muted for k, s in state.seats.items()} == {"ana": False, "sam": True, "kim": False}
    decision = machine.request_unmute(state, actor_id="ana", target_id="sam")
    assert decision.state.seats["sam"].muted  # nothing done remotely
    declined = machine.answer_unmute(decision.state, seat_id="sam", accept=False).state
    assert declined.seats["sam"].muted and not declined.seats["sam"].unmute_requested
    accepted = machine.answer_unmute(decision.state, seat_id="sam", accept=True).state
    assert not accepted.seats["sam"].muted


def test_lobby_keeps_those_inside_shows_positions_and_admits() -> None:
    state = machine.set_lobby(basic(), actor_id="ana", enabled=True, now=NOW).state
    assert set(state.seats) == {"ana", "sam", "kim"}
    state = enter(state, "lee").state
    state = enter(state, "max").state
    assert [w.id for w in state.lobby] == ["lee", "max"] and "lee" not in state.seats
    decision = machine.admit(state, actor_id="ana", waiting_id="max", now=NOW)
    assert Admitted("max") in decision.events and "max" in decision.state.seats
    decision = machine.deny(decision.state, actor_id="ana", waiting_id="lee")
    assert SentAway("lee", errors.DENIED) in decision.events and not decision.state.lobby
    state = enter(decision.state, "joy").state
    state = machine.set_lobby(state, actor_id="ana", enabled=False, now=NOW).state
    assert "joy" in state.seats and not state.lobby


def test_lock_and_passcode_keep_new_people_out_but_not_hosts() -> None:
    # The I/O edge checks the passcode against its stored hash; rooms/ is told the outcome.
    state = circle(CircleSettings(passcode="scrypt:stored-hash"), ANA)
    with pytest.raises(RoomError) as refused:
        enter(state, "sam", passcode_ok=False)
    assert refused.value.code == errors.PASSCODE_REQUIRED
    state = enter(state, "sam", passcode_ok=True).state
    state = machine.set_lock(state, actor_id="ana", locked=True).state
    with pytest.raises(RoomError) as refused:
        enter(state, "kim", passcode_ok=True)
    assert refused.value.code == errors.CIRCLE_LOCKED
    assert "bo" in enter(state, "bo", Role.HOST).state.seats


def test_removed_person_cannot_return_under_another_name_until_unbanned() -> None:
    decision = machine.remove(basic(), actor_id="ana", target_id="sam", now=NOW)
    assert SentAway("sam", errors.REMOVED) in decision.events
    state = decision.state
    with pytest.raises(RoomError) as refused:
        enter(state, "new-seat", name="Someone Else", device="device-sam")
    assert refused.value.code == errors.BANNED
    with pytest.raises(RoomError):  # the seat token they kept is refused as well
        enter(state, "other", name="Other", device="fresh", resume="token-sam")
    state = machine.unban(state, actor_id="ana", ban_id="sam").state
    assert "new-seat" in enter(state, "new-seat", device="device-sam").state.seats


def test_a_dropped_seat_is_kept_for_a_minute_with_its_place_then_given_up() -> None:
    state = machine.raise_hand(basic(), seat_id="kim").state
    state = machine.raise_hand(state, seat_id="sam").state
    state = machine.set_own_mute(state, seat_id="kim", muted=False).state
    assert not state.seats["kim"].muted
    state = machine.disconnect(state, seat_id="kim", now=NOW).state
    assert state.seats["kim"].connection.value == "reconnecting"
    assert machine.expire(state, now=NOW + timedelta(seconds=59)).state == state
    back = enter(state, "fresh-id", name="Whatever", resume="token-kim")
    assert back.subject == "kim"
    assert back.state.seats["kim"].disconnected_at is None
    assert back.state.hand_queue == ("kim", "sam")
    # Back muted, even though Kim was unmuted before the drop.
    assert back.state.seats["kim"].muted
    gone = machine.expire(state, now=NOW + timedelta(seconds=60))
    assert "kim" not in gone.state.seats and gone.state.hand_queue == ("sam",)


def test_host_drop_hands_over_to_a_cohost() -> None:
    state = machine.leave(with_cohost(), seat_id="ana").state
    assert state.seats["kim"].role is Role.HOST and not state.no_host


@pytest.mark.parametrize("policy", list(NoHostPolicy))
def test_without_moderators_the_circle_follows_its_policy(policy: NoHostPolicy) -> None:
    state = circle(CircleSettings(no_host_policy=policy), ANA, SAM)
    state = machine.leave(state, seat_id="ana").state
    assert state.no_host
    if policy is NoHostPolicy.HOLD:
        assert state.seats["sam"].muted and audible_seats(state) == frozenset()
        with pytest.raises(RoomError):
            machine.set_own_mute(state, seat_id="sam", muted=False)
        held = enter(state, "kim").state
        assert held.waiting("kim") is not None and held.lobby[0].reason is WaitReason.NO_HOST
        back = enter(held, "bo", Role.HOST).state
        assert not back.no_host and "kim" in back.seats
    else:
        assert not state.seats["sam"].muted and "kim" in enter(state, "kim").state.seats


def test_same_names_are_told_apart_and_end_sends_everyone_home() -> None:
    state = enter(basic(), "sam2", name="Sam").state
    state = enter(state, "sam3", name="sam").state
    assert [state.seats[k].label for k in ("sam", "sam2", "sam3")] == ["Sam", "Sam (2)", "sam (3)"]
    ended = machine.end_circle(state, actor_id="ana", now=NOW).state
    assert ended.circle.status is CircleStatus.ENDED and not ended.seats
    with pytest.raises(RoomError) as refused:
        enter(ended, "late")
    assert refused.value.code == errors.CIRCLE_NOT_OPEN


def test_renaming_when_allowed_keeps_names_apart_and_is_audited() -> None:
    state = circle(CircleSettings(allow_rename=True), ANA, SAM, KIM)
    decision = machine.rename(state, seat_id="sam", display_name="Kim")
    assert decision.state.seats["sam"].label == "Kim (2)"
    (entry,) = decision.audit
    assert (entry.action, entry.actor_id, entry.detail) == ("rename", "sam", "Sam -> Kim")


@pytest.mark.parametrize("name", ["Ana", "ana", "\u0410na", "A\u200dna"])
def test_nobody_renames_themselves_into_a_hosts_lookalike(name: str) -> None:
    state = circle(CircleSettings(allow_rename=True), ANA, SAM)
    with pytest.raises(RoomError) as refused:
        machine.rename(state, seat_id="sam", display_name=name)
    assert refused.value.code == errors.NAME_CONFUSABLE


def test_the_snapshot_gives_back_the_whole_state() -> None:
    state = machine.set_speaking_mode(with_cohost(), actor_id="ana", mode=SpeakingMode.HAND_RAISE)
    s = machine.set_share_time(state.state, actor_id="ana", seconds=90).state
    s = machine.raise_hand(s, seat_id="sam").state
    s = machine.give_floor(s, actor_id="ana", target_id="kim", now=NOW).state
    s = machine.set_lobby(s, actor_id="ana", enabled=True, now=NOW).state
    s = enter(s, "lee").state
    s = machine.remove(s, actor_id="ana", target_id="lee", now=NOW).state
    s = machine.set_lock(s, actor_id="ana", locked=True).state
    s = machine.need_support(s, seat_id="sam", active=True).state
    s = machine.disconnect(s, seat_id="sam", now=NOW).state
    assert snapshot.from_data(snapshot.to_data(s), s.circle, s.settings) == s


def test_audit_names_who_did_what_to_whom() -> None:
    decision = machine.remove(basic(), actor_id="ana", target_id="sam", now=NOW)
    (entry,) = decision.audit
    assert (entry.action, entry.actor_label, entry.target_label) == ("remove", "Ana", "Sam")


def test_restore_marks_everyone_reconnecting() -> None:
    state = machine.restore(basic(), now=NOW).state
    assert all(s.disconnected_at == NOW for s in state.seats.values())
    assert audible_seats(state) == frozenset()
    assert replace(state, seats=basic().seats) == basic()


def test_with_wait_for_host_arrivals_wait_until_a_host_is_there() -> None:
    state = machine.leave(circle(CircleSettings(wait_for_host=True), ANA), seat_id="ana").state
    state = enter(state, "sam").state
    assert state.waiting("sam") is not None and state.lobby[0].reason is WaitReason.NO_HOST
    state = enter(state, "ana2", Role.HOST).state
    assert "sam" in state.seats and not state.lobby


def test_a_full_circle_admits_from_the_lobby_only_as_far_as_its_capacity() -> None:
    small = CircleState.starting(replace(CIRCLE, capacity=4), CircleSettings())
    for seat_id, role in (ANA, SAM, KIM):
        small = enter(small, seat_id, role).state
    state = machine.set_lobby(small, actor_id="ana", enabled=True, now=NOW).state
    for seat_id in ("lee", "max"):
        state = enter(state, seat_id).state
    state = machine.admit_all(state, actor_id="ana", now=NOW).state
    assert "lee" in state.seats and [w.id for w in state.lobby] == ["max"]
    for step in (
        lambda s: machine.admit(s, actor_id="ana", waiting_id="max", now=NOW),
        lambda s: machine.admit_all(s, actor_id="ana", now=NOW),
    ):
        with pytest.raises(RoomError) as refused:
            step(state)
        assert refused.value.code == errors.CIRCLE_FULL
    # Turning the lobby off does not squeeze anyone in either: Max keeps his place.
    opened = machine.set_lobby(state, actor_id="ana", enabled=False, now=NOW).state
    assert "max" not in opened.seats and [w.id for w in opened.lobby] == ["max"]
    # A seat frees up, and Max can be let in.
    freed = machine.leave(opened, seat_id="sam").state
    assert "max" in machine.admit(freed, actor_id="ana", waiting_id="max", now=NOW).state.seats


def test_nobody_new_gets_past_a_full_circle_at_the_door() -> None:
    full = CircleState.starting(replace(CIRCLE, capacity=2), CircleSettings())
    for seat_id, role in (ANA, SAM):
        full = enter(full, seat_id, role).state
    with pytest.raises(RoomError) as refused:
        enter(full, "kim")
    assert refused.value.code == errors.CIRCLE_FULL
    # Hosts always get in: a circle is never full for the people who run it.
    assert "bo" in enter(full, "bo", Role.HOST).state.seats
