"""Who is speaking, and how loudly: what the pages show, decided here with time passed in.

The audio path reports each voice's recent level (dBov); this turns those into the
``speaking`` message, with hysteresis so a short breath does not flicker, and coalesced so a
circle gets at most one update every ``MIN_INTERVAL`` seconds (5 a second), and only when
something a person could see has changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

START_DBOV = -50.0  # louder than this starts a speaker ...
HOLD_SECONDS = 0.6  # ... who stays speaking this long after the last loud moment
MIN_INTERVAL = 0.2  # at most 5 updates a second per circle
LEVEL_STEPS = 10  # levels are sent as 0..10, enough for a meter, too coarse to chatter
FLOOR_DBOV = -60.0


@dataclass(frozen=True)
class Speaking:
    """What the pages are told: speakers loudest first, and a coarse level for each."""

    speakers: tuple[str, ...]
    levels: Mapping[str, int]


@dataclass(frozen=True)
class VoiceActivity:
    last_loud: Mapping[str, float] = field(default_factory=dict)
    shown: Speaking = Speaking((), {})
    sent_at: float | None = None


def level_step(dbov: float) -> int:
    """-60 dBov or less is 0, 0 dBov is 10."""
    share = (max(FLOOR_DBOV, min(0.0, dbov)) - FLOOR_DBOV) / -FLOOR_DBOV
    return round(share * LEVEL_STEPS)


def observe(
    activity: VoiceActivity, levels: Mapping[str, float], now: float
) -> tuple[VoiceActivity, Speaking | None]:
    """Take the voices' levels at ``now``; return the new activity and an update to send."""
    last_loud = {seat: at for seat, at in activity.last_loud.items() if now - at <= HOLD_SECONDS}
    for seat, dbov in levels.items():
        if dbov > START_DBOV:
            last_loud[seat] = now
    speakers = sorted(last_loud, key=lambda seat: (-levels.get(seat, -127.0), seat))
    current = Speaking(
        tuple(speakers), {seat: level_step(levels.get(seat, -127.0)) for seat in speakers}
    )
    next_activity = VoiceActivity(last_loud, activity.shown, activity.sent_at)
    if current == activity.shown:
        return next_activity, None
    if activity.sent_at is not None and now - activity.sent_at < MIN_INTERVAL:
        return next_activity, None
    return VoiceActivity(last_loud, current, now), current
