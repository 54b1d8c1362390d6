"""Who may do what: the one capability table (docs/protocol.md shows it as a table too)."""

from __future__ import annotations

from enum import StrEnum

from rooms.model import Role


class Capability(StrEnum):
    MUTE_OTHERS = "mute_others"
    MANAGE_FLOOR = "manage_floor"
    MANAGE_LOBBY = "manage_lobby"
    REMOVE = "remove"
    END = "end"
    SET_ROLES = "set_roles"
    SEE_MODERATION = "see_moderation"
    RENAME_ANYTIME = "rename_anytime"


_MODERATOR = frozenset(Capability) - {Capability.SET_ROLES}

CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.HOST: frozenset(Capability),
    Role.COHOST: _MODERATOR,
    Role.PARTICIPANT: frozenset(),
}

MODERATOR_ROLES = frozenset({Role.HOST, Role.COHOST})


def can(role: Role, capability: Capability) -> bool:
    return capability in CAPABILITIES[role]


def is_moderator(role: Role) -> bool:
    return role in MODERATOR_ROLES
