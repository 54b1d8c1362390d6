"""The WebSocket protocol, version 1: parsing client messages, shaping server messages.

docs/protocol.md is the written form of this module; tests/unit/test_protocol_doc.py keeps
the two in step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rooms.model import Circle, Seat
from rooms.voice_activity import Speaking

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_SDP_CHARS = 32 * 1024
MAX_TOKEN_CHARS = 200
MAX_NAME_INPUT_CHARS = 400

# Stable error codes decided here (those decided by rooms/ live in rooms/errors.py).
INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
UNKNOWN_TYPE = "unknown_type"
NOT_JOINED = "not_joined"
INVALID_SDP = "invalid_sdp"
INTERNAL_ERROR = "internal_error"

# WebSocket close codes the server uses.
CLOSE_LEFT = 1000
CLOSE_NOT_OPEN = 4404


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@dataclass(frozen=True, slots=True)
class Join:
    token: str
    display_name: str
    muted: bool


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str


@dataclass(frozen=True, slots=True)
class Mute:
    muted: bool


@dataclass(frozen=True, slots=True)
class MuteParticipant:
    participant_id: str


@dataclass(frozen=True, slots=True)
class Leave:
    pass


ClientMessage = Join | Offer | Mute | MuteParticipant | Leave

MESSAGE_TYPES = ("join", "offer", "mute", "mute_participant", "leave")
SERVER_MESSAGE_TYPES = (
    "joined",
    "answer",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "speaking",
    "error",
)


def parse(raw: str) -> ClientMessage:
    """Turn one text frame into a message, or raise ProtocolError saying what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(INVALID_JSON, "The message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError(INVALID_JSON, "The message must be a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(INVALID_MESSAGE, "Field 'type' must be a string.")
    if kind == "join":
        return Join(
            token=_string(data, kind, "token", max_chars=MAX_TOKEN_CHARS),
            display_name=_string(data, kind, "display_name", max_chars=MAX_NAME_INPUT_CHARS),
            muted=_bool(data, kind, "muted", default=True),
        )
    if kind == "offer":
        return Offer(sdp=_string(data, kind, "sdp", max_chars=MAX_SDP_CHARS))
    if kind == "mute":
        return Mute(muted=_bool(data, kind, "muted"))
    if kind == "mute_participant":
        return MuteParticipant(
            participant_id=_string(data, kind, "participant_id", max_chars=MAX_TOKEN_CHARS)
        )
    if kind == "leave":
        return Leave()
    raise ProtocolError(UNKNOWN_TYPE, f"Unknown message type {kind[:40]!r}.", ref=kind[:40])


def _string(data: dict[str, Any], kind: str, name: str, *, max_chars: int) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' must be a string.", ref=kind)
    if len(value) > max_chars:
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' is too long.", ref=kind)
    return value


def _bool(data: dict[str, Any], kind: str, name: str, default: bool | None = None) -> bool:
    if name not in data and default is not None:
        return default
    value = data.get(name)
    if not isinstance(value, bool):
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' must be true or false.", ref=kind)
    return value


def participant_json(seat: Seat) -> dict[str, Any]:
    # Everything a client ever learns about a person: no address, no device.
    return {
        "id": seat.id,
        "display_name": seat.display_name,
        "role": seat.role.value,
        "muted": seat.muted,
    }


def speaking_json(update: Speaking) -> dict[str, Any]:
    return {
        "type": "speaking",
        "speakers": list(update.speakers),
        "levels": dict(update.levels),
    }


def circle_json(circle: Circle) -> dict[str, Any]:
    return {
        "id": circle.id,
        "title": circle.title,
        "starts_at": circle.starts_at.isoformat(),
        "ends_at": circle.ends_at.isoformat(),
        "timezone": circle.timezone,
        "status": circle.status.value,
    }


def error_message(code: str, message: str, ref: str | None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "ref": ref}
