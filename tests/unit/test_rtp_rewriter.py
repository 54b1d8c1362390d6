"""Forwarded packets keep their upstream timeline: gaps stay gaps, late packets keep their
place, duplicates go, and numbers wrap around without a jump."""

from __future__ import annotations

from signaling.rtp_rewriter import OutboundTimeline, Placed

FRAME = 960
RATE = 48_000


def timeline_after_mix(ticks: int = 3) -> OutboundTimeline:
    timeline = OutboundTimeline(FRAME, RATE)
    for tick in range(1, ticks + 1):
        timeline.mixed(tick * FRAME)
    return timeline  # seq 0..2 given out, next_pts 4 * FRAME


def test_mixed_packets_are_numbered_one_after_another():
    timeline = OutboundTimeline(FRAME, RATE)
    assert timeline.mixed(FRAME) == Placed(0, FRAME)
    assert timeline.mixed(2 * FRAME) == Placed(1, 2 * FRAME)
    # A late tick never goes back in time.
    assert timeline.mixed(FRAME) == Placed(2, 3 * FRAME)


def test_a_forwarded_voice_continues_the_mixs_numbering_at_the_circles_clock():
    timeline = timeline_after_mix()
    first = timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    # The voice switch advances by the time that passed (tick 10), not by one frame.
    assert first == Placed(3, 10 * FRAME)


def test_a_lost_packet_leaves_a_gap_in_sequence_and_time():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    assert timeline.forwarded(5001, 90_000 + FRAME, now_pts=11 * FRAME) == Placed(4, 11 * FRAME)
    # 5002 lost upstream.
    assert timeline.forwarded(5003, 90_000 + 3 * FRAME, now_pts=13 * FRAME) == Placed(6, 13 * FRAME)


def test_a_reordered_packet_keeps_its_place():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    assert timeline.forwarded(5002, 90_000 + 2 * FRAME, now_pts=12 * FRAME) == Placed(5, 12 * FRAME)
    late = timeline.forwarded(5001, 90_000 + FRAME, now_pts=12 * FRAME)
    assert late == Placed(4, 11 * FRAME)
    # Nothing after it moved: the next one lands where it would have.
    assert timeline.forwarded(5003, 90_000 + 3 * FRAME, now_pts=13 * FRAME) == Placed(6, 13 * FRAME)
    assert timeline.next_seq == 7


def test_a_duplicate_is_dropped_whether_newest_or_older():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    timeline.forwarded(5001, 90_000 + FRAME, now_pts=11 * FRAME)
    timeline.forwarded(5002, 90_000 + 2 * FRAME, now_pts=12 * FRAME)
    assert timeline.forwarded(5002, 90_000 + 2 * FRAME, now_pts=12 * FRAME) is None
    assert timeline.forwarded(5001, 90_000 + FRAME, now_pts=12 * FRAME) is None
    assert timeline.forwarded(5000, 90_000, now_pts=12 * FRAME) is None


def test_a_packet_from_before_forwarding_began_is_dropped_not_a_reset():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    timeline.forwarded(5001, 90_000 + FRAME, now_pts=11 * FRAME)
    assert timeline.forwarded(4999, 90_000 - FRAME, now_pts=11 * FRAME) is None
    assert timeline.forwarded(5002, 90_000 + 2 * FRAME, now_pts=12 * FRAME) == Placed(5, 12 * FRAME)


def test_sequence_and_timestamp_wrap_around_without_a_jump():
    timeline = timeline_after_mix()
    top_ts = (1 << 32) - FRAME
    timeline.forwarded(65535, top_ts, now_pts=10 * FRAME)
    assert timeline.forwarded(0, 0, now_pts=11 * FRAME) == Placed(4, 11 * FRAME)
    assert timeline.forwarded(1, FRAME, now_pts=12 * FRAME) == Placed(5, 12 * FRAME)
    # A late packet from before the wrap still lands before it.
    timeline2 = timeline_after_mix()
    timeline2.forwarded(65534, top_ts - FRAME, now_pts=10 * FRAME)
    timeline2.forwarded(0, FRAME, now_pts=12 * FRAME)
    assert timeline2.forwarded(65535, top_ts, now_pts=12 * FRAME) == Placed(4, 11 * FRAME)


def test_silence_between_talkspurts_keeps_its_length():
    # With DTX a browser sends nothing for a while: sequence goes on by one, time by the gap.
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    assert timeline.forwarded(5001, 90_000 + 40 * FRAME, now_pts=50 * FRAME) == Placed(
        4, 50 * FRAME
    )


def test_after_forwarding_the_mix_continues_after_the_newest_packet():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    timeline.forwarded(5001, 90_000 + FRAME, now_pts=11 * FRAME)
    timeline.switch()
    assert timeline.mixed(11 * FRAME) == Placed(5, 12 * FRAME)


def test_a_new_voice_after_a_switch_starts_after_everything_sent():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    timeline.switch()
    # Another person's numbering, far from the first one's.
    assert timeline.forwarded(100, 7_000_000, now_pts=20 * FRAME) == Placed(4, 20 * FRAME)
    assert timeline.forwarded(101, 7_000_000 + FRAME, now_pts=21 * FRAME) == Placed(5, 21 * FRAME)


def test_a_voice_that_restarts_its_numbering_is_anchored_again():
    timeline = timeline_after_mix()
    timeline.forwarded(5000, 90_000, now_pts=10 * FRAME)
    # The browser renegotiated: a new seq and clock far away.
    assert timeline.forwarded(40_000, 3_000_000_000, now_pts=11 * FRAME) == Placed(4, 11 * FRAME)
