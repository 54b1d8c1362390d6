"""The live state as plain JSON-able data, so storage can keep it whole and give it back.

The circle's definition and settings are not in here: storage keeps those in their own
columns and hands them to ``from_data``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rooms.model import (
    Ban,
    Circle,
    CircleSettings,
    CircleState,
    Role,
    Seat,
    SpeakingMode,
    Turn,
    Waiting,
    WaitReason,
)

VERSION = 1


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _must(value: str) -> datetime:
    return datetime.fromisoformat(value)


def to_data(state: CircleState) -> dict[str, Any]:
    return {
        "version": VERSION,
        "seats": [
            {
                "id": s.id,
                "display_name": s.display_name,
                "label": s.label,
                "role": s.role.value,
                "joined_at": s.joined_at.isoformat(),
                "muted": s.muted,
                "token_hash": s.token_hash,
                "device_hash": s.device_hash,
                "disconnected_at": _time(s.disconnected_at),
                "unmute_requested": s.unmute_requested,
                "needs_support": s.needs_support,
            }
            for s in state.seats.values()
        ],
        "speaking_mode": state.speaking_mode.value,
        "hand_queue": list(state.hand_queue),
        "turn": None
        if state.turn is None
        else {
            "seat_id": state.turn.seat_id,
            "started_at": state.turn.started_at.isoformat(),
            "ends_at": _time(state.turn.ends_at),
        },
        "share_seconds": state.share_seconds,
        "lobby_enabled": state.lobby_enabled,
        "lobby": [
            {
                "id": w.id,
                "display_name": w.display_name,
                "arrived_at": w.arrived_at.isoformat(),
                "reason": w.reason.value,
                "muted": w.muted,
                "token_hash": w.token_hash,
                "device_hash": w.device_hash,
                "disconnected_at": _time(w.disconnected_at),
            }
            for w in state.lobby
        ],
        "locked": state.locked,
        "bans": [
            {
                "id": b.id,
                "display_name": b.display_name,
                "at": b.at.isoformat(),
                "device_hash": b.device_hash,
                "token_hash": b.token_hash,
            }
            for b in state.bans
        ],
        "no_host": state.no_host,
    }


def from_data(data: dict[str, Any], circle: Circle, settings: CircleSettings) -> CircleState:
    seats = {
        s["id"]: Seat(
            id=s["id"],
            display_name=s["display_name"],
            label=s["label"],
            role=Role(s["role"]),
            joined_at=_must(s["joined_at"]),
            muted=s["muted"],
            token_hash=s["token_hash"],
            device_hash=s["device_hash"],
            disconnected_at=_parse(s["disconnected_at"]),
            unmute_requested=s["unmute_requested"],
            needs_support=s["needs_support"],
        )
        for s in data["seats"]
    }
    turn = data["turn"]
    return CircleState(
        circle=circle,
        seats=seats,
        settings=settings,
        speaking_mode=SpeakingMode(data["speaking_mode"]),
        hand_queue=tuple(data["hand_queue"]),
        turn=None
        if turn is None
        else Turn(turn["seat_id"], _must(turn["started_at"]), _parse(turn["ends_at"])),
        share_seconds=data["share_seconds"],
        lobby_enabled=data["lobby_enabled"],
        lobby=tuple(
            Waiting(
                id=w["id"],
                display_name=w["display_name"],
                arrived_at=_must(w["arrived_at"]),
                reason=WaitReason(w["reason"]),
                muted=w["muted"],
                token_hash=w["token_hash"],
                device_hash=w["device_hash"],
                disconnected_at=_parse(w["disconnected_at"]),
            )
            for w in data["lobby"]
        ),
        locked=data["locked"],
        bans=tuple(
            Ban(b["id"], b["display_name"], _must(b["at"]), b["device_hash"], b["token_hash"])
            for b in data["bans"]
        ),
        no_host=data["no_host"],
    )
