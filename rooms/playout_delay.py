"""How long a mixed voice's jitter buffer should wait before playing: decided here, time passed in.

Each packet's transit is its arrival time minus its RTP timestamp (in seconds): a constant
offset plus the network's variable delay. A packet is in time if it is played at least its
transit after the fastest one of the stream was, so the target is how far the slow packets
lag the fast ones, over the last few seconds: the spread between a high quantile of recent
transits and their minimum. It rises at once when the network gets worse (the next decision
sees it) and falls only as the bad seconds leave the window, so one quiet second does not
shrink it just before the next burst of jitter.

While packets are being lost (and the sender sends FEC copies: the buffer says so), the
target is one packet more than the jitter needs: a lost packet's audio is in the next
packet's FEC copy, which must be there when the lost one is due. Without loss or jitter, a
voice is played on the first tick after it arrives.
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
    losses: deque[float] = field(default_factory=deque)  # when packets were found lost

    def observe(self, arrival: float, media_time: float) -> None:
        """A packet arrived at ``arrival`` (seconds, any clock) carrying ``media_time``
        (its RTP timestamp in seconds, unwrapped)."""
        transits = self.transits
        transits.append((arrival, arrival - media_time))
        while transits and arrival - transits[0][0] > WINDOW_SECONDS:
            transits.popleft()
        while self.losses and arrival - self.losses[0] > WINDOW_SECONDS:
            self.losses.popleft()

    def lost(self, at: float) -> None:
        """A packet was found lost at ``at`` (the same clock as arrivals)."""
        self.losses.append(at)

    def restart(self) -> None:
        """A new stream (other timestamps): what was seen no longer compares."""
        self.transits.clear()
        self.losses.clear()

    def target(self) -> float:
        """Seconds to wait from a talkspurt's first packet before playing it."""
        # One packet more while packets are lost, so that the next one (with the FEC copy)
        # is there when a lost one is due.
        for_fec = FRAME_SECONDS if self.losses else 0.0
        spread = 0.0
        if len(self.transits) >= 2:
            values = sorted(transit for _, transit in self.transits)
            fastest = values[0]
            values = [v for v in values if v - fastest < OUTLIER_SECONDS]
            spread = values[min(len(values) - 1, int(QUANTILE * len(values)))] - fastest
        if spread <= 0 and not for_fec:
            return MIN_TARGET
        return min(MAX_TARGET, max(MIN_TARGET, spread + for_fec + TICK_MARGIN))
