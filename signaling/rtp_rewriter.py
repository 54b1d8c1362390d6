"""The circle's outbound timeline: where a forwarded packet lands in sequence and time.

A listener's stream carries the mix at some moments and one person's voice, forwarded
unchanged, at others. Each forwarded packet is placed by offset from the voice's own
sequence number and RTP timestamp, so what happened upstream reaches the listener's jitter
buffer as it happened: a lost packet leaves a gap in sequence (the browser counts it lost
and conceals it), a reordered one keeps its place, a duplicate is dropped here. A new
voice, or the mix after it, starts where the circle's clock stands, so the listener's
timeline advances by the time that passed and never runs backwards.

Pure: numbers in, numbers out; the audio path passes the circle's clock in.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
# Sequence numbers this far from the newest one are another stream (the browser started
# afresh), not a late or early packet of this one.
RESTART_GAP = 3000
# Duplicates are recognised among this many newest sequence numbers.
SEEN_WINDOW = 64


def unwrap(value: int, near: int, modulus: int) -> int:
    """The extended value congruent to ``value`` closest to the extended ``near``."""
    half = modulus >> 1
    return near + ((value - near + half) % modulus) - half


@dataclass(frozen=True)
class Placed:
    """Where a packet goes in the circle's stream (both still unbounded: mask to send)."""

    seq: int
    pts: int


class OutboundTimeline:
    """The circle's outbound sequence numbers and timestamps, shared by every listener."""

    def __init__(self, frame_samples: int, clock_rate: int) -> None:
        self._frame = frame_samples
        self._clock_rate = clock_rate
        self.next_seq = 0  # one past the highest sequence number given out
        self.next_pts = 0  # one frame past the latest timestamp given out
        self._anchored = False
        self._seq_offset = 0
        self._pts_offset = 0
        self._first_seq = 0  # the forwarded voice's first extended seq: older is dropped
        self._newest_seq = 0  # its newest extended seq
        self._seen = 0  # bit i: newest_seq - i was placed

    def mixed(self, pts: int) -> Placed:
        """A packet the server made itself (the mix) for the tick at ``pts``."""
        pts = max(pts, self.next_pts)
        placed = Placed(self.next_seq, pts)
        self.next_seq += 1
        self.next_pts = pts + self._frame
        return placed

    def switch(self) -> None:
        """Another voice (or none) is forwarded from now on: anchor afresh on its next packet."""
        self._anchored = False

    def forwarded(self, seq: int, timestamp: int, now_pts: int) -> Placed | None:
        """Place a packet of the forwarded voice (16-bit ``seq``, 32-bit ``timestamp``), or
        None if it is a duplicate, or older than where forwarding this voice began."""
        if self._anchored:
            ext = unwrap(seq, self._newest_seq, SEQ_MOD)
            pts = unwrap((timestamp + self._pts_offset) % TS_MOD, now_pts, TS_MOD)
            if abs(ext - self._newest_seq) > RESTART_GAP or abs(pts - now_pts) > self._clock_rate:
                # The voice's numbering or clock jumped (a new stream): anchor again.
                self._anchored = False
        if not self._anchored:
            return self._anchor(seq, timestamp, now_pts)
        if ext < self._first_seq:
            return None  # its place belongs to what was sent before this voice
        behind = self._newest_seq - ext
        if behind > 0:
            if behind < SEEN_WINDOW:
                if self._seen >> behind & 1:
                    return None
                self._seen |= 1 << behind
            # Late but in its own place; packets this old are rare enough to let through.
        elif behind == 0:
            return None
        else:
            self._seen = ((self._seen << -behind) | 1) & ((1 << SEEN_WINDOW) - 1)
            self._newest_seq = ext
        placed = Placed(ext + self._seq_offset, pts)
        self.next_seq = max(self.next_seq, placed.seq + 1)
        self.next_pts = max(self.next_pts, pts + self._frame)
        return placed

    def _anchor(self, seq: int, timestamp: int, now_pts: int) -> Placed:
        pts = max(now_pts, self.next_pts)
        # The extended seq starts in the middle of a cycle: room to unwrap either way.
        ext = SEQ_MOD * 8 + seq
        self._seq_offset = self.next_seq - ext
        self._pts_offset = (pts - timestamp) % TS_MOD
        self._first_seq = self._newest_seq = ext
        self._seen = 1
        self._anchored = True
        placed = Placed(self.next_seq, pts)
        self.next_seq += 1
        self.next_pts = pts + self._frame
        return placed
