"""A protocol fuzzer: random sequences of WebSocket messages with adversarial field values,
sent to a real server beside a real host, checking after every step what must always hold.

Values: unicode edge cases (lone surrogates, format and private-use characters, joiners),
huge and non-finite numbers, wrong types, deep nesting, real and made-up participant ids,
the real join and host tokens. After each message a barrier (an unknown type, answered in
order) makes sure every effect has arrived. The run is bounded (FUZZ_EXAMPLES examples of up
to MAX_STEPS messages, about 30-60 s on a loaded 2-core machine) so it runs in every CI pass.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.protocol import MESSAGE_TYPES, PERSON_COMMANDS
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

FUZZ_EXAMPLES = 100
MAX_STEPS = 10
BARRIER = "h9l-barrier"
ROLES = {"host", "cohost", "participant"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Rate limits generous enough that the fuzzer explores the rules, not the limiter
    # (tests/integration/test_limits.py hits the limiter itself).
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-fuzz")),
        extra_env={"HEARTH_MESSAGE_BURST": "1000", "HEARTH_MESSAGE_RATE": "1000"},
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


# --- adversarial values --------------------------------------------------------------------

edge_strings = st.sampled_from(
    [
        "",
        " ",
        "\ud800",
        "\udfff",
        "a\ud83dz",
        "\u200d",
        "\u202eAna",
        "\u0410na",
        "Ana",
        "\u3164",
        "\U0001f469\u200d\u2695\ufe0f",
        "x" * 401,
        "open",
        "hand_raise",
        "cohost",
        "participant",
        "host",
    ]
)
odd_text = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec=None, categories=["Cs", "Cf", "Co", "Mn", "Zs", "Cc"]), max_size=8),
    edge_strings,
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 5, 10, 60, 3600, 3601, -1, 2**63, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "token",
    "display_name",
    "muted",
    "seat_token",
    "device_key",
    "passcode",
    "sdp",
    "participant_id",
    "minutes",
    "seconds",
    "mode",
    "enabled",
    "locked",
    "accept",
    "role",
    "ban_id",
    "active",
]


ids = st.sampled_from(["<host>", "<self>", "nobody", "", "\ud800"])
SHAPES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "join": {
        "token": st.sampled_from(["<join>", "<join>", "<host-link>", "nope"]),
        "display_name": st.sampled_from(["Sam", "Ana", "\u0410na", "Ky\u200dra", "Sam (2)"]),
        "muted": st.booleans(),
        "seat_token": st.sampled_from(["<seat>", "x" * 32]),
        "device_key": st.sampled_from(["device-1", "device-2"]),
        "passcode": st.sampled_from(["0000", "olive"]),
    },
    "offer": {"sdp": st.just("v=0\r\n")},
    "mute": {"muted": st.booleans()},
    "mute_participant": {"participant_id": ids},
    "extend": {"minutes": st.integers(0, 61)},
    "lower_hand": {"participant_id": ids},
    "answer_unmute": {"accept": st.booleans()},
    "extend_turn": {"seconds": st.integers(0, 3601)},
    "set_share_time": {"seconds": st.one_of(st.none(), st.integers(0, 3601))},
    "set_speaking_mode": {"mode": st.sampled_from(["open", "hand_raise"])},
    "set_lobby": {"enabled": st.booleans()},
    "set_lock": {"locked": st.booleans()},
    "need_support": {"active": st.booleans()},
    "set_role": {"participant_id": ids, "role": st.sampled_from(["cohost", "participant"])},
    "unban": {"ban_id": ids},
    "rename": {"display_name": st.sampled_from(["Kim", "Ana", "\u3164", "\u0410na", "Lee"])},
    **{kind: {"participant_id": ids} for kind in PERSON_COMMANDS},
}


@st.composite
def shaped(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """A message of a real type with its real fields, each either sensible or hostile."""
    kind = kind or draw(st.sampled_from(MESSAGE_TYPES))
    fields: dict[str, Any] = {}
    for name, sensible in SHAPES.get(kind, {}).items():
        if name == "token" and draw(st.integers(0, 9)) < 8:
            fields[name] = draw(sensible)  # mostly a real link, so the join gets somewhere
            continue
        choice = draw(st.integers(0, 9))
        if choice < 5:
            fields[name] = draw(sensible)
        elif choice < 7:
            fields[name] = draw(edge_strings)
        elif choice < 9:
            fields[name] = draw(values)
    return {"type": kind, **fields}


@st.composite
def anything(draw: st.DrawFn) -> dict[str, Any] | str:
    """Anything at all: a made-up type, made-up fields, a frame that is not an object."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(["", "[]", "null", "{", "[" * 5000, '"\\ud800"', "1e999"]))
    kind = draw(st.one_of(st.sampled_from(MESSAGE_TYPES), odd_text, values))
    return {"type": kind, **draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=4))}


