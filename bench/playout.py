"""What a listener with a jitter buffer would play: the bench's model of a browser's receiver.

A sampled bot keeps every packet it received (with its arrival time) and, after the measuring
window, plays them out here: in sequence order, each due at its RTP time plus a fixed depth
behind the earliest arrival seen over the last couple of seconds (a receiver locks to the
fastest path). Where the timestamps jump but the sequence does not (a new talkspurt or a
server's new stream), the receiver locks afresh, as a browser's does. A packet arriving
after it was due is as good as lost; a duplicate is played once. What is missing is then
mended by the listener's decoder (bench.concealing_decoder), the same for every target.
"""

from __future__ import annotations

from collections import deque

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
# How far behind the fastest arrival a packet is played: jitter up to this is absorbed.
DEPTH = 0.06
# The fastest arrival is looked for over this much recent time (the stream's clock may jump
# when a server starts a new stream).
LOCK_WINDOW = 2.0

Received = tuple[float, int, int, bytes]  # (arrival, seq, RTP timestamp, payload)


def play_out(packets: list[Received], depth: float = DEPTH) -> list[tuple[float, int, bytes]]:
    """(time played, extended seq, payload) for each packet played, in the order played."""
    if not packets:
        return []
    ordered = sorted(packets, key=lambda p: p[0])
    # Extend sequence numbers and timestamps in arrival order (both wrap).
    ext_seq = ordered[0][1]
    ext_ts = ordered[0][2]
    extended: list[tuple[float, int, int, bytes]] = []
    for arrival, seq, ts, payload in ordered:
        ext_seq = ext_seq + ((seq - ext_seq + 0x8000) & 0xFFFF) - 0x8000
        ext_ts = ext_ts + ((ts - ext_ts + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        extended.append((arrival, ext_seq, ext_ts, payload))
    # Each packet's due time, from the earliest (arrival - media time) in the recent window.
    recent: deque[tuple[float, float]] = deque()  # (arrival, offset), offsets increasing
    due: dict[int, tuple[float, int, bytes]] = {}
    newest: tuple[int, int] | None = None  # (seq, ts) of the newest packet so far
    for arrival, seq, ts, payload in extended:
        offset = arrival - ts / SAMPLE_RATE
        if newest is None or seq > newest[0]:
            if newest is not None and ts - newest[1] != (seq - newest[0]) * FRAME_SAMPLES:
                recent.clear()  # the stream's clock jumped: lock onto it afresh
            newest = (seq, ts)
        while recent and recent[-1][1] >= offset:
            recent.pop()
        recent.append((arrival, offset))
        while recent[0][0] < arrival - LOCK_WINDOW:
            recent.popleft()
        at = ts / SAMPLE_RATE + recent[0][1] + depth
        if arrival <= at and seq not in due:
            due[seq] = (at, seq, payload)
    return [due[seq] for seq in sorted(due)]
