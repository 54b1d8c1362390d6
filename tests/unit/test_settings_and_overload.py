"""Pure rules of issue 9's operations part, called with a clock value; nothing sleeps.

- rooms.machine.apply_settings: an admin's change to the settings while a circle is live;
- rooms.overload: when a new arrival is refused (loop lag, drain).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms import errors, machine
from rooms.audio_policy import audible_seats
from rooms.errors import RoomError
from rooms.machine import Admitted
from rooms.model import CircleSettings, NoHostPolicy, Role, SpeakingMode, WaitReason
from rooms.overload import (
    SERVER_BUSY,
    SERVER_DRAINING,
    LoadLimits,
    LoadState,
    arrival_refusal,
    observe_lag,
)
from tests.unit.test_moderation_machine import ANA, KIM, NOW, SAM, basic, circle, enter

# --- settings applied live ---------------------------------------------------------------


def test_a_passcode_set_live_keeps_everyone_inside_and_asks_it_of_newcomers() -> None:
    state = basic()
    decision = machine.apply_settings(
        state, settings=replace(state.settings, passcode="4711"), now=NOW
    )
    after = decision.state
    assert list(after.seats) == ["ana", "sam", "kim"]
    with pytest.raises(RoomError) as refused:
        enter(after, "lee")
    assert refused.value.code == errors.PASSCODE_REQUIRED
    assert "lee" in enter(after, "lee", passcode_ok=True).state.seats
    assert enter(after, "bo", Role.HOST).state.seats["bo"].role is Role.HOST
    assert decision.audit[0].action == "set_settings"
    assert decision.audit[0].detail == "passcode"


def test_a_lobby_turned_on_live_holds_new_arrivals_and_turned_off_lets_them_in() -> None:
    state = basic()
    lobby_on = machine.apply_settings(state, settings=replace(state.settings, lobby=True), now=NOW)
    assert lobby_on.state.lobby_enabled
    waiting = enter(lobby_on.state, "lee").state
    assert [w.id for w in waiting.lobby] == ["lee"]
    lobby_off = machine.apply_settings(
        waiting, settings=replace(waiting.settings, lobby=False), now=NOW
    )
    assert "lee" in lobby_off.state.seats and not lobby_off.state.lobby
    assert Admitted("lee") in lobby_off.events


def test_a_speaking_mode_changed_live_changes_who_is_heard() -> None:
    state = basic()
    assert audible_seats(state) == {"ana", "sam", "kim"}
    decision = machine.apply_settings(
        state, settings=replace(state.settings, speaking_mode=SpeakingMode.HAND_RAISE), now=NOW
    )
    assert decision.state.speaking_mode is SpeakingMode.HAND_RAISE
    assert audible_seats(decision.state) == {"ana"}


def test_what_the_admin_left_alone_keeps_the_hosts_live_choice() -> None:
    state = basic()
    # A host switched to hand-raise in the circle; the admin then changes only the text.
    state = machine.set_speaking_mode(state, actor_id="ana", mode=SpeakingMode.HAND_RAISE).state
    decision = machine.apply_settings(
        state, settings=replace(state.settings, crisis_text="Call 112"), now=NOW
    )
    assert decision.state.speaking_mode is SpeakingMode.HAND_RAISE
    assert decision.state.settings.crisis_text == "Call 112"


def test_the_same_settings_again_change_nothing_and_audit_nothing() -> None:
    state = basic()
    decision = machine.apply_settings(state, settings=state.settings, now=NOW)
    assert decision.state == state and decision.audit == ()


def test_hold_set_live_without_a_moderator_mutes_everyone_and_continue_lets_the_held_in() -> None:
    state = circle(None, SAM, KIM)
    assert state.no_host and not state.seats["sam"].muted
    held = machine.apply_settings(
        state, settings=replace(state.settings, no_host_policy=NoHostPolicy.HOLD), now=NOW
    ).state
    assert all(seat.muted for seat in held.seats.values())
    arriving = enter(held, "lee").state
    assert [(w.id, w.reason) for w in arriving.lobby] == [("lee", WaitReason.NO_HOST)]
    released = machine.apply_settings(
        arriving, settings=replace(arriving.settings, no_host_policy=NoHostPolicy.CONTINUE), now=NOW
    )
    assert "lee" in released.state.seats and Admitted("lee") in released.events


def test_settings_never_seat_more_than_the_capacity() -> None:
    state = circle(CircleSettings(lobby=True), ANA)
    state = replace(state, circle=replace(state.circle, capacity=2))
    for seat_id in ("sam", "kim"):
        state = enter(state, seat_id).state
    after = machine.apply_settings(state, settings=replace(state.settings, lobby=False), now=NOW)
    assert list(after.state.seats) == ["ana", "sam"]
    assert [w.id for w in after.state.lobby] == ["kim"]


# --- overload and drain ------------------------------------------------------------------

LIMITS = LoadLimits(busy_lag=0.2, calm_seconds=2.0)


def sample(state: LoadState, *, lag: float, seconds: float, start: float) -> LoadState:
    """What the monitor sees over ``seconds`` when every 50 ms sleep wakes ``lag`` late."""
    now = start
    while now < start + seconds:
        now += 0.05 + lag
        state = observe_lag(state, LIMITS, lag=lag, now=now)
    return state


def test_a_lone_hiccup_does_not_turn_newcomers_away() -> None:
    state = sample(LoadState(), lag=0.002, seconds=5, start=0)
    state = observe_lag(state, LIMITS, lag=0.3, now=5.35)
    assert arrival_refusal(state, LIMITS, draining=False, now=5.35) is None


def test_a_sustained_lag_refuses_arrivals_until_the_loop_has_been_calm_a_while() -> None:
    state = sample(LoadState(), lag=0.002, seconds=5, start=0)
    assert arrival_refusal(state, LIMITS, draining=False, now=5) is None
    state = sample(state, lag=0.3, seconds=3, start=5)
    assert arrival_refusal(state, LIMITS, draining=False, now=8) == SERVER_BUSY
    # Calm again: not at once (the smoothed lag falls first, then calm_seconds pass).
    state = sample(state, lag=0.002, seconds=1, start=8)
    assert arrival_refusal(state, LIMITS, draining=False, now=9) == SERVER_BUSY
    state = sample(state, lag=0.002, seconds=4, start=9)
    assert arrival_refusal(state, LIMITS, draining=False, now=13) is None


def test_one_long_stall_counts_as_overload() -> None:
    state = sample(LoadState(), lag=0.002, seconds=5, start=0)
    state = observe_lag(state, LIMITS, lag=1.5, now=6.55)
    assert arrival_refusal(state, LIMITS, draining=False, now=6.55) == SERVER_BUSY


def test_a_lag_shorter_than_the_sustain_window_does_not_refuse() -> None:
    # Half a second at 500 ms late lifts the smoothed lag past 200 ms, but not for a whole
    # sustain window: one bad moment is not an overload.
    state = sample(LoadState(), lag=0.002, seconds=5, start=0)
    state = sample(state, lag=0.45, seconds=0.9, start=5)
    assert state.smoothed_lag > LIMITS.busy_lag
    state = sample(state, lag=0.002, seconds=0.5, start=6)
    assert arrival_refusal(state, LIMITS, draining=False, now=6.5) is None


def run_monitor(
    limits: LoadLimits, *, lag: float, cpu_share: float, seated: int, seconds: float
) -> tuple[LoadState, float]:
    """The monitor's view of ``seconds`` in which every sample wakes ``lag`` late, the process
    uses ``cpu_share`` of a core and ``seated`` people are in its circles."""
    state, now, cpu = LoadState(), 0.0, 0.0
    while now < seconds:
        step = 0.05 + lag
        now, cpu = now + step, cpu + cpu_share * step
        state = observe_lag(state, limits, lag=lag, now=now, cpu_seconds=cpu, seated=seated)
    return state, now


def test_a_slow_machine_does_not_turn_the_first_circles_away() -> None:
    # The loop lags 300 ms for ten seconds, but only 8 people are seated: whatever lags the
    # loop, it is not this server's circles, and the people still arriving are let in.
    state, now = run_monitor(LoadLimits(), lag=0.3, cpu_share=0.9, seated=8, seconds=10)
    assert state.smoothed_lag > 0.25
    assert arrival_refusal(state, LoadLimits(), draining=False, now=now) is None


def test_a_process_starved_by_others_admits_even_with_many_seated() -> None:
    # 40 seated, the loop 300 ms late, but the process gets a twentieth of a core: the
    # machine is busy with other work, refusing newcomers would protect nobody.
    state, now = run_monitor(LoadLimits(), lag=0.3, cpu_share=0.05, seated=40, seconds=10)
    assert 0.03 < state.cpu_share < 0.08
    assert arrival_refusal(state, LoadLimits(), draining=False, now=now) is None


def test_a_server_overloaded_by_its_own_circles_refuses_newcomers() -> None:
    # The same lag while the process uses a real share of a core for 40 seated people (on a
    # busy machine it may get no more than this): its own load.
    state, now = run_monitor(LoadLimits(), lag=0.3, cpu_share=0.2, seated=40, seconds=10)
    assert arrival_refusal(state, LoadLimits(), draining=False, now=now) == SERVER_BUSY
    # ... but not before the lag has lasted its window: after one second, not yet.
    early, at = run_monitor(LoadLimits(), lag=0.3, cpu_share=0.9, seated=40, seconds=1.0)
    assert arrival_refusal(early, LoadLimits(), draining=False, now=at) is None


def test_a_threshold_of_zero_never_refuses_for_load() -> None:
    off = LoadLimits(busy_lag=0.0)
    state = observe_lag(LoadState(), off, lag=5.0, now=1.0)
    assert arrival_refusal(state, off, draining=False, now=1.0) is None


def test_a_draining_server_refuses_every_arrival_whatever_its_load() -> None:
    assert arrival_refusal(LoadState(), LIMITS, draining=True, now=0.0) == SERVER_DRAINING
    busy = observe_lag(LoadState(), LIMITS, lag=1.0, now=0.0)
    assert arrival_refusal(busy, LIMITS, draining=True, now=0.0) == SERVER_DRAINING
