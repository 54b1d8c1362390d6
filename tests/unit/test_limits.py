"""The limits' pure rules, with time as plain numbers (rooms/limits.py, rooms/names.py)."""

from __future__ import annotations

import pytest

from rooms import errors
from rooms.errors import RoomError
from rooms.limits import (
    Backoff,
    BackoffPolicy,
    Bucket,
    Strikes,
    failed,
    forgotten,
    retry_after,
    strike,
    take,
)
from rooms.names import clean_display_name, poses_as
from signaling.guard import AddressGate, PasscodeGuard, RateByKey
from signaling.passcodes import hash_passcode, verify_passcode


def allowed_at(times: list[float], *, rate: float, capacity: float) -> list[bool]:
    bucket, answers = Bucket(capacity, 0.0), []
    for now in times:
        bucket, ok = take(bucket, rate=rate, capacity=capacity, now=now)
        answers.append(ok)
    return answers


@pytest.mark.parametrize(
    ("times", "rate", "capacity", "expected"),
    [
        # A burst up to the capacity passes, the next is refused.
        ([0, 0, 0, 0], 1.0, 3.0, [True, True, True, False]),
        # Tokens come back at the rate: one a second.
        ([0, 0, 0, 0, 1.0, 1.0], 1.0, 3.0, [True, True, True, False, True, False]),
        # A long quiet spell refills to the capacity, never beyond.
        ([0, 100, 100, 100, 100], 1.0, 3.0, [True, True, True, True, False]),
        # A steady sender at the rate is never refused.
        ([i * 0.1 for i in range(50)], 10.0, 2.0, [True] * 50),
        # A clock that goes backwards gives nothing back.
        ([5, 5, 1, 1], 1.0, 2.0, [True, True, False, False]),
    ],
)
def test_token_bucket(
    times: list[float], rate: float, capacity: float, expected: list[bool]
) -> None:
    assert allowed_at(times, rate=rate, capacity=capacity) == expected


def test_strikes_count_a_run_and_a_quiet_spell_starts_anew() -> None:
    s = Strikes()
    for now in (0.0, 1.0, 2.0):
        s = strike(s, now=now, forget_after=10)
    assert s.count == 3
    assert strike(s, now=20.0, forget_after=10).count == 1


POLICY = BackoffPolicy(free_failures=3, first_delay=1.0, max_delay=8.0, forget_after=100.0)


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(1, 0.0), (2, 0.0), (3, 0.0), (4, 1.0), (5, 2.0), (6, 4.0), (7, 8.0), (8, 8.0), (40, 8.0)],
)
def test_wrong_passcodes_cost_a_doubling_wait_after_the_free_ones(
    failures: int, wait: float
) -> None:
    backoff = Backoff()
    for _ in range(failures):
        backoff = failed(backoff, POLICY, now=10.0)
    assert retry_after(backoff, now=10.0) == wait


def test_a_quiet_key_is_forgotten_and_starts_over() -> None:
    backoff = Backoff()
    for _ in range(6):
        backoff = failed(backoff, POLICY, now=0.0)
    assert not forgotten(backoff, POLICY, now=50.0)
    assert forgotten(backoff, POLICY, now=100.0)
    assert failed(backoff, POLICY, now=100.0).failures == 1


def test_the_guard_blocks_every_key_of_the_failing_person_and_the_circle_less() -> None:
    guard = PasscodeGuard(
        per_person=POLICY, per_circle=BackoffPolicy(free_failures=10, max_delay=2.0)
    )
    keys = ["circle:c1", "address:a", "device:d"]
    for _ in range(5):
        guard.record_failure(keys, now=0.0)
    assert guard.wait(keys, now=0.0) == 2.0  # the person's keys: 4th and 5th wrong try
    # Someone else on the same circle is not held by this person's failures.
    assert guard.wait(["circle:c1", "address:b"], now=0.0) == 0.0
    for _ in range(10):
        guard.record_failure(["circle:c1", "address:other"], now=0.0)
    assert 0 < guard.wait(["circle:c1", "address:b"], now=0.0) <= 2.0


