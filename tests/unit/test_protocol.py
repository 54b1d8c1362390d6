"""Parsing client messages: every bad input gets a stable code, nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rooms import errors as room_errors
from signaling import protocol
from signaling.protocol import Join, Leave, Mute, MuteParticipant, Offer, ProtocolError

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ('{"type":"join","token":"t","display_name":"Sam"}', Join("t", "Sam", muted=True)),
        ('{"type":"join","token":"t","display_name":"Sam","muted":false}', Join("t", "Sam", False)),
        ('{"type":"offer","sdp":"v=0"}', Offer("v=0")),
        ('{"type":"mute","muted":true}', Mute(True)),
        ('{"type":"mute_participant","participant_id":"p1"}', MuteParticipant("p1")),
        ('{"type":"leave"}', Leave()),
    ],
)
def test_well_formed_messages_parse(raw: str, parsed: object) -> None:
    assert protocol.parse(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "code", "ref"),
    [
        ("not json", protocol.INVALID_JSON, None),
        ("[1, 2]", protocol.INVALID_JSON, None),
        ('"join"', protocol.INVALID_JSON, None),
        ("{}", protocol.INVALID_MESSAGE, None),
        ('{"type": 7}', protocol.INVALID_MESSAGE, None),
        ('{"type":"dance"}', protocol.UNKNOWN_TYPE, "dance"),
        ('{"type":"join","display_name":"Sam"}', protocol.INVALID_MESSAGE, "join"),
        ('{"type":"join","token":5,"display_name":"Sam"}', protocol.INVALID_MESSAGE, "join"),
        (
            '{"type":"join","token":"t","display_name":"Sam","muted":"no"}',
            protocol.INVALID_MESSAGE,
            "join",
        ),
        ('{"type":"mute"}', protocol.INVALID_MESSAGE, "mute"),
        ('{"type":"mute","muted":1}', protocol.INVALID_MESSAGE, "mute"),
        ('{"type":"mute_participant"}', protocol.INVALID_MESSAGE, "mute_participant"),
        ('{"type":"offer","sdp":null}', protocol.INVALID_MESSAGE, "offer"),
        (
            json.dumps({"type": "offer", "sdp": "x" * (protocol.MAX_SDP_CHARS + 1)}),
            protocol.INVALID_MESSAGE,
            "offer",
        ),
        ("[" * 100_000, protocol.INVALID_JSON, None),
    ],
)
def test_bad_messages_get_a_stable_code(raw: str, code: str, ref: str | None) -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.parse(raw)
    assert refused.value.code == code
    assert refused.value.ref == ref


def test_field_errors_name_the_field() -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.parse('{"type":"join","token":"t"}')
    assert "display_name" in refused.value.message


def test_the_document_lists_every_message_type_and_error_code() -> None:
    documented_types = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.M))
    for kind in protocol.MESSAGE_TYPES:
        assert kind in documented_types, f"{kind} missing from docs/protocol.md"
    codes = {
        value
        for module in (protocol, room_errors)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+", value)
    }
    for code in codes:
        assert f"| `{code}` |" in DOC, f"error code {code} missing from docs/protocol.md"


def test_the_document_lists_every_message_the_server_sends() -> None:
    documented_types = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.M))
    for kind in protocol.SERVER_MESSAGE_TYPES:
        assert kind in documented_types, f"{kind} missing from docs/protocol.md"


def test_the_speaking_message_carries_what_the_document_says() -> None:
    from rooms.voice_activity import Speaking

    sent = protocol.speaking_json(Speaking(("p2", "p1"), {"p2": 8, "p1": 3}))
    row = re.search(r"^\| `speaking` \| (.*)$", DOC, flags=re.M)
    assert row is not None
    documented = re.findall(r"`(\w+)` \(", row.group(1))
    assert sorted(documented) == sorted(k for k in sent if k != "type")
    assert sent == {"type": "speaking", "speakers": ["p2", "p1"], "levels": {"p2": 8, "p1": 3}}
    json.dumps(sent)


def test_the_document_shows_exactly_what_is_sent_about_a_person() -> None:
    from datetime import UTC, datetime

    from rooms.model import Role, Seat

    shown = protocol.participant_json(
        Seat(id="p1", display_name="Sam", role=Role.PARTICIPANT, joined_at=datetime.now(UTC))
    )
    documented = re.search(r"A \*\*participant\*\* is `(\{.*?\})`", DOC)
    assert documented is not None
    keys = re.findall(r'"(\w+)":', documented.group(1))
    assert sorted(keys) == sorted(shown)
