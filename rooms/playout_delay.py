"""How long a mixed voice's jitter buffer should wait before playing: decided here, time passed in.

Each packet's transit is its arrival time minus its RTP timestamp (in seconds): a constant
offset plus the network's variable delay. A packet is in time if it is played at least its
transit after the fastest one of the stream was, so the target is how far the slow packets
lag the fast ones, over the last few seconds: the spread between a high quantile of recent
transits and their minimum. It rises at once when the network gets worse (the next decision
sees it) and falls only as the bad seconds leave the window, so one quiet second does not
shrink it just before the next burst of jitter.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

FRAME_SECONDS = 0.02
MIN_TARGET = 0.0  # no jitter: a packet is played on the first tick after it arrives
MAX_TARGET = 0.2  # past this a conversation suffers more from delay than from a gap
WINDOW_SECONDS = 4.0
# Late packets this rare are left to FEC and concealment rather than waited for.
QUANTILE = 0.95
# Slack for the event loop's own delays between a packet's arrival and its being noted.
TICK_MARGIN = 0.005
# A transit this much larger than the minimum is a clock jump or a paused sender, not jitter.
OUTLIER_SECONDS = 1.0


@dataclass
class PlayoutDelay:
    """Recent transits of one voice's packets, and the target they call for."""

    transits: deque[tuple[float, float]] = field(default_factory=deque)  # (arrival, transit)

    def observe(self, arrival: float, media_time: float) -> None:
        """A packet arrived at ``arrival`` (seconds, any clock) carrying ``media_time``
        (its RTP timestamp in seconds, unwrapped)."""
        transits = self.transits
        transits.append((arrival, arrival - media_time))
        while transits and arrival - transits[0][0] > WINDOW_SECONDS:
            transits.popleft()

    def restart(self) -> None:
        """A new stream (other timestamps): what was seen no longer compares."""
        self.transits.clear()

    def target(self) -> float:
        """Seconds to wait from a talkspurt's first packet before playing it."""
        if len(self.transits) < 2:
            return MIN_TARGET
        values = sorted(transit for _, transit in self.transits)
        fastest = values[0]
        values = [v for v in values if v - fastest < OUTLIER_SECONDS]
        high = values[min(len(values) - 1, int(QUANTILE * len(values)))]
        spread = high - fastest
        if spread <= 0:
            return MIN_TARGET
        return min(MAX_TARGET, max(MIN_TARGET, spread + TICK_MARGIN))