def test_unjoined_sockets_per_address_are_counted_and_given_back() -> None:
    gate = AddressGate(limit=2)
    assert gate.enter("a") and gate.enter("a")
    assert not gate.enter("a")
    assert gate.enter("b")
    gate.leave("a")
    assert gate.enter("a")
    gate.leave("a")
    gate.leave("a")
    assert gate.count("a") == 0


def test_rate_by_key_keeps_keys_apart() -> None:
    rate = RateByKey(rate=1.0, burst=2.0)
    assert [rate.allow("a", now=0.0) for _ in range(3)] == [True, True, False]
    assert rate.allow("b", now=0.0)
    assert rate.allow("a", now=1.0)


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Ana", "Ana"),
        ("  Sam   Lee ", "Sam Lee"),
        # Persian needs the zero-width non-joiner; emoji sequences the joiner.
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        ("\U0001f469\u200d\u2695\ufe0f Kim", "\U0001f469\u200d\u2695\ufe0f Kim"),
        ("Zo\u00eb", "Zo\u00eb"),
    ],
)
def test_real_names_are_kept(raw: str, shown: str) -> None:
    assert clean_display_name(raw) == shown


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\u200d",  # a joiner alone
        "\u200d\u200c\u200d",
        "\u3164",  # Hangul filler
        "\u3164\u3164 \u2800",  # fillers and a blank Braille pattern
        "\u0301\u0301",  # combining marks alone
        "\u200b",  # zero-width space: refused anywhere
        "Ana\u200b",
        "\u202eanA",  # bidi override
        "A" * 41,
        "Ana\x00",
    ],
)
def test_invisible_disguised_or_oversized_names_are_refused(raw: str) -> None:
    with pytest.raises(RoomError) as refused:
        clean_display_name(raw)
    assert refused.value.code == errors.INVALID_DISPLAY_NAME


@pytest.mark.parametrize(
    ("name", "moderators", "poses"),
    [
        ("\u0410na", ["Ana"], True),  # Cyrillic A
        ("\u0430na", ["Ana"], True),  # Cyrillic a, case folded
        ("ANA", ["Ana"], True),
        ("Ana", ["Ana"], True),
        ("\uff33am", ["Sam"], True),  # fullwidth S
        ("Pau1", ["Paul"], True),  # digit one for l
        ("Anna", ["Ana"], False),
        ("Sam", ["Ana", "Kim"], False),
        ("Ana", [], False),
    ],
)
def test_a_name_that_looks_like_a_moderators_is_caught(
    name: str, moderators: list[str], poses: bool
) -> None:
    assert poses_as(name, moderators) is poses


def test_a_passcode_is_kept_only_as_a_salted_slow_hash() -> None:
    stored = hash_passcode("olive")
    assert "olive" not in stored and stored.startswith("scrypt:") and len(stored) <= 100
    assert stored != hash_passcode("olive")  # salted
    assert verify_passcode("olive", stored)
    assert not verify_passcode("Olive", stored)
    assert not verify_passcode("olive", "olive")  # a clear value never matches
    assert not verify_passcode("olive", "scrypt:99:8:1$AA$AA")  # absurd cost refused


def test_the_limits_are_read_from_the_environment_with_their_defaults() -> None:
    from server.config import Settings, settings_from_env

    assert settings_from_env({}) == Settings()
    env = {
        "HEARTH_MESSAGE_RATE": "2.5",
        "HEARTH_LOBBY_SIZE": "7",
        "HEARTH_ALLOWED_ORIGINS": "https://a.example/, https://b.example",
    }
    settings = settings_from_env(env)
    assert (settings.message_rate, settings.lobby_size) == (2.5, 7)
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    for bad in ({"HEARTH_MESSAGE_RATE": "0"}, {"HEARTH_MESSAGE_RATE": "nan"}):
        with pytest.raises(ValueError):
            settings_from_env(bad)


def test_rate_by_key_bounds_all_keys_together_too() -> None:
    rate = RateByKey(rate=100.0, burst=100.0, total_rate=2.0)
    answers = [rate.allow("", now=0.0, total=True) for _ in range(5)]
    assert answers == [True, True, True, True, False]  # a burst of twice the rate
    assert rate.allow("", now=0.5, total=True)
