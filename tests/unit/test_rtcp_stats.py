"""Receiver and sender report numbers against values worked out by hand (RFC 3550)."""

from __future__ import annotations

import pytest

from signaling.rtcp_stats import (
    NTP_UNIX_OFFSET,
    ReceptionReport,
    ReceptionStats,
    SendingStats,
    middle_32,
    ntp_time,
)

RATE = 48_000
FRAME = 960


def receive(stats: ReceptionStats, seqs: list[int], start_ms: int = 1000) -> None:
    # Each packet sent every 20 ms and arriving in no time: no jitter.
    for seq in seqs:
        stats.add(seq, seq * FRAME % (1 << 32), start_ms + 20 * ((seq - seqs[0]) % 65536))


def test_two_lost_in_ten_is_a_fraction_of_51_over_256():
    stats = ReceptionStats(RATE)
    receive(stats, [s for s in range(100, 110) if s not in (103, 107)])
    report = stats.report(now=0.0)
    # expected 10, received 8: lost 2; fraction = floor(2 * 256 / 10) = 51.
    assert report == ReceptionReport(
        fraction_lost=51, packets_lost=2, highest_sequence=109, jitter=0, lsr=0, dlsr=0
    )


def test_the_fraction_is_per_interval_and_the_loss_cumulative():
    stats = ReceptionStats(RATE)
    receive(stats, [s for s in range(100, 110) if s not in (103, 107)])
    stats.report(now=0.0)
    for seq in range(110, 120):
        stats.add(seq, seq * FRAME, 2000 + 20 * seq)
    report = stats.report(now=1.0)
    assert report is not None
    assert (report.fraction_lost, report.packets_lost, report.highest_sequence) == (0, 2, 119)


def test_duplicates_make_the_cumulative_loss_negative_and_the_fraction_zero():
    stats = ReceptionStats(RATE)
    receive(stats, [1, 2, 3, 3, 3])
    report = stats.report(now=0.0)
    assert report is not None
    assert (report.packets_lost, report.fraction_lost) == (-2, 0)


def test_a_late_packet_counts_as_received_and_leaves_the_highest_alone():
    stats = ReceptionStats(RATE)
    receive(stats, [10, 12, 11, 13])
    report = stats.report(now=0.0)
    assert report is not None
    assert (report.packets_lost, report.highest_sequence) == (0, 13)


def test_the_extended_highest_sequence_counts_wraparounds():
    stats = ReceptionStats(RATE)
    receive(stats, [65534, 65535, 0, 1])
    report = stats.report(now=0.0)
    assert report is not None
    # One cycle (1 << 16) plus seq 1; four expected, four received.
    assert (report.highest_sequence, report.packets_lost) == (65537, 0)
    assert stats.expected == 4


def test_interarrival_jitter_follows_appendix_a8():
    stats = ReceptionStats(RATE)
    stats.add(0, 0, 1000)
    stats.add(1, 960, 1020)  # on time: D = 0
    stats.add(2, 1920, 1050)  # 10 ms late: D = 480 units, J = 480 / 16 = 30
    assert stats.jitter == 30
    stats.add(3, 2880, 1060)  # back on time: D = 480 again, J = 30 + (480 - 30) / 16 = 58.1
    assert stats.jitter == 58


def test_jitter_ignores_the_timestamp_wrapping():
    stats = ReceptionStats(RATE)
    stats.add(0, (1 << 32) - FRAME, 1000)
    stats.add(1, 0, 1020)
    assert stats.jitter == 0


def test_lsr_and_dlsr_come_from_the_last_sender_report():
    stats = ReceptionStats(RATE)
    receive(stats, [1, 2])
    stats.sender_report(0x1234_5678_9ABC_DEF0, arrival=1000.0)
    report = stats.report(now=1001.5)
    assert report is not None
    # LSR: the middle 32 bits; DLSR: 1.5 s in units of 1/65536 s.
    assert (report.lsr, report.dlsr) == (0x5678_9ABC, 98_304)


def test_no_report_before_any_packet():
    assert ReceptionStats(RATE).report(now=0.0) is None


def test_a_sender_that_starts_afresh_is_counted_from_its_new_numbers():
    stats = ReceptionStats(RATE)
    receive(stats, [1, 2, 3])
    receive(stats, [40_000, 40_001], start_ms=5000)
    assert (stats.expected, stats.lost) == (2, 0)


def test_ntp_time_is_seconds_since_1900_in_32_32_fixed_point():
    ntp = ntp_time(10.5)
    assert ntp >> 32 == NTP_UNIX_OFFSET + 10
    assert ntp & 0xFFFF_FFFF == 1 << 31
    assert middle_32(ntp) == ((NTP_UNIX_OFFSET + 10) & 0xFFFF) << 16 | 0x8000


def test_a_sender_report_counts_packets_and_payload_octets():
    stats = SendingStats(RATE)
    stats.sent(1000, 50, now=10.0)
    stats.sent(1960, 60, now=10.02)
    info = stats.sender_info(now=10.52)
    assert info is not None
    assert (info.packet_count, info.octet_count) == (2, 110)
    # The same instant on both clocks: the newest packet's timestamp plus 0.5 s at 48 kHz.
    assert info.rtp_timestamp == 1960 + 24_000
    assert info.ntp_timestamp >> 32 == NTP_UNIX_OFFSET + 10
    assert info.ntp_timestamp & 0xFFFF_FFFF == pytest.approx(0.52 * (1 << 32), abs=2**12)


def test_a_late_packet_does_not_move_the_mapping_back():
    stats = SendingStats(RATE)
    stats.sent(1960, 60, now=10.02)
    stats.sent(1000, 50, now=10.03)  # sent after, but earlier in the stream
    info = stats.sender_info(now=10.02)
    assert info is not None
    assert (info.rtp_timestamp, info.packet_count) == (1960, 2)


def test_the_rtp_timestamp_wraps():
    stats = SendingStats(RATE)
    stats.sent((1 << 32) - 100, 10, now=0.0)
    info = stats.sender_info(now=0.01)
    assert info is not None
    assert info.rtp_timestamp == 380


def test_no_sender_report_before_any_packet():
    assert SendingStats(RATE).sender_info(now=0.0) is None
