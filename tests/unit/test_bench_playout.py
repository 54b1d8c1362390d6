"""The bench's model of a receiver's jitter buffer plays packets in order, on time or not."""

from __future__ import annotations

from bench.playout import DEPTH, play_out

FRAME = 960


def test_packets_are_played_in_sequence_order_at_a_fixed_depth():
    # seq 2 arrives before seq 1 (reordered), both within the depth.
    packets = [(0.000, 0, 0, b"a"), (0.045, 2, 2 * FRAME, b"c"), (0.050, 1, FRAME, b"b")]
    played = play_out(packets)
    assert [p for _, _, p in played] == [b"a", b"b", b"c"]
    assert [round(t, 3) for t, _, _ in played] == [DEPTH, 0.02 + DEPTH, 0.04 + DEPTH]


def test_a_packet_later_than_its_turn_is_not_played_and_a_duplicate_once():
    packets = [
        (0.000, 0, 0, b"a"),
        (0.020, 1, FRAME, b"b"),
        (0.020, 1, FRAME, b"b"),
        (0.200, 2, 2 * FRAME, b"late"),
        (0.060, 3, 3 * FRAME, b"d"),
    ]
    assert [p for _, _, p in play_out(packets)] == [b"a", b"b", b"d"]


def test_sequence_numbers_and_timestamps_wrap():
    top = (1 << 32) - FRAME
    packets = [(0.0, 65535, top, b"a"), (0.02, 0, 0, b"b")]
    assert [round(t, 3) for t, _, _ in play_out(packets)] == [DEPTH, 0.02 + DEPTH]


def test_a_jump_in_time_without_a_gap_in_sequence_locks_afresh():
    # A new talkspurt: its timestamp 0.5 s on, but it arrives 1 s on (the sender's new
    # stream runs behind the old one's arrival clock).
    packets = [(0.0, 0, 0, b"a"), (0.02, 1, FRAME, b"b"), (1.04, 2, 2 * FRAME + 24_000, b"c")]
    played = play_out(packets)
    assert [p for _, _, p in played] == [b"a", b"b", b"c"]
    assert round(played[-1][0], 3) == round(1.04 + DEPTH, 3)
