"""Slot assignment: voices that fit are each given a slot of their own, kept while they speak."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rooms.slots import assign_slots


def test_voices_that_fit_each_get_their_own_slot() -> None:
    assert assign_slots(["a"], 3, {}) == {"a": 0}
    assert assign_slots(["a", "b", "c"], 3, {}) == {"a": 0, "b": 1, "c": 2}


def test_more_voices_than_slots_or_none_at_all_means_mixing() -> None:
    assert assign_slots(["a", "b", "c", "d"], 3, {"a": 0, "b": 1, "c": 2}) is None
    assert assign_slots(["a", "b"], 1, {"a": 0}) is None
    assert assign_slots([], 3, {"a": 0}) is None


def test_a_voice_keeps_its_slot_while_it_speaks_and_a_newcomer_takes_the_free_one() -> None:
    current = {"a": 0, "b": 1, "c": 2}
    # a stops: b and c stay where they are, however the list is ordered.
    after = assign_slots(["c", "b"], 3, current)
    assert after == {"b": 1, "c": 2}
    # d starts: the slot a left.
    assert assign_slots(["c", "b", "d"], 3, after or {}) == {"b": 1, "c": 2, "d": 0}


def test_a_voice_coming_back_takes_its_old_slot_if_free() -> None:
    assert assign_slots(["b", "a"], 3, {"b": 0}, last_slot={"a": 2}) == {"b": 0, "a": 2}
    # Taken meanwhile: the lowest free one.
    assert assign_slots(["b", "a"], 3, {"b": 2}, last_slot={"a": 2}) == {"b": 2, "a": 0}


def test_fewer_slots_than_before_moves_only_the_voices_that_no_longer_fit() -> None:
    assert assign_slots(["a", "b"], 2, {"a": 2, "b": 0}) == {"a": 1, "b": 0}


@given(
    steps=st.lists(st.sets(st.sampled_from("abcdef"), max_size=4), min_size=1, max_size=30),
    slots=st.integers(1, 4),
)
def test_slots_are_distinct_in_range_and_stable_while_speaking(
    steps: list[set[str]], slots: int
) -> None:
    current: dict[str, int] = {}
    for speaking in steps:
        ordered = sorted(speaking)
        after = assign_slots(ordered, slots, current)
        if after is None:
            assert not speaking or len(speaking) > slots
            current = {}
            continue
        assert set(after) == speaking
        assert len(set(after.values())) == len(after)
        assert all(0 <= s < slots for s in after.values())
        for voice, slot in current.items():
            if voice in speaking:
                assert after[voice] == slot  # never hops while it speaks
        current = after
