"""Random sequences of commands against rooms/, checking the rules that must always hold.

Refused commands are part of the game: they must leave the state exactly as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rooms import machine, snapshot
from rooms.audio_policy import audible_seats, may_speak
from rooms.errors import RoomError
from rooms.machine import Decision
from rooms.model import (
    Circle,
    CircleSettings,
    CircleState,
    CircleStatus,
    NoHostPolicy,
    Role,
    SpeakingMode,
)
from rooms.roles import is_moderator

START = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
MODERATION = [
    "mute",
    "mute_all",
    "request_unmute",
    "give_floor",
    "next",
    "end_turn",
    "mode_open",
    "mode_hand",
    "lobby_on",
    "lobby_off",
    "admit",
    "admit_all",
    "deny",
    "lock",
    "unlock",
    "remove",
    "unban",
    "cohost",
    "demote",
    "share",
    "extend",
]
DEVICES = ["d0", "d1", "d2", "d3"]


class CircleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = CircleState(Circle("c", "C", START, 90, "UTC", CircleStatus.OPEN))
        self.now = START
        self.counter = 0

    @initialize(
        policy=st.sampled_from(list(NoHostPolicy)),
        lobby=st.booleans(),
        wait=st.booleans(),
    )
    def setup(self, policy: NoHostPolicy, lobby: bool, wait: bool) -> None:
        settings_ = CircleSettings(no_host_policy=policy, lobby=lobby, wait_for_host=wait)
        self.state = CircleState.starting(self.state.circle, settings_)

    def attempt(self, decide: object) -> None:
        before = self.state
        # A copy by value: a refusal that changed the state in place would pass `==`.
        before_data = snapshot.to_data(before)
        try:
            decision = decide(before)  # type: ignore[operator]
        except RoomError:
            assert self.state == before
            assert snapshot.to_data(self.state) == before_data
            return
        assert isinstance(decision, Decision)
        self.state = decision.state
        # A banned device is never admitted: whoever is newly inside (seated or waiting)
        # carries a device no ban names, unless they came with the host link.
        # (An empty device hash is "no key sent": such arrivals are kept out by seat token.)
        banned = {b.device_hash for b in before.bans if b.device_hash}
        known = set(before.seats) | {w.id for w in before.lobby}
        for seat in self.state.seats.values():
            if seat.id not in known and seat.role is not Role.HOST:
                assert seat.device_hash not in banned
        for waiting in self.state.lobby:
            if waiting.id not in known:
                assert waiting.device_hash not in banned

    @rule(seconds=st.sampled_from([1, 5, 30, 61]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.attempt(lambda s: machine.expire(s, now=self.now))

    @rule(device=st.sampled_from(DEVICES), muted=st.booleans())
    def a_participant_arrives(self, device: str, muted: bool) -> None:
        self.someone_arrives(False, device, muted)

    @precondition(lambda self: bool(self.state.bans))
    @rule(data=st.data(), resume=st.booleans())
    def a_removed_person_tries_again(self, data: st.DataObject, resume: bool) -> None:
        ban = data.draw(st.sampled_from(self.state.bans))
        self.counter += 1
        seat_id = f"s{self.counter}"
        self.attempt(
            lambda s: machine.join(
                s,
                seat_id=seat_id,
                display_name="A New Name",
                role=Role.PARTICIPANT,
                muted=False,
                now=self.now,
                token_hash=f"t{seat_id}",
                device_hash="fresh-device" if resume else ban.device_hash,
                resume_hash=ban.token_hash if resume else "",
            )
        )

    @rule(host=st.booleans(), device=st.sampled_from(DEVICES), muted=st.booleans())
    def someone_arrives(self, host: bool, device: str, muted: bool) -> None:
        self.counter += 1
        seat_id = f"s{self.counter}"
        self.attempt(
            lambda s: machine.join(
                s,
                seat_id=seat_id,
                # Names apart: a participant may not take a present moderator's name.
                display_name=f"Sam {self.counter}",
                role=Role.HOST if host else Role.PARTICIPANT,
                muted=muted,
                now=self.now,
                token_hash=f"t{seat_id}",
                device_hash=device,
            )
        )

    def ids(self) -> list[str]:
        return list(self.state.seats) + [w.id for w in self.state.lobby]

    def pick(self, data: st.DataObject) -> str:
        ids = self.ids()
        return data.draw(st.sampled_from(ids)) if ids else "nobody"

    @rule(data=st.data())
    def someone_resumes(self, data: st.DataObject) -> None:
        target = self.pick(data)
        self.attempt(
            lambda s: machine.join(
                s,
                seat_id="fresh",
                display_name="Back",
                role=Role.PARTICIPANT,
                muted=True,
                now=self.now,
                resume_hash=f"t{target}",
            )
        )

    @rule(data=st.data())
    def someone_drops(self, data: st.DataObject) -> None:
        target = self.pick(data)
        self.attempt(lambda s: machine.disconnect(s, seat_id=target, now=self.now))

    @rule(data=st.data())
    def someone_leaves(self, data: st.DataObject) -> None:
        target = self.pick(data)
        self.attempt(lambda s: machine.leave(s, seat_id=target))

    @rule(data=st.data(), muted=st.booleans())
    def own_mute(self, data: st.DataObject, muted: bool) -> None:
        me = self.pick(data)
        self.attempt(lambda s: machine.set_own_mute(s, seat_id=me, muted=muted))

    @rule(data=st.data(), up=st.booleans())
    def hand(self, data: st.DataObject, up: bool) -> None:
        me = self.pick(data)
        if up:
            self.attempt(lambda s: machine.raise_hand(s, seat_id=me))
        else:
            self.attempt(lambda s: machine.lower_hand(s, actor_id=me))

    @rule(data=st.data(), accept=st.booleans())
    def answer(self, data: st.DataObject, accept: bool) -> None:
        me = self.pick(data)
        self.attempt(lambda s: machine.answer_unmute(s, seat_id=me, accept=accept))

    def _moderate(self, data: st.DataObject, command: str) -> None:
        # Mostly from someone who may moderate, so that commands get past the role check.
        moderators = [k for k, v in self.state.seats.items() if is_moderator(v.role)]
        if moderators and data.draw(st.integers(0, 4)) > 0:
            actor = data.draw(st.sampled_from(moderators))
        else:
            actor = self.pick(data)
        target = self.pick(data)
        ban = data.draw(st.sampled_from([b.id for b in self.state.bans] or ["none"]))
        now = self.now
        m = machine
        table = {
            "mute": lambda s: m.mute_other(s, actor_id=actor, target_id=target),
            "mute_all": lambda s: m.mute_all(s, actor_id=actor),
            "request_unmute": lambda s: m.request_unmute(s, actor_id=actor, target_id=target),
            "give_floor": lambda s: m.give_floor(s, actor_id=actor, target_id=target, now=now),
            "next": lambda s: m.next_speaker(s, actor_id=actor, now=now),
            "end_turn": lambda s: m.end_turn(s, actor_id=actor),
            "mode_open": lambda s: m.set_speaking_mode(s, actor_id=actor, mode=SpeakingMode.OPEN),
            "mode_hand": lambda s: m.set_speaking_mode(
                s, actor_id=actor, mode=SpeakingMode.HAND_RAISE
            ),
            "lobby_on": lambda s: m.set_lobby(s, actor_id=actor, enabled=True, now=now),
            "lobby_off": lambda s: m.set_lobby(s, actor_id=actor, enabled=False, now=now),
            "admit": lambda s: m.admit(s, actor_id=actor, waiting_id=target, now=now),
            "admit_all": lambda s: m.admit_all(s, actor_id=actor, now=now),
            "deny": lambda s: m.deny(s, actor_id=actor, waiting_id=target),
            "lock": lambda s: m.set_lock(s, actor_id=actor, locked=True),
            "unlock": lambda s: m.set_lock(s, actor_id=actor, locked=False),
            "remove": lambda s: m.remove(s, actor_id=actor, target_id=target, now=now),
            "unban": lambda s: m.unban(s, actor_id=actor, ban_id=ban),
            "cohost": lambda s: m.set_role(s, actor_id=actor, target_id=target, role=Role.COHOST),
            "demote": lambda s: m.set_role(
                s, actor_id=actor, target_id=target, role=Role.PARTICIPANT
            ),
            "share": lambda s: m.set_share_time(s, actor_id=actor, seconds=60),
            "extend": lambda s: m.extend_turn(s, actor_id=actor, seconds=30, now=now),
        }
        self.attempt(table[command])

    # Registered several times: Hypothesis picks rules evenly, and moderation is most of
    # what there is to test.
    moderate = precondition(lambda self: bool(self.state.seats))(
        rule(data=st.data(), command=st.sampled_from(MODERATION))(_moderate)
    )
    moderate_again = moderate
    moderate_more = precondition(lambda self: bool(self.state.seats))(
        rule(data=st.data(), command=st.sampled_from(MODERATION))(_moderate)
    )
    moderate_once_more = precondition(lambda self: bool(self.state.seats))(
        rule(data=st.data(), command=st.sampled_from(MODERATION))(_moderate)
    )

    # --- what must always hold -------------------------------------------------------

    @invariant()
    def nobody_muted_or_without_the_floor_is_heard(self) -> None:
        for seat_id in audible_seats(self.state):
            seat = self.state.seats[seat_id]
            assert not seat.muted
            assert may_speak(self.state, seat)
            if self.state.speaking_mode is SpeakingMode.HAND_RAISE:
                assert is_moderator(seat.role) or self.state.floor == seat_id

    @invariant()
    def everyone_who_may_speak_and_is_unmuted_is_heard(self) -> None:
        # The other direction, spelled out from the rules rather than from audio_policy:
        # nobody the room lets speak is silenced.
        state = self.state
        expected = {
            seat_id
            for seat_id, seat in state.seats.items()
            if not seat.muted
            and seat.disconnected_at is None
            and (
                state.speaking_mode is SpeakingMode.OPEN
                or is_moderator(seat.role)
                or state.floor == seat_id
            )
        }
        assert expected <= audible_seats(state)

    @invariant()
    def the_removed_are_gone(self) -> None:
        banned = {b.id for b in self.state.bans}
        assert not banned & set(self.state.seats)
        assert not banned & {w.id for w in self.state.lobby}

    @invariant()
    def the_queue_holds_nobody_twice_and_only_the_present(self) -> None:
        queue = self.state.hand_queue
        assert len(queue) == len(set(queue))
        assert set(queue) <= set(self.state.seats)
        assert self.state.floor is None or self.state.floor in self.state.seats
        assert self.state.floor not in queue

    @invariant()
    def someone_can_moderate_or_the_circle_is_in_its_no_host_state(self) -> None:
        if self.state.seats:
            moderators = [s for s in self.state.seats.values() if is_moderator(s.role)]
            assert moderators or self.state.no_host
            if moderators:
                assert any(s.role is Role.HOST for s in moderators)
                assert not self.state.no_host
            if self.state.no_host and self.state.settings.no_host_policy is NoHostPolicy.HOLD:
                assert audible_seats(self.state) == frozenset()

    @invariant()
    def nobody_is_seated_and_waiting_at_once(self) -> None:
        waiting = [w.id for w in self.state.lobby]
        assert len(waiting) == len(set(waiting))
        assert not set(waiting) & set(self.state.seats)

    @invariant()
    def the_snapshot_round_trips(self) -> None:
        data = snapshot.to_data(self.state)
        assert snapshot.from_data(data, self.state.circle, self.state.settings) == self.state


CircleMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_circle_rules_hold_whatever_happens = CircleMachine.TestCase
