"""The WebSocket protocol, version 1: parsing client messages, shaping server messages.

docs/protocol.md is the written form of this module; tests/unit/test_protocol.py keeps
the two in step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rooms.machine import MAX_SHARE_SECONDS, MIN_SHARE_SECONDS
from rooms.model import Circle, CircleState, Role, Seat, SpeakingMode
from rooms.roles import Capability, can
from rooms.schedule import closes_at
from rooms.voice_activity import Speaking

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_SDP_CHARS = 32 * 1024
MAX_TOKEN_CHARS = 200
MAX_NAME_INPUT_CHARS = 400
MIN_EXTEND = 5
MAX_EXTEND = 60
MAX_KEY_CHARS = 200
MAX_EXTEND_SECONDS = 3600

# Stable error codes decided here (those decided by rooms/ live in rooms/errors.py).
INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
UNKNOWN_TYPE = "unknown_type"
NOT_JOINED = "not_joined"
INVALID_SDP = "invalid_sdp"
INTERNAL_ERROR = "internal_error"
JOIN_TIMEOUT = "join_timeout"
JOIN_TIMEOUT_MESSAGE = "The connection was closed because no join came in time."
# Said alike by a session and by the workers' front, so one process and many answer the same.
BINARY_MESSAGE = "Send JSON text frames."
NOT_JOINED_MESSAGE = "Join the circle first."
INTERNAL_MESSAGE = "Something went wrong on our side."
REPLACED = "replaced"
# The database cannot be reached: a join is refused at once; the page may try again.
STORAGE_UNAVAILABLE = "storage_unavailable"
STORAGE_UNAVAILABLE_MESSAGE = (
    "We cannot let anyone in right now: the server cannot reach its records. "
    "Please try again in a moment."
)
# Limits (signaling/guard.py, rooms/limits.py).
RATE_LIMITED = "rate_limited"
RATE_LIMITED_MESSAGE = "Too many messages at once; slow down."
TOO_MANY_ATTEMPTS = "too_many_attempts"
TOO_MANY_CONNECTIONS = "too_many_connections"
TOO_MANY_CONNECTIONS_MESSAGE = "Too many connections from your network are waiting to join."
LOBBY_TIMEOUT = "lobby_timeout"
LOBBY_TIMEOUT_MESSAGE = "You waited a long time in the lobby, so your place was given up."

# WebSocket close codes the server uses.
CLOSE_LEFT = 1000
CLOSE_NOT_OPEN = 4404
CLOSE_SENT_AWAY = 4403
CLOSE_REPLACED = 4409
CLOSE_ENDED = 4410
CLOSE_JOIN_TIMEOUT = 4408
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_MANY_CONNECTIONS = 4430
CLOSE_LOBBY_TIMEOUT = 4431


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
    seat_token: str | None = None
    device_key: str | None = None
    passcode: str | None = None


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


@dataclass(frozen=True, slots=True)
class Extend:
    """A host keeps the whole circle open longer (not one person's turn: see extend_turn)."""

    minutes: int


@dataclass(frozen=True, slots=True)
class Command:
    """A moderation or care command: its type and its (checked) fields.

    ``participant_id`` names the person it is about, when there is one; ``value`` carries
    the one other field (a bool, a mode, a number of seconds, a role, a name).
    """

    kind: str
    participant_id: str | None = None
    value: object = None


ClientMessage = Join | Offer | Mute | MuteParticipant | Leave | Extend | Command

# Commands with no fields.
BARE_COMMANDS = ("mute_all", "raise_hand", "next_speaker", "end_turn", "admit_all", "end_circle")
# Commands naming a person.
PERSON_COMMANDS = ("request_unmute", "give_floor", "admit", "deny", "remove")
COMMAND_TYPES = (
    *BARE_COMMANDS,
    *PERSON_COMMANDS,
    "answer_unmute",
    "lower_hand",
    "extend_turn",
    "set_share_time",
    "set_speaking_mode",
    "set_lobby",
    "set_lock",
    "unban",
    "set_role",
    "need_support",
    "rename",
)

MESSAGE_TYPES = (
    "join",
    "offer",
    "mute",
    "mute_participant",
    "leave",
    "extend",
    *COMMAND_TYPES,
)
SERVER_MESSAGE_TYPES = (
    "joined",
    "answer",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "speaking",
    "room_updated",
    "moderation_updated",
    "waiting",
    "unmute_requested",
    "circle_updated",
    "circle_ended",
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
    if not isinstance(kind, str) or not _is_utf8(kind):
        raise ProtocolError(INVALID_MESSAGE, "Field 'type' must be a string.")
    if kind == "join":
        return Join(
            token=_string(data, kind, "token", max_chars=MAX_TOKEN_CHARS),
            display_name=_string(data, kind, "display_name", max_chars=MAX_NAME_INPUT_CHARS),
            muted=_bool(data, kind, "muted", default=True),
            seat_token=_optional_string(data, kind, "seat_token", max_chars=MAX_TOKEN_CHARS),
            device_key=_optional_string(data, kind, "device_key", max_chars=MAX_KEY_CHARS),
            passcode=_optional_string(data, kind, "passcode", max_chars=MAX_KEY_CHARS),
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
    if kind == "extend":
        minutes = data.get("minutes")
        if type(minutes) is not int or not MIN_EXTEND <= minutes <= MAX_EXTEND:
            raise ProtocolError(
                INVALID_MESSAGE,
                f"Field 'minutes' must be a whole number from {MIN_EXTEND} to {MAX_EXTEND}.",
                ref=kind,
            )
        return Extend(minutes=minutes)
    if kind in COMMAND_TYPES:
        return _command(data, kind)
    raise ProtocolError(UNKNOWN_TYPE, f"Unknown message type {kind[:40]!r}.", ref=kind[:40])


def _command(data: dict[str, Any], kind: str) -> Command:
    def person() -> str:
        return _string(data, kind, "participant_id", max_chars=MAX_TOKEN_CHARS)

    if kind in BARE_COMMANDS:
        return Command(kind)
    if kind in PERSON_COMMANDS:
        return Command(kind, participant_id=person())
    if kind == "lower_hand":
        return Command(
            kind, _optional_string(data, kind, "participant_id", max_chars=MAX_TOKEN_CHARS)
        )
    if kind == "answer_unmute":
        return Command(kind, value=_bool(data, kind, "accept"))
    if kind in ("set_lobby", "set_lock", "need_support"):
        field_name = {"set_lobby": "enabled", "set_lock": "locked", "need_support": "active"}[kind]
        return Command(kind, value=_bool(data, kind, field_name))
    if kind == "extend_turn":
        return Command(kind, value=_int(data, kind, "seconds", 1, MAX_EXTEND_SECONDS))
    if kind == "set_share_time":
        if data.get("seconds") is None and "seconds" in data:
            return Command(kind, value=None)
        return Command(
            kind, value=_int(data, kind, "seconds", MIN_SHARE_SECONDS, MAX_SHARE_SECONDS)
        )
    if kind == "set_speaking_mode":
        mode = data.get("mode")
        if mode not in ("open", "hand_raise"):
            raise ProtocolError(
                INVALID_MESSAGE, "Field 'mode' must be 'open' or 'hand_raise'.", ref=kind
            )
        return Command(kind, value=SpeakingMode(mode))
    if kind == "set_role":
        role = data.get("role")
        if role not in ("cohost", "participant"):
            raise ProtocolError(
                INVALID_MESSAGE, "Field 'role' must be 'cohost' or 'participant'.", ref=kind
            )
        return Command(kind, participant_id=person(), value=Role(role))
    if kind == "unban":
        return Command(kind, value=_string(data, kind, "ban_id", max_chars=MAX_TOKEN_CHARS))
    # rename
    return Command(kind, value=_string(data, kind, "display_name", max_chars=MAX_NAME_INPUT_CHARS))


def _optional_string(data: dict[str, Any], kind: str, name: str, *, max_chars: int) -> str | None:
    if data.get(name) is None:
        return None
    return _string(data, kind, name, max_chars=max_chars)


def _int(data: dict[str, Any], kind: str, name: str, low: int, high: int) -> int:
    value = data.get(name)
    if type(value) is not int or not low <= value <= high:
        raise ProtocolError(
            INVALID_MESSAGE,
            f"Field '{name}' must be a whole number from {low} to {high}.",
            ref=kind,
        )
    return value


def _string(data: dict[str, Any], kind: str, name: str, *, max_chars: int) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' must be a string.", ref=kind)
    if len(value) > max_chars:
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' is too long.", ref=kind)
    if not _is_utf8(value):
        # JSON may escape a lone surrogate ("\ud800"); no text a person types holds one, and
        # neither hashing nor the database could take it.
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' is not valid text.", ref=kind)
    return value


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bool(data: dict[str, Any], kind: str, name: str, default: bool | None = None) -> bool:
    if name not in data and default is not None:
        return default
    value = data.get(name)
    if not isinstance(value, bool):
        raise ProtocolError(INVALID_MESSAGE, f"Field '{name}' must be true or false.", ref=kind)
    return value


def participant_json(seat: Seat, state: CircleState | None = None) -> dict[str, Any]:
    # Everything a client ever learns about a person: no address, no device, no token.
    return {
        "id": seat.id,
        "display_name": seat.display_name,
        "label": seat.label,
        "role": seat.role.value,
        "muted": seat.muted,
        "connection": seat.connection.value,
        "hand_raised": state is not None and seat.id in state.hand_queue,
        "has_floor": state is not None and state.floor == seat.id,
    }


def participants_json(state: CircleState) -> dict[str, dict[str, Any]]:
    return {seat.id: participant_json(seat, state) for seat in state.seats.values()}


# The deployment's crisis text (HEARTH_CRISIS_TEXT), shown where a series set none.
_crisis_default = ""


def use_crisis_default(text: str) -> None:
    """Set once at start from the settings, like the TURN configuration."""
    global _crisis_default
    _crisis_default = text


def room_json(state: CircleState) -> dict[str, Any]:
    turn = state.turn
    return {
        "speaking_mode": state.speaking_mode.value,
        "floor": state.floor,
        "hand_queue": list(state.hand_queue),
        "turn": None
        if turn is None
        else {
            "participant_id": turn.seat_id,
            "started_at": turn.started_at.isoformat(),
            "ends_at": None if turn.ends_at is None else turn.ends_at.isoformat(),
        },
        "share_seconds": state.share_seconds,
        "lobby": state.lobby_enabled,
        "locked": state.locked,
        "no_host": state.no_host,
        "allow_rename": state.settings.allow_rename,
        "passcode_required": bool(state.settings.passcode),
        "crisis_text": state.settings.crisis_text
        if state.settings.crisis_text.strip()
        else _crisis_default,
    }


def moderation_json(state: CircleState) -> dict[str, Any]:
    """What only hosts and co-hosts see: the lobby, the bans, who asked for support."""
    return {
        "lobby": [
            {
                "id": w.id,
                "display_name": w.display_name,
                "reason": w.reason.value,
                "connection": w.connection.value,
            }
            for w in state.lobby
        ],
        "bans": [
            {"id": b.id, "display_name": b.display_name, "at": b.at.isoformat()} for b in state.bans
        ],
        "support": [s.id for s in state.seats.values() if s.needs_support],
    }


def sees_moderation(seat: Seat) -> bool:
    return can(seat.role, Capability.SEE_MODERATION)


def waiting_json(state: CircleState, waiting_id: str) -> dict[str, Any] | None:
    for position, waiting in enumerate(state.lobby, start=1):
        if waiting.id == waiting_id:
            return {
                "position": position,
                "waiting": len(state.lobby),
                "reason": waiting.reason.value,
                "room": room_json(state),
            }
    return None


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
        "closes_at": closes_at(circle).isoformat(),
        "timezone": circle.timezone,
        "status": circle.status.value,
    }


def error_message(
    code: str, message: str, ref: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An ``error``; ``details`` are optional documented fields (e.g. ``next_starts_at``)."""
    return {**(details or {}), "type": "error", "code": code, "message": message, "ref": ref}
