"""Speaking indicators: start fast, hold through a breath, at most 5 updates a second."""

from __future__ import annotations

import itertools

from rooms.voice_activity import (
    HOLD_SECONDS,
    MIN_INTERVAL,
    Speaking,
    VoiceActivity,
    level_step,
    observe,
)


def run(samples: list[tuple[float, dict[str, float]]]) -> list[tuple[float, Speaking]]:
    activity = VoiceActivity()
    sent = []
    for now, levels in samples:
        activity, update = observe(activity, levels, now)
        if update is not None:
            sent.append((now, update))
    return sent


def test_a_voice_that_starts_speaking_is_shown_at_once_with_its_level() -> None:
    sent = run([(0.0, {"ana": -127.0}), (0.2, {"ana": -20.0, "sam": -127.0})])
    assert sent == [(0.2, Speaking(("ana",), {"ana": 7}))]


def test_a_breath_shorter_than_the_hold_does_not_flicker() -> None:
    sent = run([(0.0, {"ana": -20.0}), (0.2, {"ana": -127.0}), (0.4, {"ana": -20.0})])
    speakers = [update.speakers for _, update in sent]
    assert ("ana",) in speakers and () not in speakers


def test_a_speaker_who_stops_is_cleared_after_the_hold() -> None:
    sent = run([(0.0, {"ana": -20.0}), (HOLD_SECONDS + 0.1, {"ana": -127.0})])
    assert sent[-1][1].speakers == ()


def test_updates_are_coalesced_to_five_a_second_per_circle() -> None:
    # A level that changes every 20 ms, observed every 20 ms for 2 seconds.
    samples = [(i * 0.02, {"ana": -40.0 + (i % 2) * 30}) for i in range(100)]
    sent = run(samples)
    times = [now for now, _ in sent]
    assert len(sent) <= 2 / MIN_INTERVAL + 1
    assert all(b - a >= MIN_INTERVAL - 1e-9 for a, b in itertools.pairwise(times))


def test_speakers_are_listed_loudest_first() -> None:
    sent = run([(0.0, {"ana": -30.0, "sam": -10.0, "kim": -127.0})])
    assert sent[0][1].speakers == ("sam", "ana")


def test_levels_are_coarse_steps() -> None:
    assert [level_step(d) for d in (-127.0, -60.0, -30.0, 0.0, 3.0)] == [0, 0, 5, 10, 10]