message = st.one_of(shaped(), shaped(), shaped(), anything())
sequences = st.tuples(shaped("join"), st.lists(message, max_size=MAX_STEPS - 1)).map(
    lambda t: [t[0], *t[1]]
)


# --- the run -------------------------------------------------------------------------------


def resolve(value: Any, known: dict[str, str]) -> Any:
    return known.get(value, value) if isinstance(value, str) else value


def check_host_view(host: ScriptedParticipant) -> None:
    """What the host sees stays a consistent circle: no seat without a name, known roles,
    distinct labels, the host among them."""
    assert host.me is not None
    people = list(host.participants.values())
    assert host.me["id"] in host.participants
    for p in people:
        assert p["display_name"].strip() and p["label"].strip(), p
        assert p["role"] in ROLES, p
    labels = [p["label"].casefold() for p in people]
    assert len(labels) == len(set(labels)), labels


def no_internal_error(*people: ScriptedParticipant) -> None:
    for someone in people:
        for m in someone.messages:
            assert not (m["type"] == "error" and m["code"] == "internal_error"), m


async def barrier(someone: ScriptedParticipant) -> bool:
    """Wait until everything sent before has been answered; False once the socket closed."""
    if someone.closed_code is not None:
        return False
    mark = len(someone.messages)
    try:
        await someone.send({"type": BARRIER})
        await someone.wait_until(
            lambda: (
                someone.closed_code is not None
                or any(m.get("ref") == BARRIER for m in someone.messages[mark:])
            ),
            timeout=15,
        )
    except ConnectionError:
        return False
    return someone.closed_code is None


async def run_sequence(server: ServerProcess, steps: list[dict[str, Any] | str]) -> None:
    circle = server.create_circle(title="Fuzz")
    host = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
    fuzz = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Fuzz", None)
    await host.connect()
    await fuzz.connect()
    try:
        await host.join()
        assert host.me is not None
        known = {
            "<host>": host.me["id"],
            "<join>": fuzz.token,
            "<host-link>": host.token,
        }
        for step in steps:
            known["<self>"] = fuzz.me["id"] if fuzz.me else "nobody"
            known["<seat>"] = fuzz.seat_token or "none"
            if isinstance(step, str):
                text = step
            else:
                text = json.dumps({k: resolve(v, known) for k, v in step.items()})
            try:
                await fuzz.send_raw(text)
            except ConnectionError:
                break
            alive = await barrier(fuzz)
            if not await barrier(host):
                break  # the fuzzer ended the circle (it may hold the host link)
            no_internal_error(host, fuzz)
            check_host_view(host)
            if not alive:
                break
    finally:
        await fuzz.close()
        await host.close()
    no_internal_error(host, fuzz)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=sequences)
def test_no_message_sequence_reaches_an_internal_error(
    server: ServerProcess, steps: list[dict[str, Any] | str]
) -> None:
    asyncio.run(run_sequence(server, steps))
    log = server.log_text()
    assert "Traceback" not in log and "internal_error" not in log, log[-3000:]
