"""Errors a person may see, each with a stable code.

The code is part of the protocol (docs/protocol.md): clients switch on it, so it never changes
meaning. The message is for people and may be reworded.
"""

from __future__ import annotations

from typing import Any


class RoomError(Exception):
    """A command was refused; the state is unchanged."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # Optional documented fields sent along with the error (e.g. next_starts_at).
        self.details = dict(details or {})


# Stable codes for refusals decided in rooms/.
CIRCLE_NOT_OPEN = "circle_not_open"
CIRCLE_FULL = "circle_full"
FORBIDDEN = "forbidden"
INVALID_DISPLAY_NAME = "invalid_display_name"
UNKNOWN_PARTICIPANT = "unknown_participant"
ALREADY_JOINED = "already_joined"
NO_CHANGE = "no_change"
QUEUE_EMPTY = "queue_empty"
NO_TURN = "no_turn"
NO_UNMUTE_REQUEST = "no_unmute_request"
UNKNOWN_BAN = "unknown_ban"
BANNED = "banned"
REMOVED = "removed"
DENIED = "denied"
CIRCLE_LOCKED = "circle_locked"
PASSCODE_REQUIRED = "passcode_required"
IN_LOBBY = "in_lobby"
RENAME_NOT_ALLOWED = "rename_not_allowed"
LOBBY_FULL = "lobby_full"
NAME_CONFUSABLE = "name_confusable"
